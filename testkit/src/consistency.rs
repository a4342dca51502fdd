//! AWS's eventual consistency, reproduced in front of moto (which is consistent at
//! once): for a window after a resource is created, the calls that use it get AWS's own
//! error answer, in the service's protocol shape. Which windows are on is part of
//! [`crate::Behaviour`]; this module keeps what was created when, and decides each call.
//!
//! The answers, as AWS gives them (terraform-provider-aws and eksctl trackers, IAM User
//! Guide "changes I make are not always immediately visible"):
//! - IAM, right after `CreateRole`: `NoSuchEntity` from `PutRolePolicy`,
//!   `AttachRolePolicy`, `AddRoleToInstanceProfile`;
//! - Auto Scaling, right after `CreateInstanceProfile`/`AddRoleToInstanceProfile`:
//!   `CreateAutoScalingGroup` with a launch template naming the profile answers
//!   `ValidationError ... Invalid IAM Instance Profile name`;
//! - ECS, right after `CreateCapacityProvider`: the provider is `PROVISIONING` and
//!   `PutClusterCapacityProviders` answers `InvalidParameterException ... is not in an
//!   ACTIVE state`;
//! - ECS, in an account that never used it: `CreateCluster`,
//!   `PutClusterCapacityProviders`, `CreateService` answer `InvalidParameterException:
//!   Unable to assume the service linked role` until `AWSServiceRoleForECS` exists (and
//!   for a window after it is created); creating it again answers `InvalidInput ... has
//!   been taken in this account`;
//! - S3, after `DeleteBucket`: `CreateBucket` of the same name answers `OperationAborted`
//!   (409, "A conflicting conditional operation is currently in progress against this
//!   resource"); AWS advises waiting up to 48-72 hours, and any account may take the
//!   name meanwhile.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::Behaviour;

/// How long a consistency window stays open after the resource is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The first `n` calls of each kind that use the resource are refused (a
    /// `DescribeCapacityProviders` answer rewritten counts as one).
    Calls(u32),
    /// Every such call within this time of the creation is refused.
    For(Duration),
}

/// The ECS service-linked role's name and service.
pub const ECS_SERVICE_LINKED_ROLE: &str = "AWSServiceRoleForECS";
const ECS_SERVICE: &str = "ecs.amazonaws.com";
const ECS_PATH: &str = "/aws-service-role/ecs.amazonaws.com/";

/// One AWS call, as the proxy sees it: its operation and parameters, in the shape of
/// its protocol.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub operation: String,
    /// Query protocol (IAM, Auto Scaling, EC2): the form parameters.
    pub params: BTreeMap<String, String>,
    /// JSON protocol (ECS): the body.
    pub json: Value,
}

impl Call {
    /// Reads a query-protocol form body or an `X-Amz-Target` JSON body; `None` for
    /// anything else (REST services, the registry).
    pub fn parse(target: Option<&str>, body: &[u8]) -> Option<Call> {
        if let Some(target) = target {
            return Some(Call {
                operation: target.rsplit('.').next().unwrap_or(target).to_string(),
                params: BTreeMap::new(),
                json: serde_json::from_slice(body).unwrap_or(Value::Null),
            });
        }
        let text = std::str::from_utf8(body).ok()?;
        let params: BTreeMap<String, String> = text
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (form_decode(k), form_decode(v)))
            .collect();
        Some(Call {
            operation: params.get("Action")?.clone(),
            params,
            json: Value::Null,
        })
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    fn json_str(&self, name: &str) -> Option<&str> {
        self.json.get(name).and_then(Value::as_str)
    }
}

/// `application/x-www-form-urlencoded` decoding.
pub(crate) fn form_decode(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex: Vec<u8> = bytes.by_ref().take(2).collect();
                match std::str::from_utf8(&hex)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(v) => out.push(v),
                    None => out.extend(std::iter::once(b'%').chain(hex)),
                }
            }
            b => out.push(b),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An answer the proxy gives instead of the upstream's.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Refusal {
    /// Query protocol: `<ErrorResponse><Error><Type>Sender</Type><Code>…`, status 400.
    Query {
        namespace: &'static str,
        code: &'static str,
        message: String,
    },
    /// JSON protocol: `{"__type": …, "message": …}`, status 400.
    Json { code: &'static str, message: String },
    /// S3: `<Error><Code>…</Code>…<BucketName>…`, status 409.
    S3 {
        code: &'static str,
        message: String,
        bucket: String,
    },
}

