//! Commands that look at an account before a stack is deployed to it: `check` (what a
//! first `up` would fail on) and `policy` (the permissions `deployer` needs).

pub mod check;
pub mod policy;
