//! The plan is data: the list of changes `up` or `down` will make, built from what was
//! observed, printed by `plan`, and executed exactly by the engine.

use std::collections::BTreeSet;

use serde::Serialize;

use std::collections::BTreeMap;

use crate::resources::{Field, Follow, Id, Kind, Node, Observation};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    /// Delete, then create: AWS cannot make the change in place. Every replacement's
    /// deletion runs before the rest of the plan, dependents first.
    Replace,
    Delete,
    /// Remove what the resource holds and keep it (`down` keeps the buckets).
    Empty,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    #[serde(flatten)]
    pub id: Id,
    pub action: Action,
    /// For updates: each property that differs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<Field>,
    /// Changes in this plan that must finish first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<Id>,
    /// A deletion by `up`: the stack owns the resource and its manifest no longer asks
    /// for it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unwanted: bool,
    /// The replaced resource this change follows: replaced with it, or (an update) looked
    /// at again once the replacement exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follows: Option<Id>,
    /// Index of the resource in the stack's node list.
    #[serde(skip)]
    pub node: usize,
}

/// Checks the stack's resource graph before anything runs on it: every id once, every
/// dependency a resource of the stack, no cycle (the engine would otherwise report each
/// change of a cycle as skipped because of another). A broken graph is this tool's bug.
pub fn check_graph(nodes: &[Box<dyn Node>]) -> Result<(), String> {
    let ids: Vec<Id> = nodes.iter().map(|n| n.id()).collect();
    let unique: BTreeSet<&Id> = ids.iter().collect();
    if unique.len() != ids.len() {
        let twice = ids
            .iter()
            .find(|id| ids.iter().filter(|j| j == id).count() > 1)
            .map_or(String::new(), Id::to_string);
        return Err(format!("{twice} is in the stack twice"));
    }
    let deps: Vec<Vec<Id>> = nodes.iter().map(|n| n.depends_on()).collect();
    for (id, ds) in ids.iter().zip(&deps) {
        if let Some(d) = ds.iter().find(|d| !unique.contains(d)) {
            return Err(format!("{id} depends on {d}, which is not in the stack"));
        }
    }
    // Kahn: take the resources whose dependencies are all taken; what is left is a cycle.
    let mut taken: BTreeSet<&Id> = BTreeSet::new();
    loop {
        let ready: Vec<&Id> = ids
            .iter()
            .zip(&deps)
            .filter(|(id, ds)| !taken.contains(id) && ds.iter().all(|d| taken.contains(d)))
            .map(|(id, _)| id)
            .collect();
        if ready.is_empty() {
            break;
        }
        taken.extend(ready);
    }
    let cycle: Vec<String> = ids
        .iter()
        .filter(|id| !taken.contains(id))
        .map(Id::to_string)
        .collect();
    if cycle.is_empty() {
        Ok(())
    } else {
        Err(format!("a dependency cycle among {}", cycle.join(", ")))
    }
}

/// What an `up` replaces, and what it looks at again afterwards, by node index, each with
/// the replaced resource it follows (`None`: replaced for its own changes). Replacing
/// spreads to the dependents that must go with it ([`Follow::Replace`]); the others
/// are rechecked. Only what exists and is the stack's is replaced or rechecked.
type Replacements = (BTreeMap<usize, Option<Id>>, BTreeMap<usize, Id>);

fn replacements(nodes: &[Box<dyn Node>], seen: &[Observation]) -> Replacements {
    let ours = |i: usize| seen[i].exists && seen[i].owned;
    let mut replaced: BTreeMap<usize, Option<Id>> = (0..nodes.len())
        .filter(|&i| ours(i) && seen[i].replace)
        .map(|i| (i, None))
        .collect();
    let mut rechecked: BTreeMap<usize, Id> = BTreeMap::new();
    let ids: Vec<Id> = nodes.iter().map(|n| n.id()).collect();
    // Until nothing more follows (the graph is acyclic: at most one round per node).
    for _ in 0..=nodes.len() {
        let mut grew = false;
        for (j, node) in nodes.iter().enumerate() {
            if !ours(j) || replaced.contains_key(&j) {
                continue;
            }
            for d in node.depends_on() {
                let Some(k) = ids.iter().position(|id| *id == d) else {
                    continue;
                };
                if !replaced.contains_key(&k) {
                    continue;
                }
                match node.follows(&d) {
                    Follow::Replace => {
                        rechecked.remove(&j);
                        replaced.insert(j, Some(d));
                        grew = true;
                        break;
                    }
                    Follow::Recheck => {
                        rechecked.entry(j).or_insert(d);
                    }
                }
            }
        }
        if !grew {
            break;
        }
    }
    (replaced, rechecked)
}

/// A resource that exists under the stack's name but without its ownership tag.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Foreign {
    #[serde(flatten)]
    pub id: Id,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub stack: String,
    pub changes: Vec<Change>,
    /// Resources in the way that this tool will not touch.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub foreign: Vec<Foreign>,
    /// Resources the stack owns and no longer wants that hold data (a renamed bucket
    /// with objects in it): kept, unless the command is told to delete them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<Foreign>,
}

