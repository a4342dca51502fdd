//! The Auto Scaling group of ECS container instances: created empty, its minimum raised
//! by its capacity provider, its desired capacity driven by nothing but the provider's
//! managed scaling (AWS's ECS guide: a capacity provider's group is scaled by ECS, not by
//! policies of its own). The study's "1 to 5 instances at 70 % CPU" is the service's
//! task scaling (`ecs::ServiceScaling`), one whole-instance task per instance; the group's
//! maximum is one above the task maximum so a rollout at full scale has a spare instance.
//! New instances are protected from scale-in, as ECS managed termination protection
//! requires: the capacity provider lifts the protection from instances with no tasks left.

mod find;
mod group;

pub use group::{Change, Group, Observed};

/// The group's maximum for a service of at most `tasks` tasks. One task fills an instance
/// and a rollout keeps every old task until its replacement is healthy (maximum 200 %,
/// minimum healthy 100 %), so at full scale the first new task needs an instance beyond
/// the tasks' maximum; managed scaling launches it for the rollout only and releases it
/// when the old task is gone.
pub fn headroom(tasks: u32) -> u32 {
    tasks + 1
}

#[cfg(test)]
mod tests;
