//! Executes a plan: every change whose dependencies are done starts at once, so
//! independent resources are created concurrently; a failed change skips everything
//! that depends on it, and only the root cause is reported as an error.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use futures::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;

use crate::aws::{Aws, AwsError};
use crate::error::Class;
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
        /// What kind of failure it was, for the exit code.
        #[serde(skip)]
        class: Class,
    },
    /// Not attempted because a change it depends on failed.
    Skipped {
        because: Id,
    },
}

impl Outcome {
    fn failed(e: &AwsError) -> Outcome {
        Outcome::Failed {
            error: e.to_string(),
            code: e.code.clone(),
            hint: e.hint.clone(),
            class: Class::of_aws(e),
        }
    }
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
    // A replaced resource is created from nothing once its old self is gone.
    let gone: BTreeMap<usize, Observation> = plan
        .changes
        .iter()
        .enumerate()
        .filter(|(_, c)| c.action == Action::Replace)
        .map(|(i, c)| (i, Observation::missing(c.id.clone())))
        .collect();
    let mut outcomes = delete_replaced(aws, plan, nodes, seen, progress).await;
    let mut started: BTreeSet<usize> = outcomes.keys().copied().collect();
    let mut running = FuturesUnordered::new();
    loop {
        for i in ready(plan, &mut started, &mut outcomes, progress) {
            let change = &plan.changes[i];
            if change.action != Action::Replace {
                progress.started(change);
            }
            let node = nodes[change.node].as_ref();
            let obs = gone.get(&i).unwrap_or(&seen[change.node]);
            running.push(async move {
                let t = Instant::now();
                let result = run(aws, &plan.stack, change, node, obs).await;
                (i, result, t.elapsed().as_secs_f64())
            });
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
                Outcome::failed(&e)
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

/// The changes not `started` yet whose dependencies have all finished, now marked
/// started; those whose dependencies failed or were skipped are skipped, in `outcomes`.
fn ready(
    plan: &Plan,
    started: &mut BTreeSet<usize>,
    outcomes: &mut BTreeMap<usize, Outcome>,
    progress: &Progress,
) -> Vec<usize> {
    let index: BTreeMap<&Id, usize> = plan
        .changes
        .iter()
        .enumerate()
        .map(|(i, c)| (&c.id, i))
        .collect();
    let mut ready = Vec::new();
    // A skip can skip what depends on it in turn: look again until nothing changes.
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
            if let Some(bad) = deps
                .iter()
                .find(|d| matches!(outcomes.get(d), Some(o) if !matches!(o, Outcome::Done { .. })))
            {
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
                ready.push(i);
            }
        }
    }
    ready
}

/// Makes one change: `obs` is how the resource was seen (missing, for one replaced).
async fn run(
    aws: &Aws,
    stack: &str,
    change: &Change,
    node: &dyn Node,
    obs: &Observation,
) -> Result<(), AwsError> {
    match change.action {
        Action::Update if change.follows.is_some() => recheck(aws, stack, node).await,
        Action::Create | Action::Update | Action::Replace => apply(aws, stack, node, obs).await,
        Action::Delete => node.delete(aws, obs).await,
        Action::Empty => node.empty(aws, obs).await,
    }
}

/// Deletes what the plan replaces, before anything else runs, one at a time, each
/// after the replaced resources that depend on it. Returns the outcomes of those whose
/// deletion failed (or was skipped because a dependent's failed): they are not created.
async fn delete_replaced(
    aws: &Aws,
    plan: &Plan,
    nodes: &[Box<dyn Node>],
    seen: &[Observation],
    progress: &Progress,
) -> BTreeMap<usize, Outcome> {
    let mut outcomes = BTreeMap::new();
    let mut left: Vec<usize> = (0..plan.changes.len())
        .filter(|&i| plan.changes[i].action == Action::Replace)
        .collect();
    let needs = |i: usize, j: usize| {
        nodes[plan.changes[j].node]
            .depends_on()
            .contains(&plan.changes[i].id)
    };
    while !left.is_empty() {
        // One that no replaced resource still standing depends on (the graph is acyclic).
        let at = left
            .iter()
            .position(|&i| !left.iter().any(|&j| j != i && needs(i, j)))
            .unwrap_or(0);
        let i = left.remove(at);
        let change = &plan.changes[i];
        progress.started(change);
        let failed_dependent = plan
            .changes
            .iter()
            .enumerate()
            .find(|(j, _)| needs(i, *j) && outcomes.contains_key(j))
            .map(|(_, c)| c.id.clone());
        if let Some(because) = failed_dependent {
            progress.skipped(&change.id, &because);
            outcomes.insert(i, Outcome::Skipped { because });
            continue;
        }
        if let Err(e) = nodes[change.node].delete(aws, &seen[change.node]).await {
            progress.failed(change, &e);
            outcomes.insert(i, Outcome::failed(&e));
        }
    }
    outcomes
}

/// Looks at a resource again (one it depends on was replaced) and makes what now differs.
async fn recheck(aws: &Aws, stack: &str, node: &dyn Node) -> Result<(), AwsError> {
    let now = node.observe(aws, stack).await?;
    if now.exists && now.diff.is_empty() {
        return Ok(());
    }
    apply(aws, stack, node, &now).await
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

/// How many times a change is looked at afresh and finished after an "already there"
/// answer. Each such answer means a call committed, so each round makes progress; two
/// in one change happen (the create, then a rule on it, each answered with a 500 after
/// it committed), and the bound only stops a loop that does not.
const LOOK_AGAIN: usize = 4;

/// Applies a change; when AWS answers that part of it is there already, finishes it
/// from a fresh look at the resource (a bounded number of times, and only while it is
/// still the stack's).
async fn apply(
    aws: &Aws,
    stack: &str,
    node: &dyn Node,
    seen: &Observation,
) -> Result<(), AwsError> {
    let mut result = node.apply(aws, seen).await;
    for _ in 0..LOOK_AGAIN {
        let e = match result {
            Err(e) if already_there(&e) => e,
            done => return done,
        };
        tracing::info!("{e}; looking again");
        let again = node.observe(aws, stack).await?;
        if again.exists && !again.owned {
            return Err(e);
        }
        result = node.apply(aws, &again).await;
    }
    result
}

fn already_there(e: &AwsError) -> bool {
    e.code
        .as_deref()
        .is_some_and(|c| ALREADY_THERE.contains(&c))
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;
    use crate::manifest::Manifest;
    use crate::plan::Plan;
    use crate::resources::{Follow, Kind, LocalFuture};

    /// A node that records when it starts and ends, and fails on request. It stands in
    /// for a resource so the scheduling can be tested alone; nothing here talks to AWS.
    struct Probe {
        name: &'static str,
        deps: Vec<&'static str>,
        fail: bool,
        /// The dependencies it is replaced with (the others it rechecks).
        replace_with: &'static [&'static str],
        log: Rc<RefCell<Vec<String>>>,
    }

    fn id(name: &str) -> Id {
        Id::new(Kind::LogGroup, name)
    }

    impl Node for Probe {
        fn id(&self) -> Id {
            id(self.name)
        }
        fn follows(&self, dependency: &Id) -> Follow {
            if self.replace_with.contains(&dependency.name.as_str()) {
                Follow::Replace
            } else {
                Follow::Recheck
            }
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
            _: &'a Aws,
            _: &'a Observation,
        ) -> LocalFuture<'a, Result<(), AwsError>> {
            Box::pin(async move {
                self.log.borrow_mut().push(format!("delete {}", self.name));
                Ok(())
            })
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
                    replace_with: &[],
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
                        replace_with: &[],
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

    /// A node whose first `answers` applies each commit part of the change and answer
    /// that it is there already, as AWS does when a 500 came after a call committed and
    /// the SDK's retry found its work done.
    struct AlreadyThere {
        answers: std::cell::Cell<usize>,
        applies: std::cell::Cell<usize>,
    }

    impl Node for AlreadyThere {
        fn id(&self) -> Id {
            id("racer")
        }
        fn follows(&self, _: &Id) -> Follow {
            Follow::Recheck
        }
        fn depends_on(&self) -> Vec<Id> {
            Vec::new()
        }
        fn observe<'a>(
            &'a self,
            _: &'a Aws,
            _: &'a str,
        ) -> LocalFuture<'a, Result<Observation, AwsError>> {
            Box::pin(async move {
                let mut seen = Observation::missing(self.id());
                seen.exists = true;
                seen.owned = true;
                Ok(seen)
            })
        }
        fn apply<'a>(
            &'a self,
            _: &'a Aws,
            _: &'a Observation,
        ) -> LocalFuture<'a, Result<(), AwsError>> {
            Box::pin(async move {
                self.applies.set(self.applies.get() + 1);
                match self.answers.get() {
                    0 => Ok(()),
                    n => {
                        self.answers.set(n - 1);
                        Err(AwsError {
                            code: Some("InvalidPermission.Duplicate".into()),
                            ..AwsError::new(
                                "ec2:AuthorizeSecurityGroupIngress",
                                "The specified rule already exists",
                            )
                        })
                    }
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

    #[tokio::test]
    async fn a_change_answered_already_there_twice_is_finished_from_fresh_looks() {
        let manifest = Manifest::parse(
            "t.yaml".as_ref(),
            "name: t\nregion: us-east-1\nendpoint: http://127.0.0.1:9\n",
        )
        .unwrap();
        let aws = Aws::connect(&manifest).await;
        let node = AlreadyThere {
            answers: 2.into(),
            applies: 0.into(),
        };
        let seen = Observation::missing(node.id());
        apply(&aws, "t", &node, &seen).await.unwrap();
        assert_eq!(node.applies.get(), 3);
        // One that never stops answering so is not looked at forever.
        let stuck = AlreadyThere {
            answers: usize::MAX.into(),
            applies: 0.into(),
        };
        let e = apply(&aws, "t", &stuck, &seen).await.unwrap_err();
        assert_eq!(e.code.as_deref(), Some("InvalidPermission.Duplicate"));
        assert_eq!(stuck.applies.get(), 1 + LOOK_AGAIN);
    }

    #[test]
    fn down_empties_the_kept_kinds_that_hold_data_and_deletes_the_rest() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let probe = |name| Probe {
            name,
            deps: vec![],
            fail: false,
            replace_with: &[],
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
    fn unwanted_resources_are_deleted_after_the_moves_dependents_first_data_kept() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let probe = |name, deps: &[&'static str]| -> Box<dyn Node> {
            Box::new(Probe {
                name,
                deps: deps.to_vec(),
                fail: false,
                replace_with: &[],
                log: log.clone(),
            })
        };
        // Wanted: `new` (missing). Unwanted: `old-api` on `old-fn`, and `old-data`.
        let nodes = vec![
            probe("new", &[]),
            probe("old-fn", &[]),
            probe("old-api", &["old-fn"]),
            probe("old-data", &[]),
        ];
        let mut seen: Vec<Observation> =
            nodes.iter().map(|n| Observation::missing(n.id())).collect();
        for s in &mut seen[1..] {
            s.exists = true;
            s.owned = true;
        }
        seen[3].holds_data = true;
        let plan = Plan::up("t", &nodes[..1], &seen[..1], false).remove_unwanted(
            &nodes,
            &seen,
            1,
            &[Kind::LogGroup],
        );
        let summary: Vec<(String, Action, bool, Vec<String>)> = plan
            .changes
            .iter()
            .map(|c| {
                (
                    c.id.name.clone(),
                    c.action,
                    c.unwanted,
                    c.after.iter().map(|a| a.name.clone()).collect(),
                )
            })
            .collect();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            summary,
            [
                ("new".into(), Action::Create, false, s(&[])),
                ("old-api".into(), Action::Delete, true, s(&["new"])),
                (
                    "old-fn".into(),
                    Action::Delete,
                    true,
                    s(&["old-api", "new"])
                ),
            ]
        );
        assert_eq!(plan.kept.len(), 1);
        assert_eq!(plan.kept[0].id.name, "old-data");
        // Without the kept kind, data does not save it.
        let plan =
            Plan::up("t", &nodes[..1], &seen[..1], false).remove_unwanted(&nodes, &seen, 1, &[]);
        assert!(plan.kept.is_empty());
        assert_eq!(plan.count(Action::Delete), 3);
    }

    #[test]
    fn down_reverses_the_dependency_edges() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let nodes: Vec<Box<dyn Node>> = vec![
            Box::new(Probe {
                name: "role",
                deps: vec![],
                fail: false,
                replace_with: &[],
                log: log.clone(),
            }),
            Box::new(Probe {
                name: "profile",
                deps: vec!["role"],
                fail: false,
                replace_with: &[],
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

    /// A target group whose port changed: its listener goes and comes back with it, the
    /// service is looked at again once both exist, the rest is untouched.
    #[tokio::test]
    async fn a_replacement_deletes_dependents_first_then_recreates_and_rechecks() {
        let manifest = Manifest::parse(
            "t.yaml".as_ref(),
            "name: t\nregion: us-east-1\nendpoint: http://127.0.0.1:9\n",
        )
        .unwrap();
        let aws = Aws::connect(&manifest).await;
        let log = Rc::new(RefCell::new(Vec::new()));
        let probe = |name, deps: &[&'static str], replace_with| -> Box<dyn Node> {
            Box::new(Probe {
                name,
                deps: deps.to_vec(),
                fail: false,
                replace_with,
                log: log.clone(),
            })
        };
        let nodes = vec![
            probe("lb", &[], &[]),
            probe("tg", &[], &[]),
            probe("listener", &["lb", "tg"], &["tg"]),
            probe("service", &["listener", "tg"], &[]),
            probe("scaling", &["service"], &[]),
        ];
        let mut seen: Vec<Observation> =
            nodes.iter().map(|n| Observation::missing(n.id())).collect();
        for s in &mut seen {
            s.exists = true;
            s.owned = true;
        }
        seen[1].replace = true;
        let plan = Plan::up("t", &nodes, &seen, false);
        let planned: Vec<(&str, Action, Option<&str>)> = plan
            .changes
            .iter()
            .map(|c| {
                let follows = c.follows.as_ref().map(|f| f.name.as_str());
                (c.id.name.as_str(), c.action, follows)
            })
            .collect();
        assert_eq!(
            planned,
            [
                ("tg", Action::Replace, None),
                ("listener", Action::Replace, Some("tg")),
                ("service", Action::Update, Some("listener")),
            ]
        );
        let applied = execute(&aws, &plan, &nodes, &seen, &Progress::new()).await;
        assert!(
            applied
                .iter()
                .all(|a| matches!(a.outcome, Outcome::Done { .. }))
        );
        let log = log.borrow().clone();
        let at = |e: &str| {
            log.iter()
                .position(|l| l == e)
                .unwrap_or_else(|| panic!("{e}: {log:?}"))
        };
        assert!(at("delete listener") < at("delete tg"), "{log:?}");
        assert!(at("delete tg") < at("start tg"), "{log:?}");
        assert!(at("end tg") < at("start listener"), "{log:?}");
        assert!(at("end listener") < at("start service"), "{log:?}");
        assert!(
            !log.iter()
                .any(|l| l.ends_with(" lb") || l.ends_with(" scaling")),
            "{log:?}"
        );
    }
}