impl Refusal {
    /// Content type and body.
    pub fn render(&self, request_id: &str) -> (&'static str, Vec<u8>) {
        match self {
            Refusal::Query {
                namespace,
                code,
                message,
            } => (
                "text/xml",
                format!(
                    "<ErrorResponse xmlns=\"{namespace}\">\n  <Error>\n    <Type>Sender</Type>\n    \
                     <Code>{code}</Code>\n    <Message>{}</Message>\n  </Error>\n  \
                     <RequestId>{request_id}</RequestId>\n</ErrorResponse>\n",
                    xml_escape(message)
                )
                .into_bytes(),
            ),
            Refusal::Json { code, message } => (
                "application/x-amz-json-1.1",
                serde_json::json!({"__type": code, "message": message})
                    .to_string()
                    .into_bytes(),
            ),
            Refusal::S3 {
                code,
                message,
                bucket,
            } => (
                "application/xml",
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
                     <Message>{}</Message><BucketName>{}</BucketName>\
                     <RequestId>{request_id}</RequestId><HostId>{request_id}</HostId></Error>",
                    xml_escape(message),
                    xml_escape(bucket)
                )
                .into_bytes(),
            ),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Query { code, .. } | Refusal::Json { code, .. } | Refusal::S3 { code, .. } => {
                code
            }
        }
    }

    /// The HTTP status and its reason phrase.
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            Refusal::S3 { .. } => (409, "Conflict"),
            _ => (400, "Bad Request"),
        }
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The key of a capacity provider's window: its status, however it is looked at.
const STATUS: &str = "status";

const IAM_NS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
const AUTOSCALING_NS: &str = "http://autoscaling.amazonaws.com/doc/2011-01-01/";

/// What a window is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Subject {
    Role(String),
    Profile(String),
    Provider(String),
    EcsRole,
    Bucket(String),
}

#[derive(Debug)]
struct Opened {
    at: Instant,
    /// Refusals so far, per operation.
    hits: HashMap<String, u32>,
}

#[derive(Debug, Default)]
struct State {
    opened: HashMap<Subject, Opened>,
    /// Launch template → the instance profile its latest version names.
    templates: HashMap<String, String>,
    /// Whether `AWSServiceRoleForECS` exists (created or seen through the proxy).
    ecs_role: bool,
}

/// The windows of one proxy.
#[derive(Debug, Default)]
pub(crate) struct Windows {
    state: Mutex<State>,
}

impl State {
    fn open(&mut self, subject: Subject) {
        self.opened.insert(
            subject,
            Opened {
                at: Instant::now(),
                hits: HashMap::new(),
            },
        );
    }

    /// Whether a call keyed `key` (its operation, or one key for every call) on
    /// `subject` is refused now; counts it if so.
    fn refuses(&mut self, subject: &Subject, window: Window, key: &str) -> bool {
        let Some(opened) = self.opened.get_mut(subject) else {
            return false;
        };
        let hits = opened.hits.entry(key.to_string()).or_default();
        let open = match window {
            Window::Calls(n) => *hits < n,
            Window::For(d) => opened.at.elapsed() < d,
        };
        if open {
            *hits += 1;
        }
        open
    }
}

impl Windows {
    /// Opens capacity provider `name`'s window now, as if it had just been created.
    pub fn provisioning(&self, name: &str) {
        self.state
            .lock()
            .unwrap()
            .open(Subject::Provider(name.to_string()));
    }

    /// Bucket `name` was deleted now.
    pub fn bucket_deleted(&self, name: &str) {
        self.state
            .lock()
            .unwrap()
            .open(Subject::Bucket(name.to_string()));
    }

    /// S3's answer to `CreateBucket` of a name deleted within the window, if it is.
    pub fn create_bucket(&self, b: &Behaviour, name: &str) -> Option<Refusal> {
        let w = b.deleted_bucket_names?;
        let mut s = self.state.lock().unwrap();
        s.refuses(&Subject::Bucket(name.to_string()), w, "CreateBucket")
            .then(|| Refusal::S3 {
                code: "OperationAborted",
                message: "A conflicting conditional operation is currently in progress \
                          against this resource. Please try again."
                    .into(),
                bucket: name.to_string(),
            })
    }

