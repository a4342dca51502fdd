//! Executes a plan: every change whose dependencies are done starts at once, so
//! independent resources are created concurrently; a failed change skips everything
//! that depends on it, and only the root cause is reported as an error.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use futures::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;

use crate::aws::{Aws, AwsError};
use crate::output::Progress;
use crate::plan::{Action, Change, Plan};
use crate::resources::{Id, Node, Observation};

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    Done {
        seconds: f64,
    },
    Failed {
        error: String,
        code: Option<String>,
    },
    /// Not attempted because a change it depends on failed.
    Skipped {
        because: Id,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    #[serde(flatten)]
    pub change: Change,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// Observes every node concurrently.
pub async fn observe(
    aws: &Aws,
    stack: &str,
    nodes: &[Box<dyn Node>],
) -> Result<Vec<Observation>, AwsError> {
    futures::future::try_join_all(nodes.iter().map(|n| n.observe(aws, stack))).await
}

/// Runs `plan` against `nodes` (as observed in `seen`), reporting progress.
pub async fn execute(
    aws: &Aws,
    plan: &Plan,
    nodes: &[Box<dyn Node>],
    seen: &[Observation],
    progress: &Progress,
) -> Vec<Applied> {
    let mut outcomes: BTreeMap<usize, Outcome> = BTreeMap::new();
    let mut started: BTreeSet<usize> = BTreeSet::new();
    let mut running = FuturesUnordered::new();
    let index: BTreeMap<&Id, usize> = plan
        .changes
        .iter()
        .enumerate()
        .map(|(i, c)| (&c.id, i))
        .collect();

    loop {
        // Start every change whose dependencies have all finished; skip those whose
        // dependencies failed or were skipped.
        let mut progressed = true;
        while progressed {
            progressed = false;
            for (i, change) in plan.changes.iter().enumerate() {
                if started.contains(&i) {
                    continue;
                }
                let deps: Vec<usize> = change
                    .after
                    .iter()
                    .filter_map(|d| index.get(d).copied())
                    .collect();
                if let Some(bad) = deps.iter().find(
                    |d| matches!(outcomes.get(d), Some(o) if !matches!(o, Outcome::Done { .. })),
                ) {
                    let because = match &outcomes[bad] {
                        Outcome::Skipped { because } => because.clone(),
                        _ => plan.changes[*bad].id.clone(),
                    };
                    progress.skipped(&change.id, &because);
                    outcomes.insert(i, Outcome::Skipped { because });
                    started.insert(i);
                    progressed = true;
                } else if deps
                    .iter()
                    .all(|d| matches!(outcomes.get(d), Some(Outcome::Done { .. })))
                {
                    started.insert(i);
                    progress.started(change);
                    let node = &nodes[change.node];
                    let obs = &seen[change.node];
                    running.push(async move {
                        let t = Instant::now();
                        let result = match change.action {
                            Action::Create | Action::Update => node.apply(aws, obs).await,
                            Action::Delete => node.delete(aws, obs).await,
                        };
                        (i, result, t.elapsed().as_secs_f64())
                    });
                }
            }
        }
        let Some((i, result, seconds)) = running.next().await else {
            break;
        };
        let change = &plan.changes[i];
        let outcome = match result {
            Ok(()) => {
                progress.finished(change, seconds);
                Outcome::Done { seconds }
            }
            Err(e) => {
                progress.failed(change, &e);
                Outcome::Failed {
                    error: e.to_string(),
                    code: e.code.clone(),
                }
            }
        };
        outcomes.insert(i, outcome);
    }

    plan.changes
        .iter()
        .enumerate()
        .map(|(i, c)| Applied {
            change: c.clone(),
            outcome: outcomes.remove(&i).unwrap_or(Outcome::Skipped {
                because: c.id.clone(),
            }),
        })
        .collect()
}