impl Plan {
    /// What `up` must do: create what is missing, update what drifted, replace what
    /// cannot change in place (with what must follow it). A resource that exists but is
    /// not ours is reported as foreign and left alone, unless `adopt` (the user's
    /// explicit claim) makes it ours: it then gets the tag and is reconciled.
    pub fn up(stack: &str, nodes: &[Box<dyn Node>], seen: &[Observation], adopt: bool) -> Plan {
        let (replaced, rechecked) = replacements(nodes, seen);
        let mut changes = Vec::new();
        let mut foreign = Vec::new();
        for (i, (node, obs)) in nodes.iter().zip(seen).enumerate() {
            let action = match (obs.exists, obs.owned) {
                (false, _) => Action::Create,
                (true, false) if adopt => Action::Update,
                (true, false) => {
                    foreign.push(Foreign { id: node.id() });
                    continue;
                }
                (true, true) if replaced.contains_key(&i) => Action::Replace,
                (true, true) if !obs.diff.is_empty() || rechecked.contains_key(&i) => {
                    Action::Update
                }
                (true, true) => continue,
            };
            changes.push(Change {
                id: node.id(),
                action,
                fields: if action == Action::Create {
                    Vec::new()
                } else {
                    obs.diff.clone()
                },
                after: Vec::new(),
                unwanted: false,
                follows: replaced
                    .get(&i)
                    .cloned()
                    .flatten()
                    .or_else(|| rechecked.get(&i).cloned()),
                node: i,
            });
        }
        let planned: BTreeSet<Id> = changes.iter().map(|c| c.id.clone()).collect();
        for c in &mut changes {
            c.after = nodes[c.node]
                .depends_on()
                .into_iter()
                .filter(|d| planned.contains(d))
                .collect();
        }
        Plan {
            stack: stack.to_string(),
            changes,
            foreign,
            kept: Vec::new(),
        }
    }

    /// What `down` must do: delete every resource of the stack that exists and carries
    /// its ownership tag, dependents first; resources of the `keep` kinds are emptied
    /// instead (when they hold anything), not deleted.
    pub fn down(stack: &str, nodes: &[Box<dyn Node>], seen: &[Observation], keep: &[Kind]) -> Plan {
        let mut changes = Vec::new();
        let mut foreign = Vec::new();
        for (i, (node, obs)) in nodes.iter().zip(seen).enumerate().rev() {
            let kept = keep.contains(&node.id().kind);
            let action = match (obs.exists, obs.owned) {
                (false, _) => continue,
                (true, false) => {
                    foreign.push(Foreign { id: node.id() });
                    continue;
                }
                (true, true) if !kept => Action::Delete,
                (true, true) if obs.holds_data => Action::Empty,
                (true, true) => continue,
            };
            changes.push(Change {
                id: node.id(),
                action,
                fields: Vec::new(),
                after: Vec::new(),
                unwanted: false,
                follows: None,
                node: i,
            });
        }
        let planned: BTreeSet<Id> = changes.iter().map(|c| c.id.clone()).collect();
        for c in &mut changes {
            // Deleting reverses the edges: whatever depends on this goes first.
            c.after = nodes
                .iter()
                .filter(|n| n.depends_on().contains(&c.id) && planned.contains(&n.id()))
                .map(|n| n.id())
                .collect();
        }
        Plan {
            stack: stack.to_string(),
            changes,
            foreign,
            kept: Vec::new(),
        }
    }

    /// Adds to an `up` plan the deletion of what the stack owns and no longer wants:
    /// `nodes[from..]` that exist with the stack's tag. Each goes after whatever of them
    /// depends on it, and after every create and update of the plan: the stack moves to
    /// what it wants before what it leaves goes (the service runs the new image before
    /// the old repository is deleted). Those of the `keep` kinds that hold data are kept
    /// and named in `kept`.
    pub fn remove_unwanted(
        mut self,
        nodes: &[Box<dyn Node>],
        seen: &[Observation],
        from: usize,
        keep: &[Kind],
    ) -> Plan {
        let moves: Vec<Id> = self.changes.iter().map(|c| c.id.clone()).collect();
        let mut deletes = Vec::new();
        for (i, (node, obs)) in nodes.iter().zip(seen).enumerate().skip(from).rev() {
            if !(obs.exists && obs.owned) {
                continue;
            }
            if obs.holds_data && keep.contains(&node.id().kind) {
                self.kept.push(Foreign { id: node.id() });
                continue;
            }
            deletes.push(Change {
                id: node.id(),
                action: Action::Delete,
                fields: Vec::new(),
                after: Vec::new(),
                unwanted: true,
                follows: None,
                node: i,
            });
        }
        let planned: BTreeSet<Id> = deletes.iter().map(|c| c.id.clone()).collect();
        for c in &mut deletes {
            c.after = nodes[from..]
                .iter()
                .filter(|n| n.depends_on().contains(&c.id) && planned.contains(&n.id()))
                .map(|n| n.id())
                .chain(moves.iter().cloned())
                .collect();
        }
        self.changes.extend(deletes);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub fn count(&self, action: Action) -> usize {
        self.changes.iter().filter(|c| c.action == action).count()
    }
}
