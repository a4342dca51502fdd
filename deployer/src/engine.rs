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
        #[serde(skip_serializing_if = "Option::is_none")]
        hint: Option<String>,
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
                            Action::Create | Action::Update => {
                                apply(aws, &plan.stack, node.as_ref(), obs).await
                            }
                            Action::Delete => node.delete(aws, obs).await,
                            Action::Empty => node.empty(aws, obs).await,
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
                    hint: e.hint.clone(),
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

/// Answers meaning "what you asked to make is there already". AWS sometimes answers a
/// call that happened with an error (a 500 after a create committed); the SDK retries
/// it, and the retry gets one of these.
const ALREADY_THERE: &[&str] = &[
    "EntityAlreadyExists",
    "RepositoryAlreadyExistsException",
    "ResourceAlreadyExistsException",
    "ResourceConflictException",
    "ConflictException",
    "InvalidGroup.Duplicate",
    "InvalidPermission.Duplicate",
    "InvalidLaunchTemplateName.AlreadyExistsException",
    "AlreadyExists",
    "DuplicateLoadBalancerName",
    "DuplicateTargetGroupName",
    "DuplicateListener",
    "BucketAlreadyOwnedByYou",
];

/// Applies a change; when AWS answers that part of it is there already, finishes it
/// from a fresh look at the resource (once, and only if it is still the stack's).
async fn apply(
    aws: &Aws,
    stack: &str,
    node: &dyn Node,
    seen: &Observation,
) -> Result<(), AwsError> {
    let e = match node.apply(aws, seen).await {
        Err(e)
            if e.code
                .as_deref()
                .is_some_and(|c| ALREADY_THERE.contains(&c)) =>
        {
            e
        }
        done => return done,
    };
    tracing::info!("{e}; looking again");
    let again = node.observe(aws, stack).await?;
    if again.exists && !again.owned {
        return Err(e);
    }
    node.apply(aws, &again).await
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;
    use crate::manifest::Manifest;
    use crate::plan::Plan;
    use crate::resources::{Kind, LocalFuture};

    /// A node that records when it starts and ends, and fails on request. It stands in
    /// for a resource so the scheduling can be tested alone; nothing here talks to AWS.
    struct Probe {
        name: &'static str,
        deps: Vec<&'static str>,
        fail: bool,
        log: Rc<RefCell<Vec<String>>>,
    }

    fn id(name: &str) -> Id {
        Id::new(Kind::LogGroup, name)
    }

    impl Node for Probe {
        fn id(&self) -> Id {
            id(self.name)
        }
        fn depends_on(&self) -> Vec<Id> {
            self.deps.iter().map(|d| id(d)).collect()
        }
        fn observe<'a>(
            &'a self,
            _: &'a Aws,
            _: &'a str,
        ) -> LocalFuture<'a, Result<Observation, AwsError>> {
            Box::pin(async move { Ok(Observation::missing(self.id())) })
        }
        fn apply<'a>(
            &'a self,
            _: &'a Aws,
            _: &'a Observation,
        ) -> LocalFuture<'a, Result<(), AwsError>> {
            Box::pin(async move {
                self.log.borrow_mut().push(format!("start {}", self.name));
                tokio::task::yield_now().await;
                self.log.borrow_mut().push(format!("end {}", self.name));
                if self.fail {
                    Err(AwsError::new("test:Apply", "boom"))
                } else {
                    Ok(())
                }
            })
        }
        fn delete<'a>(
            &'a self,
            aws: &'a Aws,
            seen: &'a Observation,
        ) -> LocalFuture<'a, Result<(), AwsError>> {
            self.apply(aws, seen)
        }
        fn empty<'a>(
            &'a self,
            aws: &'a Aws,
            seen: &'a Observation,
        ) -> LocalFuture<'a, Result<(), AwsError>> {
            self.apply(aws, seen)
        }
    }

    async fn run(spec: &[(&'static str, &[&'static str], bool)]) -> (Vec<Applied>, Vec<String>) {
        let manifest = Manifest::parse(
            "t.yaml".as_ref(),
            "name: t\nregion: us-east-1\nendpoint: http://127.0.0.1:9\n",
        )
        .unwrap();
        let aws = Aws::connect(&manifest).await;
        let log = Rc::new(RefCell::new(Vec::new()));
        let nodes: Vec<Box<dyn Node>> = spec
            .iter()
            .map(|(name, deps, fail)| {
                Box::new(Probe {
                    name,
                    deps: deps.to_vec(),
                    fail: *fail,
                    log: log.clone(),
                }) as Box<dyn Node>
            })
            .collect();
        let seen: Vec<Observation> = nodes.iter().map(|n| Observation::missing(n.id())).collect();
        let plan = Plan::up("t", &nodes, &seen, false);
        let applied = execute(&aws, &plan, &nodes, &seen, &Progress::new()).await;
        let log = log.borrow().clone();
        (applied, log)
    }

    #[test]
    fn a_cycle_or_a_dangling_dependency_is_refused_before_running() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let probes = |spec: &[(&'static str, &[&'static str])]| -> Vec<Box<dyn Node>> {
            spec.iter()
                .map(|(name, deps)| {
                    Box::new(Probe {
                        name,
                        deps: deps.to_vec(),
                        fail: false,
                        log: log.clone(),
                    }) as Box<dyn Node>
                })
                .collect()
        };
        let cycle = probes(&[("a", &["b"]), ("b", &["a"]), ("c", &[])]);
        assert_eq!(
            crate::plan::check_graph(&cycle),
            Err("a dependency cycle among log group `a`, log group `b`".into())
        );
        let dangling = probes(&[("a", &["gone"])]);
        assert_eq!(
            crate::plan::check_graph(&dangling),
            Err("log group `a` depends on log group `gone`, which is not in the stack".into())
        );
        assert_eq!(
            crate::plan::check_graph(&probes(&[("a", &[]), ("b", &["a"])])),
            Ok(())
        );
    }

    #[tokio::test]
    async fn independent_changes_run_together_and_dependents_wait() {
        let (applied, log) = run(&[
            ("role", &[], false),
            ("profile", &["role"], false),
            ("bucket", &[], false),
        ])
        .await;
        assert!(
            applied
                .iter()
                .all(|a| matches!(a.outcome, Outcome::Done { .. }))
        );
        let at = |s: &str| log.iter().position(|l| l == s).unwrap();
        // Both roots start before either finishes; the dependent starts after its root ends.
        assert!(at("start bucket") < at("end role"), "{log:?}");
        assert!(at("end role") < at("start profile"), "{log:?}");
    }

    #[tokio::test]
    async fn a_failure_skips_its_dependents_and_names_the_root_cause() {
        let (applied, log) = run(&[
            ("role", &[], true),
            ("profile", &["role"], false),
            ("template", &["profile"], false),
            ("bucket", &[], false),
        ])
        .await;
        let outcome = |name: &str| {
            &applied
                .iter()
                .find(|a| a.change.id.name == name)
                .unwrap()
                .outcome
        };
        assert!(matches!(outcome("role"), Outcome::Failed { .. }));
        assert!(
            matches!(outcome("profile"), Outcome::Skipped { because } if because.name == "role")
        );
        assert!(
            matches!(outcome("template"), Outcome::Skipped { because } if because.name == "role")
        );
        assert!(matches!(outcome("bucket"), Outcome::Done { .. }));
        assert!(
            !log.iter()
                .any(|l| l.contains("profile") || l.contains("template")),
            "{log:?}"
        );
    }

    #[test]
    fn down_empties_the_kept_kinds_that_hold_data_and_deletes_the_rest() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let probe = |name| Probe {
            name,
            deps: vec![],
            fail: false,
            log: log.clone(),
        };
        let nodes: Vec<Box<dyn Node>> = vec![Box::new(probe("full")), Box::new(probe("bare"))];
        let mut seen: Vec<Observation> =
            nodes.iter().map(|n| Observation::missing(n.id())).collect();
        for s in &mut seen {
            s.exists = true;
            s.owned = true;
        }
        seen[0].holds_data = true;
        let actions = |plan: Plan| -> Vec<(String, Action)> {
            plan.changes
                .into_iter()
                .map(|c| (c.id.name, c.action))
                .collect()
        };
        // Probes are log groups: keeping that kind empties the one with data, and
        // leaves the empty one alone.
        assert_eq!(
            actions(Plan::down("t", &nodes, &seen, &[Kind::LogGroup])),
            [("full".to_string(), Action::Empty)]
        );
        assert_eq!(
            actions(Plan::down("t", &nodes, &seen, &[])),
            [
                ("bare".to_string(), Action::Delete),
                ("full".to_string(), Action::Delete)
            ]
        );
    }

    #[test]
    fn down_reverses_the_dependency_edges() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let nodes: Vec<Box<dyn Node>> = vec![
            Box::new(Probe {
                name: "role",
                deps: vec![],
                fail: false,
                log: log.clone(),
            }),
            Box::new(Probe {
                name: "profile",
                deps: vec!["role"],
                fail: false,
                log,
            }),
        ];
        let mut seen: Vec<Observation> =
            nodes.iter().map(|n| Observation::missing(n.id())).collect();
        for s in &mut seen {
            s.exists = true;
            s.owned = true;
        }
        let plan = Plan::down("t", &nodes, &seen, &[]);
        let role = plan.changes.iter().find(|c| c.id.name == "role").unwrap();
        assert_eq!(role.after, [id("profile")]);
        assert!(
            plan.changes
                .iter()
                .find(|c| c.id.name == "profile")
                .unwrap()
                .after
                .is_empty()
        );
    }
}