    /// The answer to give instead of forwarding `call`, if a window refuses it.
    pub fn before(&self, b: &Behaviour, call: &Call) -> Option<Refusal> {
        let mut s = self.state.lock().unwrap();
        let op = call.operation.as_str();
        if let Some(w) = b.role_propagation
            && matches!(
                op,
                "PutRolePolicy" | "AttachRolePolicy" | "AddRoleToInstanceProfile"
            )
            && let Some(role) = call.param("RoleName")
            && s.refuses(&Subject::Role(role.to_string()), w, op)
        {
            return Some(Refusal::Query {
                namespace: IAM_NS,
                code: "NoSuchEntity",
                message: format!("The role with name {role} cannot be found."),
            });
        }
        if let Some(w) = b.profile_propagation
            && op == "CreateAutoScalingGroup"
            && let Some(template) = call.param("LaunchTemplate.LaunchTemplateName")
            && let Some(profile) = s.templates.get(template).cloned()
            && s.refuses(&Subject::Profile(profile.clone()), w, op)
        {
            return Some(Refusal::Query {
                namespace: AUTOSCALING_NS,
                code: "ValidationError",
                message: format!(
                    "You must use a valid fully-formed launch template. Value ({profile}) for \
                     parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name"
                ),
            });
        }
        if let Some(w) = b.ecs_service_linked_role
            && matches!(
                op,
                "CreateCluster" | "PutClusterCapacityProviders" | "CreateService"
            )
            && (!s.ecs_role || s.refuses(&Subject::EcsRole, w, op))
        {
            return Some(Refusal::Json {
                code: "InvalidParameterException",
                message: "Unable to assume the service linked role. Please verify that the ECS \
                          service linked role exists."
                    .into(),
            });
        }
        if let Some(w) = b.capacity_provider_provisioning
            && op == "PutClusterCapacityProviders"
        {
            let names: Vec<String> = call.json["capacityProviders"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect();
            for name in names {
                // One window for the provider's status, whichever call looks at it.
                if s.refuses(&Subject::Provider(name.clone()), w, STATUS) {
                    return Some(Refusal::Json {
                        code: "InvalidParameterException",
                        message: format!(
                            "The specified capacity provider '{name}' is not in an ACTIVE \
                             state. Specify a valid capacity provider and try again."
                        ),
                    });
                }
            }
        }
        None
    }

    /// Notes what a forwarded call created, and rewrites the upstream's answer where
    /// AWS's differs; `None` keeps the answer.
    pub fn after(&self, b: &Behaviour, call: &Call, status: u16, body: &[u8]) -> After {
        let mut s = self.state.lock().unwrap();
        let op = call.operation.as_str();
        let ok = status == 200;
        match op {
            "CreateRole" if ok => {
                if let Some(role) = call.param("RoleName") {
                    s.open(Subject::Role(role.to_string()));
                }
            }
            "CreateInstanceProfile" | "AddRoleToInstanceProfile" if ok => {
                if let Some(p) = call.param("InstanceProfileName") {
                    s.open(Subject::Profile(p.to_string()));
                }
            }
            "CreateLaunchTemplate" | "CreateLaunchTemplateVersion" if ok => {
                if let (Some(t), Some(p)) = (
                    call.param("LaunchTemplateName"),
                    call.param("LaunchTemplateData.IamInstanceProfile.Name"),
                ) {
                    s.templates.insert(t.to_string(), p.to_string());
                }
            }
            "CreateCapacityProvider" if ok => {
                if let Some(name) = call.json_str("name") {
                    s.open(Subject::Provider(name.to_string()));
                }
            }
            // Seen to exist (made before the window was switched on).
            "GetRole" if ok && call.param("RoleName") == Some(ECS_SERVICE_LINKED_ROLE) => {
                s.ecs_role = true;
            }
            "ListRoles"
                if ok
                    && call.param("PathPrefix") == Some(ECS_PATH)
                    && String::from_utf8_lossy(body).contains("<RoleName>") =>
            {
                s.ecs_role = true;
            }
            "CreateServiceLinkedRole" if call.param("AWSServiceName") == Some(ECS_SERVICE) => {
                if ok && !s.ecs_role {
                    s.ecs_role = true;
                    s.open(Subject::EcsRole);
                } else if !ok && b.ecs_service_linked_role.is_some() {
                    // moto answers `EntityAlreadyExists`; AWS this.
                    return After::Refuse(Refusal::Query {
                        namespace: IAM_NS,
                        code: "InvalidInput",
                        message: format!(
                            "Service role name {ECS_SERVICE_LINKED_ROLE} has been taken in this \
                             account, please try a different suffix."
                        ),
                    });
                }
            }
            // moto fails with a 500 (a Python `ValueError`) when the role is not in the
            // profile, as after a retry of a removal that happened; AWS says this.
            "RemoveRoleFromInstanceProfile" if status == 500 => {
                return After::Refuse(Refusal::Query {
                    namespace: IAM_NS,
                    code: "NoSuchEntity",
                    message: format!(
                        "The role with name {} cannot be found in instance profile {}.",
                        call.param("RoleName").unwrap_or_default(),
                        call.param("InstanceProfileName").unwrap_or_default()
                    ),
                });
            }
            // moto answers `ValidationException` for a target that is not there (as
            // after a retry of a removal that happened); AWS `ObjectNotFoundException`.
            // moto's text is the only way to tell it from a real validation error.
            "DeregisterScalableTarget"
                if status == 400
                    && String::from_utf8_lossy(body).contains("No scalable target found") =>
            {
                return After::Refuse(Refusal::Json {
                    code: "ObjectNotFoundException",
                    message: "No scalable target found for service namespace: ecs".into(),
                });
            }
            "DescribeCapacityProviders" if ok => {
                if let Some(w) = b.capacity_provider_provisioning
                    && let Ok(mut answer) = serde_json::from_slice::<Value>(body)
                {
                    let mut changed = false;
                    for cp in answer["capacityProviders"]
                        .as_array_mut()
                        .into_iter()
                        .flatten()
                    {
                        let name = cp["name"].as_str().unwrap_or_default().to_string();
                        if cp["status"] == "ACTIVE"
                            && s.refuses(&Subject::Provider(name), w, STATUS)
                        {
                            cp["status"] = "PROVISIONING".into();
                            cp["updateStatus"] = "CREATE_IN_PROGRESS".into();
                            changed = true;
                        }
                    }
                    if changed {
                        return After::Body(answer.to_string().into_bytes(), "PROVISIONING");
                    }
                }
            }
            _ => {}
        }
        After::Keep
    }
}

/// What to do with a forwarded call's answer.
#[derive(Debug)]
pub(crate) enum After {
    Keep,
    /// The same status and headers with this body; what was rewritten.
    Body(Vec<u8>, &'static str),
    /// AWS's error instead.
    Refuse(Refusal),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(body: &str) -> Call {
        Call::parse(None, body.as_bytes()).unwrap()
    }

    #[test]
    fn a_role_is_refused_per_operation_for_its_window_then_passes() {
        let w = Windows::default();
        let b = Behaviour {
            role_propagation: Some(Window::Calls(2)),
            ..Behaviour::default()
        };
        let put = query("Action=PutRolePolicy&RoleName=r&PolicyName=p");
        // Not created through the proxy: nothing to refuse.
        assert_eq!(w.before(&b, &put), None);
        let create = query("Action=CreateRole&RoleName=r&Path=%2F");
        assert!(matches!(w.after(&b, &create, 200, b""), After::Keep));
        for _ in 0..2 {
            let r = w.before(&b, &put).unwrap();
            assert_eq!(r.code(), "NoSuchEntity");
        }
        assert_eq!(w.before(&b, &put), None);
        let attach = query("Action=AttachRolePolicy&RoleName=r&PolicyArn=a");
        assert!(
            w.before(&b, &attach).is_some(),
            "each operation has its window"
        );
        let (_, body) = w.before(&b, &attach).unwrap().render("req-1");
        let body = String::from_utf8(body).unwrap();
        assert!(
            body.contains("<Error>\n    <Type>Sender</Type>\n    <Code>NoSuchEntity</Code>")
                && body.contains("<RequestId>req-1</RequestId>"),
            "{body}"
        );
    }

    #[test]
    fn a_group_is_refused_while_its_templates_profile_is_new() {
        let w = Windows::default();
        let b = Behaviour {
            profile_propagation: Some(Window::For(Duration::from_secs(60))),
            ..Behaviour::default()
        };
        w.after(
            &b,
            &query("Action=CreateLaunchTemplate&LaunchTemplateName=lt&LaunchTemplateData.IamInstanceProfile.Name=p"),
            200,
            b"",
        );
        let asg = query(
            "Action=CreateAutoScalingGroup&AutoScalingGroupName=g&LaunchTemplate.LaunchTemplateName=lt",
        );
        assert_eq!(w.before(&b, &asg), None, "the profile is not new");
        w.after(
            &b,
            &query("Action=CreateInstanceProfile&InstanceProfileName=p"),
            200,
            b"",
        );
        match w.before(&b, &asg) {
            Some(Refusal::Query { code, message, .. }) => {
                assert_eq!(code, "ValidationError");
                assert!(message.ends_with("Invalid IAM Instance Profile name"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ecs_refuses_until_its_service_linked_role_exists() {
        let w = Windows::default();
        let b = Behaviour {
            ecs_service_linked_role: Some(Window::Calls(1)),
            ..Behaviour::default()
        };
        let cluster = Call::parse(
            Some("AmazonEC2ContainerServiceV20141113.CreateCluster"),
            br#"{"clusterName":"c"}"#,
        )
        .unwrap();
        for _ in 0..3 {
            assert_eq!(
                w.before(&b, &cluster).unwrap().code(),
                "InvalidParameterException"
            );
        }
        let slr = query("Action=CreateServiceLinkedRole&AWSServiceName=ecs.amazonaws.com");
        w.after(&b, &slr, 200, b"");
        assert!(w.before(&b, &cluster).is_some(), "propagating");
        assert_eq!(w.before(&b, &cluster), None);
        match w.after(&b, &slr, 409, b"") {
            After::Refuse(r) => assert_eq!(r.code(), "InvalidInput"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_new_capacity_provider_is_provisioning_for_its_window() {
        let w = Windows::default();
        let b = Behaviour {
            capacity_provider_provisioning: Some(Window::Calls(1)),
            ..Behaviour::default()
        };
        let target = |op: &str| format!("AmazonEC2ContainerServiceV20141113.{op}");
        let create =
            Call::parse(Some(&target("CreateCapacityProvider")), br#"{"name":"cp"}"#).unwrap();
        w.after(&b, &create, 200, b"");
        let describe = Call::parse(
            Some(&target("DescribeCapacityProviders")),
            br#"{"capacityProviders":["cp"]}"#,
        )
        .unwrap();
        let answer = br#"{"capacityProviders":[{"name":"cp","status":"ACTIVE"}]}"#;
        match w.after(&b, &describe, 200, answer) {
            After::Body(body, _) => {
                let v: Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(v["capacityProviders"][0]["status"], "PROVISIONING");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(w.after(&b, &describe, 200, answer), After::Keep));
        let put_ok = Call::parse(
            Some(&target("PutClusterCapacityProviders")),
            br#"{"cluster":"c","capacityProviders":["cp"]}"#,
        )
        .unwrap();
        assert_eq!(w.before(&b, &put_ok), None, "seen ACTIVE, usable");
        w.provisioning("cp");
        let put = Call::parse(
            Some(&target("PutClusterCapacityProviders")),
            br#"{"cluster":"c","capacityProviders":["cp"]}"#,
        )
        .unwrap();
        match w.before(&b, &put) {
            Some(Refusal::Json { message, .. }) => {
                assert!(message.contains("'cp' is not in an ACTIVE state"))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(w.before(&b, &put), None);
    }

    #[test]
    fn a_deleted_bucket_name_is_refused_for_its_window() {
        let w = Windows::default();
        let b = Behaviour {
            deleted_bucket_names: Some(Window::Calls(2)),
            ..Behaviour::default()
        };
        assert_eq!(w.create_bucket(&b, "x"), None, "never deleted");
        w.bucket_deleted("x");
        let r = w.create_bucket(&b, "x").unwrap();
        assert_eq!(r.status(), (409, "Conflict"));
        let (_, body) = r.render("req-1");
        let body = String::from_utf8(body).unwrap();
        assert!(
            body.contains("<Code>OperationAborted</Code>")
                && body.contains("<BucketName>x</BucketName>"),
            "{body}"
        );
        assert!(w.create_bucket(&b, "x").is_some());
        assert_eq!(w.create_bucket(&b, "x"), None, "the window closed");
        assert_eq!(w.create_bucket(&Behaviour::default(), "y"), None);
    }
}
