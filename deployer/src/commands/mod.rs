//! The commands, one module each: `stack` (`plan`, `up`, `down`, `status`), `build`,
//! and those that look at an account before a stack is deployed to it: `check` (what a
//! first `up` would fail on) and `policy` (the permissions `deployer` needs).

pub mod build;
pub mod check;
pub mod policy;
pub mod stack;
