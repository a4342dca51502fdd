//! One module per AWS resource kind, each implementing [`Resource`] with the same verbs:
//! `find` (observe; `None` when absent), `diff` (desired vs observed, as data), `apply`
//! (create, or update only what differs), `delete` (absent already = success), and for
//! what holds data and may outlive `down` (buckets), `empty`.
//!
//! The engine works on [`Node`]s: a type-erased view of any resource, so the plan can
//! hold every kind in one list.

pub mod apigw;
pub mod autoscaling;
pub mod ec2;
pub mod ecr;
pub mod ecs;
pub mod elb;
pub mod iam;
pub mod image;
pub mod lambda;
pub mod logs;
#[cfg(test)]
pub mod recording;
pub mod s3;
pub mod tags;

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use serde::Serialize;

use crate::aws::{Aws, AwsError};
use crate::manifest::OWNER_TAG;

pub type Tags = BTreeMap<String, String>;

/// The kinds of resource a stack is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    EcrRepository,
    Image,
    S3Bucket,
    IamRole,
    IamInstanceProfile,
    LogGroup,
    LambdaFunction,
    HttpApi,
    SecurityGroup,
    LaunchTemplate,
    AutoScalingGroup,
    EcsCluster,
    CapacityProvider,
    LoadBalancer,
    TargetGroup,
    Listener,
    EcsService,
    ServiceScaling,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::EcrRepository => "ecr repository",
            Kind::Image => "image",
            Kind::S3Bucket => "s3 bucket",
            Kind::IamRole => "iam role",
            Kind::IamInstanceProfile => "instance profile",
            Kind::LogGroup => "log group",
            Kind::LambdaFunction => "lambda function",
            Kind::HttpApi => "http api",
            Kind::SecurityGroup => "security group",
            Kind::LaunchTemplate => "launch template",
            Kind::AutoScalingGroup => "auto scaling group",
            Kind::EcsCluster => "ecs cluster",
            Kind::CapacityProvider => "capacity provider",
            Kind::LoadBalancer => "load balancer",
            Kind::TargetGroup => "target group",
            Kind::Listener => "listener",
            Kind::EcsService => "ecs service",
            Kind::ServiceScaling => "service scaling",
        })
    }
}

/// A resource's identity within a stack.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Id {
    pub kind: Kind,
    pub name: String,
}

impl Id {
    pub fn new(kind: Kind, name: impl Into<String>) -> Id {
        Id {
            kind,
            name: name.into(),
        }
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} `{}`", self.kind, self.name)
    }
}

/// One setting that differs, as the plan shows it: its name, what AWS has (`None`:
/// nothing), what is wanted. Resources never carry these: they carry their own typed
/// [`Change`]s and render them as fields for the plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Field {
    pub name: &'static str,
    pub from: Option<serde_json::Value>,
    pub to: serde_json::Value,
}

impl Field {
    pub fn new<A: Serialize, B: Serialize>(name: &'static str, from: Option<A>, to: B) -> Field {
        Field {
            name,
            from: from.map(|f| serde_json::to_value(f).unwrap_or_default()),
            to: serde_json::to_value(to).unwrap_or_default(),
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn show(v: &serde_json::Value) -> String {
            match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => "(none)".into(),
                other => other.to_string(),
            }
        }
        let from = self.from.as_ref().map_or("(none)".into(), show);
        write!(f, "{}: {from} → {}", self.name, show(&self.to))
    }
}

/// One setting of a resource that differs from the manifest: each resource kind has its
/// own enum, `diff` returns them, `apply` matches them exhaustively (a setting added to
/// the enum and forgotten in `apply` does not compile), and the plan shows each as a
/// [`Field`].
pub trait Change: fmt::Debug + Clone + PartialEq + 'static {
    /// The change as the plan shows it, in text and JSON.
    fn field(&self) -> Field;
    /// Whether AWS cannot make this change in place: the resource is deleted and created
    /// again (a target group's port).
    fn replaces(&self) -> bool {
        false
    }
    /// The setting's name in the plan (what tests compare).
    #[cfg(test)]
    fn name(&self) -> &'static str {
        self.field().name
    }
}

