//! `deployer`: reconciles AWS to a YAML manifest: one ML inference service, deployed
//! serverful (ECS on EC2 behind an ALB) and serverless (Lambda behind an HTTP API), and
//! measured side by side. The binary (`main.rs`) parses the command line; everything
//! else is here, so the integration tests use the same finders and types.

pub mod aws;
pub mod bench;
pub mod commands;
pub mod context;
pub mod endpoints;
pub mod engine;
pub mod error;
pub mod image;
pub mod inventory;
pub mod local;
pub mod manifest;
pub mod output;
pub mod plan;
pub mod predict;
pub mod resources;
pub mod stack;
pub mod tail;
pub mod wait;