/// The stack's tags that a resource lacks or holds with another value: `from` is what
/// it holds under those keys, `to` what it gets. Tags others put on it are left alone.
#[derive(Debug, Clone, PartialEq)]
pub struct TagChange {
    pub from: Tags,
    pub to: Tags,
}

impl TagChange {
    pub fn field(&self) -> Field {
        Field::new(
            "tags",
            (!self.from.is_empty()).then_some(&self.from),
            &self.to,
        )
    }
}

/// The tags in `want` that `have` lacks or holds with another value.
pub fn tag_diff(have: &Tags, want: &Tags) -> Option<TagChange> {
    let to: Tags = want
        .iter()
        .filter(|(k, v)| have.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (!to.is_empty()).then(|| TagChange {
        from: to
            .keys()
            .filter_map(|k| have.get(k).map(|v| (k.clone(), v.clone())))
            .collect(),
        to,
    })
}

/// Whether `tags` mark a resource as belonging to `stack`.
pub fn owned_by(tags: &Tags, stack: &str) -> bool {
    tags.get(OWNER_TAG).is_some_and(|v| v == stack)
}

/// What a resource must do when one it depends on is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// Look again once the replacement exists and make what then differs (an ECS
    /// service pointed at the new target group's ARN).
    Recheck,
    /// Go and come back with it: AWS refuses to delete what it holds on to (a listener
    /// forwarding to the target group).
    Replace,
}

/// A kind of AWS resource, as a reconciler sees it.
#[allow(async_fn_in_trait)] // the engine drives these on one task; no Send bound needed
pub trait Resource: 'static {
    /// What `find` learns about the resource in AWS.
    type Observed: fmt::Debug + 'static;
    /// One setting that can differ; see [`Change`].
    type Change: Change;
    const KIND: Kind;

    fn name(&self) -> &str;
    /// Resources that must exist before this one (and be deleted after it).
    fn depends_on(&self) -> Vec<Id> {
        Vec::new()
    }
    /// What this resource does when `dependency` (one of [`Resource::depends_on`]) is
    /// replaced.
    fn follows(&self, _dependency: &Id) -> Follow {
        Follow::Recheck
    }
    /// Observes the resource; `Ok(None)` when it does not exist.
    async fn find(&self, aws: &Aws) -> Result<Option<Self::Observed>, AwsError>;
    /// The resource's tags, for the ownership check.
    fn tags(observed: &Self::Observed) -> &Tags;
    /// What differs between this desired state and `observed`; empty when in sync.
    fn diff(&self, observed: &Self::Observed) -> Vec<Self::Change>;
    /// Creates the resource (`observed` is `None`) or makes exactly the `changes`.
    async fn apply(
        &self,
        aws: &Aws,
        observed: Option<&Self::Observed>,
        changes: &[Self::Change],
    ) -> Result<(), AwsError>;
    /// Deletes the resource and whatever must go first (a bucket's objects).
    async fn delete(&self, aws: &Aws, observed: &Self::Observed) -> Result<(), AwsError>;
    /// Whether the resource holds data that `down` removes when it keeps the resource.
    fn holds_data(_observed: &Self::Observed) -> bool {
        false
    }
    /// Removes the data the resource holds and keeps the resource (`down` without
    /// `--delete-buckets`).
    async fn empty(&self, _aws: &Aws, _observed: &Self::Observed) -> Result<(), AwsError> {
        Ok(())
    }
    /// A one-line summary for `status` (an ARN, a URI, a setting).
    fn detail(observed: &Self::Observed) -> String;
}

/// What the engine knows about one resource after observing it.
pub struct Observation {
    pub id: Id,
    state: Option<Box<dyn Any>>,
    /// The resource's typed changes (`Vec<R::Change>`); `diff` shows them.
    changes: Option<Box<dyn Any>>,
    pub exists: bool,
    pub owned: bool,
    /// Whether it holds data (a bucket's objects).
    pub holds_data: bool,
    /// What differs, as the plan shows it.
    pub diff: Vec<Field>,
    /// Whether a difference cannot be made in place (see [`Change::replaces`]).
    pub replace: bool,
    pub detail: String,
}

impl Observation {
    /// What `find` saw, as the resource's own type; `None` when it does not exist.
    fn state<R: Resource>(&self) -> Option<&R::Observed> {
        self.state
            .as_ref()
            .and_then(|s| s.downcast_ref::<R::Observed>())
    }

    /// The typed changes `diff` found, as the resource's own type.
    fn changes<R: Resource>(&self) -> &[R::Change] {
        self.changes
            .as_ref()
            .and_then(|c| c.downcast_ref::<Vec<R::Change>>())
            .map_or(&[], Vec::as_slice)
    }

    /// A resource that does not exist.
    pub fn missing(id: Id) -> Observation {
        Observation {
            id,
            state: None,
            changes: None,
            exists: false,
            owned: false,
            holds_data: false,
            diff: Vec::new(),
            replace: false,
            detail: String::new(),
        }
    }
}

pub type LocalFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;
/// Any [`Resource`], type-erased for the engine.
pub trait Node {
    fn id(&self) -> Id;
    fn depends_on(&self) -> Vec<Id>;
    fn follows(&self, dependency: &Id) -> Follow;
    fn observe<'a>(
        &'a self,
        aws: &'a Aws,
        stack: &'a str,
    ) -> LocalFuture<'a, Result<Observation, AwsError>>;
    fn apply<'a>(
        &'a self,
        aws: &'a Aws,
        seen: &'a Observation,
    ) -> LocalFuture<'a, Result<(), AwsError>>;
    fn delete<'a>(
        &'a self,
        aws: &'a Aws,
        seen: &'a Observation,
    ) -> LocalFuture<'a, Result<(), AwsError>>;
    fn empty<'a>(
        &'a self,
        aws: &'a Aws,
        seen: &'a Observation,
    ) -> LocalFuture<'a, Result<(), AwsError>>;
    /// The resource itself, for tests that look at what the stack asks for.
    #[cfg(test)]
    fn as_any(&self) -> &dyn std::any::Any {
        &()
    }
}

impl<R: Resource + 'static> Node for R {
    fn id(&self) -> Id {
        Id::new(R::KIND, self.name())
    }

    #[cfg(test)]
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn depends_on(&self) -> Vec<Id> {
        Resource::depends_on(self)
    }

    fn follows(&self, dependency: &Id) -> Follow {
        Resource::follows(self, dependency)
    }

    fn observe<'a>(
        &'a self,
        aws: &'a Aws,
        stack: &'a str,
    ) -> LocalFuture<'a, Result<Observation, AwsError>> {
        Box::pin(async move {
            let found = self.find(aws).await?;
            let id = Node::id(self);
            Ok(match found {
                None => Observation::missing(id),
                Some(state) => {
                    let changes = self.diff(&state);
                    Observation {
                        id,
                        exists: true,
                        owned: owned_by(R::tags(&state), stack),
                        holds_data: R::holds_data(&state),
                        diff: changes.iter().map(Change::field).collect(),
                        replace: changes.iter().any(Change::replaces),
                        detail: R::detail(&state),
                        state: Some(Box::new(state)),
                        changes: Some(Box::new(changes)),
                    }
                }
            })
        })
    }

    fn apply<'a>(
        &'a self,
        aws: &'a Aws,
        seen: &'a Observation,
    ) -> LocalFuture<'a, Result<(), AwsError>> {
        Box::pin(
            async move { Resource::apply(self, aws, seen.state::<R>(), seen.changes::<R>()).await },
        )
    }

    fn delete<'a>(
        &'a self,
        aws: &'a Aws,
        seen: &'a Observation,
    ) -> LocalFuture<'a, Result<(), AwsError>> {
        Box::pin(async move {
            match seen.state::<R>() {
                Some(state) => Resource::delete(self, aws, state).await,
                None => Ok(()),
            }
        })
    }

    fn empty<'a>(
        &'a self,
        aws: &'a Aws,
        seen: &'a Observation,
    ) -> LocalFuture<'a, Result<(), AwsError>> {
        Box::pin(async move {
            match seen.state::<R>() {
                Some(state) => Resource::empty(self, aws, state).await,
                None => Ok(()),
            }
        })
    }
}

#[cfg(test)]
mod tests;
