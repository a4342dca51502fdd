//! `deployer check`: what a first `up` on this account would otherwise fail on halfway,
//! read before anything is written: the credentials and account, the zones that offer
//! the instance type, Lambda's account quotas, the EC2 capacity the group may need, the
//! service-linked roles, and whether the bucket names are free or this stack's. Every
//! call here reads; nothing is created or changed.

use std::collections::BTreeSet;

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{Filter, InstanceType};
use aws_smithy_runtime_api::client::result::SdkError;
use serde::Serialize;

use crate::aws::{Aws, AwsError, FoundExt, Service, error};
use crate::error::Error;
use crate::manifest::{Manifest, OWNER_TAG};
use crate::output::Format;
use crate::resources::iam::{ECS_SERVICE_LINKED_ROLE, ServiceLinkedRole};
use crate::resources::{Resource, autoscaling, ec2, owned_by, s3};

/// How one check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    /// Worth knowing; `up` can still succeed.
    Warning,
    /// `up` would fail, or the stack would not work as the manifest asks.
    Problem,
    /// This tool could not tell (said why).
    NotChecked,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Problem => "problem",
            Status::NotChecked => "not checked",
        }
    }
}

/// One check's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub status: Status,
    pub message: String,
    pub hint: Option<String>,
}

impl Finding {
    fn new(check: &'static str, status: Status, message: impl Into<String>) -> Finding {
        Finding {
            check,
            status,
            message: message.into(),
            hint: None,
        }
    }

    fn hint(mut self, hint: impl Into<String>) -> Finding {
        self.hint = Some(hint.into());
        self
    }
}

/// Lambda keeps this much of an account's concurrency unreserved, whatever functions
/// reserve (Lambda developer guide, reserved concurrency).
pub const LAMBDA_MIN_UNRESERVED: i64 = 100;
/// The most memory a function may have.
pub const LAMBDA_MAX_MEMORY_MB: u32 = 10240;
/// The memory cap seen on new accounts, whose quotas start reduced.
pub const NEW_ACCOUNT_MEMORY_MB: u32 = 3008;
/// AWS's default account concurrency; new accounts start below it.
pub const DEFAULT_ACCOUNT_CONCURRENCY: i64 = 1000;

/// The service-linked roles the serverful side needs: ECS's (`up` creates it when
/// missing), and Auto Scaling's and Elastic Load Balancing's (AWS creates those itself on
/// the first group or load balancer, if the caller may create them).
const SERVICE_LINKED_ROLES: [(ServiceLinkedRole, &str); 3] = [
    (ECS_SERVICE_LINKED_ROLE, "`up` creates it"),
    (
        ServiceLinkedRole {
            service: "autoscaling.amazonaws.com",
            name: "AWSServiceRoleForAutoScaling",
        },
        "AWS creates it with the first Auto Scaling group",
    ),
    (
        ServiceLinkedRole {
            service: "elasticloadbalancing.amazonaws.com",
            name: "AWSServiceRoleForElasticLoadBalancing",
        },
        "AWS creates it with the first load balancer",
    ),
];

/// Runs every check, prints them, and answers 1 when any found a problem.
pub async fn run(aws: &Aws, m: &Manifest, format: Format) -> Result<u8, Error> {
    let mut findings = Vec::new();
    let account = credentials(aws, m, &mut findings).await;
    if account.is_some() {
        let (serverful, serverless, buckets) =
            futures::join!(serverful(aws, m), serverless(aws, m), buckets(aws, m));
        findings.extend(serverful);
        findings.extend(serverless);
        findings.extend(buckets);
    }
    let failed = findings.iter().any(|f| f.status == Status::Problem);
    match format {
        Format::Text => print!("{}", text(m, account.as_deref(), &findings)),
        Format::Json => println!(
            "{}",
            serde_json::json!({
                "stack": m.name,
                "region": m.region,
                "account": account,
                "ok": !failed,
                "checks": findings,
            })
        ),
    }
    Ok(u8::from(failed))
}

/// The report for people: one line per check, its hint on the next.
pub fn text(m: &Manifest, account: Option<&str>, findings: &[Finding]) -> String {
    let mut out = format!(
        "stack `{}` in `{}`, account {}\n",
        m.name,
        m.region,
        account.map_or_else(|| "unknown".to_string(), |a| format!("`{a}`"))
    );
    for f in findings {
        out.push_str(&format!(
            "{:<12} {}: {}\n",
            f.status.label(),
            f.check,
            f.message
        ));
        if let Some(h) = &f.hint {
            out.push_str(&format!("{:<12} hint: {h}\n", ""));
        }
    }
    let count = |s: Status| findings.iter().filter(|f| f.status == s).count();
    out.push_str(&format!(
        "{} problem(s), {} warning(s), {} not checked\n",
        count(Status::Problem),
        count(Status::Warning),
        count(Status::NotChecked)
    ));
    out
}

/// A failed read as a problem, with the explanation `up` would give (credentials,
/// permissions, the network).
async fn problem(check: &'static str, e: AwsError, m: &Manifest) -> Finding {
    let e = if e.code.is_some() || e.is_unreachable() {
        Error::Aws(e).explain(m).await
    } else {
        Error::Aws(e)
    };
    Finding {
        check,
        status: Status::Problem,
        message: e.to_string(),
        hint: e.hint(),
    }
}

/// Who the credentials are; `None` (and the reason in `findings`) when they do not work.
async fn credentials(aws: &Aws, m: &Manifest, findings: &mut Vec<Finding>) -> Option<String> {
    const CHECK: &str = "credentials";
    match aws
        .sts
        .get_caller_identity()
        .send()
        .await
        .map_err(error("sts:GetCallerIdentity"))
    {
        Ok(me) => {
            let account = me.account().unwrap_or_default().to_string();
            findings.push(Finding::new(
                CHECK,
                Status::Ok,
                format!("`{}`", me.arn().unwrap_or(&account)),
            ));
            Some(account)
        }
        Err(e) => {
            findings.push(problem(CHECK, e, m).await);
            findings.push(Finding::new(
                "everything else",
                Status::NotChecked,
                "every other check needs working credentials",
            ));
            None
        }
    }
}

/// The zones that offer the instance type, the network the group gets, the EC2 capacity
/// it may use, and the service-linked roles.
async fn serverful(aws: &Aws, m: &Manifest) -> Vec<Finding> {
    if !m.serverful.enabled {
        return Vec::new();
    }
    let mut out = vec![
        instance_type(aws, m).await,
        network(aws, m).await,
        vcpus(aws, m).await,
    ];
    for (role, when_missing) in SERVICE_LINKED_ROLES {
        out.push(service_linked_role(aws, m, role, when_missing).await);
    }
    out
}

/// The zones of the region that offer `serverful.instance_type`.
async fn instance_type(aws: &Aws, m: &Manifest) -> Finding {
    let t = &m.serverful.instance_type;
    match region_zones(aws, t).await {
        Ok((_, offered)) if offered.is_empty() => Finding::new(
            "instance type",
            Status::Problem,
            format!("`{t}` is offered in none of `{}`'s zones", m.region),
        )
        .hint("pick another `serverful.instance_type`"),
        Ok((all, offered)) => {
            let missing: Vec<&String> = all.difference(&offered).collect();
            let mut message = format!(
                "`{t}` is offered in {} of `{}`'s {} zones",
                offered.len(),
                m.region,
                all.len()
            );
            if !missing.is_empty() {
                message.push_str(&format!(
                    " (not in {}: the Auto Scaling group leaves their subnets out)",
                    join(missing)
                ));
            }
            Finding::new("instance type", Status::Ok, message)
        }
        Err(e) => problem("instance type", e, m).await,
    }
}

/// The VPC and subnets the load balancer and the instances get.
async fn network(aws: &Aws, m: &Manifest) -> Finding {
    let s = &m.serverful;
    let net = &s.network;
    match ec2::network(aws, net.vpc_id.as_deref(), &net.subnets, &s.instance_type).await {
        Ok(n) => {
            let mut message = format!(
                "VPC `{}`: the load balancer in {} subnet(s), the instances in {}",
                n.vpc_id,
                n.subnets.len(),
                n.instance_subnets.len()
            );
            if !n.zones_without_type.is_empty() {
                message.push_str(&format!(
                    " (left out: the subnets in {})",
                    join(&n.zones_without_type)
                ));
            }
            Finding::new("network", Status::Ok, message)
        }
        Err(e) => problem("network", e, m).await,
    }
}

/// Whether a service-linked role exists; `when_missing` says who would create it.
async fn service_linked_role(
    aws: &Aws,
    m: &Manifest,
    role: ServiceLinkedRole,
    when_missing: &str,
) -> Finding {
    match role.find(aws).await {
        Ok(Some(_)) => Finding::new(
            "service-linked role",
            Status::Ok,
            format!("`{}` exists", role.name),
        ),
        Ok(None) => Finding::new(
            "service-linked role",
            Status::Warning,
            format!(
                "`{}` does not exist yet: {when_missing}, which needs \
                 `iam:CreateServiceLinkedRole` for `{}` (in `deployer policy`)",
                role.name, role.service
            ),
        )
        .hint(format!(
            "or create it now: `aws iam create-service-linked-role --aws-service-name {}`",
            role.service
        )),
        Err(e) => problem("service-linked role", e, m).await,
    }
}

/// Every zone of the region, and those that offer `instance_type`.
async fn region_zones(
    aws: &Aws,
    instance_type: &str,
) -> Result<(BTreeSet<String>, BTreeSet<String>), AwsError> {
    let zones = aws
        .ec2
        .describe_availability_zones()
        .filters(
            Filter::builder()
                .name("zone-type")
                .values("availability-zone")
                .build(),
        )
        .send()
        .await
        .map_err(error("ec2:DescribeAvailabilityZones"))?;
    let all: BTreeSet<String> = zones
        .availability_zones()
        .iter()
        .filter_map(|z| z.zone_name().map(str::to_string))
        .collect();
    let offered = ec2::zones_offering(aws, instance_type, &BTreeSet::new())
        .await?
        .intersection(&all)
        .cloned()
        .collect();
    Ok((all, offered))
}

/// The vCPUs the group may run at once (its maximum, the rollout spare included), against
/// the account's quota of standard on-demand instances (Service Quotas `L-1216C47A`).
async fn vcpus(aws: &Aws, m: &Manifest) -> Finding {
    const CHECK: &str = "ec2 vcpu quota";
    let s = &m.serverful;
    let t = &s.instance_type;
    let per_instance = match instance_vcpus(aws, m).await {
        Ok(n) => n,
        Err(finding) => return finding,
    };
    let instances = autoscaling::headroom(s.max);
    let Some(per_instance) = per_instance else {
        return Finding::new(
            CHECK,
            Status::NotChecked,
            format!("EC2 does not say how many vCPUs `{t}` has"),
        );
    };
    let need = i64::from(per_instance) * i64::from(instances);
    let standard = t.starts_with(['a', 'c', 'd', 'h', 'i', 'm', 'r', 't', 'z']);
    let compare = format!(
        "compare with `aws service-quotas get-service-quota --service-code ec2 --quota-code \
         L-1216C47A --region {}` (new accounts start low); ask for an increase if it is under \
         {need}",
        m.region
    );
    let wanted = format!(
        "the group may run {instances} × `{t}` = {need} vCPUs (max {} and a spare for rollouts)",
        s.max
    );
    if !standard {
        return Finding::new(
            CHECK,
            Status::NotChecked,
            format!(
                "{wanted}; the `Running On-Demand … instances` quota of its family is not read"
            ),
        )
        .hint(compare);
    }
    let value = match vcpu_quota(aws, m).await {
        Ok(v) => v,
        Err(finding) => return finding,
    };
    let Some(value) = value else {
        return Finding::new(
            CHECK,
            Status::NotChecked,
            format!("{wanted}; Service Quotas did not give the `{VCPU_QUOTA}` quota"),
        )
        .hint(compare);
    };
    quota_finding(m, &wanted, value.floor() as i64, need)
}

/// The vCPUs of one `serverful.instance_type`, as EC2 says (`None` when it does not);
/// a finding when it cannot be read.
async fn instance_vcpus(aws: &Aws, m: &Manifest) -> Result<Option<i32>, Finding> {
    const CHECK: &str = "ec2 vcpu quota";
    let t = &m.serverful.instance_type;
    let out = aws
        .ec2
        .describe_instance_types()
        .instance_types(InstanceType::from(t.as_str()))
        .send()
        .await;
    match out {
        Ok(out) => Ok(out
            .instance_types()
            .first()
            .and_then(|i| i.v_cpu_info())
            .and_then(|v| v.default_v_cpus())),
        Err(SdkError::ServiceError(e)) if e.err().code() == Some("InvalidInstanceType") => {
            Err(Finding::new(
                CHECK,
                Status::Problem,
                format!("`{t}` is not an instance type of `{}`", m.region),
            )
            .hint("`aws ec2 describe-instance-types` lists them"))
        }
        Err(e) => Err(problem(CHECK, error("ec2:DescribeInstanceTypes")(e), m).await),
    }
}

/// The account's standard on-demand vCPU quota (`None` when Service Quotas does not
/// give it); a finding when reading it failed otherwise.
async fn vcpu_quota(aws: &Aws, m: &Manifest) -> Result<Option<f64>, Finding> {
    let answer = aws
        .quotas
        .get_service_quota()
        .service_code("ec2")
        .quota_code(VCPU_QUOTA)
        .send()
        .await;
    match answer {
        Ok(out) => Ok(out.quota().and_then(|q| q.value())),
        // Not known to the endpoint (the emulator knows VPC quotas only), or not ours to
        // read: said, not guessed.
        Err(SdkError::ServiceError(e))
            if e.err().is_no_such_resource_exception()
                || e.err().is_access_denied_exception()
                || e.raw().status().as_u16() == 404 =>
        {
            Ok(None)
        }
        Err(e) => Err(problem(
            "ec2 vcpu quota",
            error("servicequotas:GetServiceQuota")(e),
            m,
        )
        .await),
    }
}

/// The vCPUs the group may `need` against the quota the account `have`s.
fn quota_finding(m: &Manifest, wanted: &str, have: i64, need: i64) -> Finding {
    const CHECK: &str = "ec2 vcpu quota";
    if have < need {
        Finding::new(
            CHECK,
            Status::Problem,
            format!(
                "{wanted}, but the account's `Running On-Demand Standard (A, C, D, H, I, M, R, \
                 T, Z) instances` quota is {have} vCPUs"
            ),
        )
        .hint(format!(
            "ask for at least {need}: `aws service-quotas request-service-quota-increase \
             --service-code ec2 --quota-code {VCPU_QUOTA} --desired-value {need} --region {}`, \
             or lower `serverful.max`",
            m.region
        ))
    } else {
        Finding::new(
            CHECK,
            Status::Ok,
            format!("{wanted}; the quota is {have} vCPUs"),
        )
    }
}

/// Service Quotas' code of EC2's `Running On-Demand Standard (A, C, D, H, I, M, R, T, Z)
/// instances` quota, in vCPUs.
const VCPU_QUOTA: &str = "L-1216C47A";

/// Lambda's account concurrency and memory, against the manifest.
async fn serverless(aws: &Aws, m: &Manifest) -> Vec<Finding> {
    const CHECK: &str = "lambda quotas";
    if !m.serverless.enabled {
        return Vec::new();
    }
    let settings = aws.lambda.get_account_settings().send().await;
    let limits = match settings {
        Ok(s) => s.account_limit().map(|l| Limits {
            total: i64::from(l.concurrent_executions()),
            unreserved: l.unreserved_concurrent_executions().map(i64::from),
        }),
        // An endpoint that does not implement the call (the emulator) answers a bare 404;
        // AWS never does for this one.
        Err(SdkError::ServiceError(e))
            if e.err().code().is_none() && e.raw().status().as_u16() == 404 =>
        {
            return vec![Finding::new(
                CHECK,
                Status::NotChecked,
                "the endpoint does not implement `lambda:GetAccountSettings`",
            )];
        }
        Err(e) => return vec![problem(CHECK, error("lambda:GetAccountSettings")(e), m).await],
    };
    let Some(limits) = limits else {
        return vec![Finding::new(
            CHECK,
            Status::NotChecked,
            "`lambda:GetAccountSettings` returned no account limits",
        )];
    };
    // The function's own reservation, if it exists, is counted out of the unreserved
    // pool already and is given back when it changes.
    let ours = aws
        .lambda
        .get_function()
        .function_name(m.names().function)
        .send()
        .await
        .found(Service::Lambda, "lambda:GetFunction");
    let ours = match ours {
        Ok(f) => f
            .and_then(|f| f.concurrency)
            .and_then(|c| c.reserved_concurrent_executions)
            .map_or(0, i64::from),
        Err(e) => return vec![problem(CHECK, e, m).await],
    };
    lambda_findings(limits, ours, m)
}

/// What `GetAccountSettings` says of the account's concurrency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub total: i64,
    pub unreserved: Option<i64>,
}

/// The manifest's reserved concurrency and memory against the account's limits
/// (`ours`: what the stack's function reserves now).
pub fn lambda_findings(limits: Limits, ours: i64, m: &Manifest) -> Vec<Finding> {
    let mut out = vec![concurrency_finding(limits, ours, m)];
    out.extend(memory_finding(limits, m));
    out
}

/// The reservation the manifest asks for against what the account leaves unreserved.
fn concurrency_finding(limits: Limits, ours: i64, m: &Manifest) -> Finding {
    const CHECK: &str = "lambda quotas";
    let s = &m.serverless;
    let available = limits.unreserved.unwrap_or(limits.total) + ours;
    let reserve = s.reserved_concurrency.map_or(0, i64::from);
    let left = available - reserve;
    // The floor applies to reservations only: without one, nothing is taken from the pool.
    if reserve > 0 && left < LAMBDA_MIN_UNRESERVED {
        Finding::new(
            CHECK,
            Status::Problem,
            format!(
                "`serverless.reserved_concurrency: {reserve}` leaves {left} of the account's \
                     {available} unreserved concurrency; Lambda keeps at least \
                     {LAMBDA_MIN_UNRESERVED} unreserved"
            ),
        )
        .hint(format!(
            "reserve at most {} (or none), or ask for a higher Lambda `Concurrent \
                 executions` quota in Service Quotas",
            (available - LAMBDA_MIN_UNRESERVED).max(0)
        ))
    } else if limits.total < DEFAULT_ACCOUNT_CONCURRENCY {
        Finding::new(
            CHECK,
            Status::Warning,
            format!(
                "the account runs at most {} Lambda environments at once (AWS's default is \
                     {DEFAULT_ACCOUNT_CONCURRENCY}; new accounts start lower): the serverless side \
                     throttles above that",
                limits.total
            ),
        )
        .hint("ask for a higher Lambda `Concurrent executions` quota in Service Quotas")
    } else {
        Finding::new(
            CHECK,
            Status::Ok,
            format!(
                "concurrency {} ({available} unreserved{})",
                limits.total,
                if reserve > 0 {
                    format!(", {reserve} to be reserved")
                } else {
                    String::new()
                }
            ),
        )
    }
}

/// The function's memory against Lambda's limit, and the cap seen on reduced accounts.
fn memory_finding(limits: Limits, m: &Manifest) -> Option<Finding> {
    const CHECK: &str = "lambda quotas";
    let s = &m.serverless;
    if s.memory_mb > LAMBDA_MAX_MEMORY_MB {
        Some(
            Finding::new(
                CHECK,
                Status::Problem,
                format!(
                    "`serverless.memory_mb: {}` is over Lambda's {LAMBDA_MAX_MEMORY_MB} MB",
                    s.memory_mb
                ),
            )
            .hint(format!("use at most {LAMBDA_MAX_MEMORY_MB}")),
        )
    } else if s.memory_mb > NEW_ACCOUNT_MEMORY_MB && limits.total < DEFAULT_ACCOUNT_CONCURRENCY {
        Some(
            Finding::new(
                CHECK,
                Status::Warning,
                format!(
                    "`serverless.memory_mb: {}`: accounts with reduced quotas (this one's \
                     concurrency is {}) have been capped at {NEW_ACCOUNT_MEMORY_MB} MB",
                    s.memory_mb, limits.total
                ),
            )
            .hint(format!(
                "if `up` is refused the memory, use at most {NEW_ACCOUNT_MEMORY_MB} or ask AWS \
                 support to lift the account's Lambda memory limit"
            )),
        )
    } else {
        None
    }
}

/// Each bucket name: free, this stack's, or taken (by another account, in another region,
/// or in this account without the stack's tag).
async fn buckets(aws: &Aws, m: &Manifest) -> Vec<Finding> {
    const CHECK: &str = "bucket";
    let n = m.names();
    let mut out = Vec::new();
    for (name, setting) in [
        (n.input_bucket, "buckets.input.name"),
        (n.output_bucket, "buckets.output.name"),
    ] {
        let bucket = s3::Bucket {
            name: name.clone(),
            setting,
            region: m.region.clone(),
            partition: aws.partition().to_string(),
            public: false,
            expire_after_days: 0,
            tags: Default::default(),
        };
        out.push(match bucket.find(aws).await {
            Ok(None) => Finding::new(CHECK, Status::Ok, format!("`{name}` is free")),
            Ok(Some(o)) if owned_by(s3::Bucket::tags(&o), &m.name) => {
                Finding::new(CHECK, Status::Ok, format!("`{name}` is this stack's"))
            }
            Ok(Some(_)) => Finding::new(
                CHECK,
                Status::Problem,
                format!(
                    "`{name}` exists in this account without the tag `{OWNER_TAG} = {}`: `up` \
                     refuses to touch it",
                    m.name
                ),
            )
            .hint(format!(
                "if it is this stack's, `up --adopt` claims it; otherwise set `{setting}` to \
                 another name"
            )),
            Err(e) => problem(CHECK, e, m).await,
        });
    }
    out
}

fn join<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> String {
    items
        .into_iter()
        .map(|s| format!("`{}`", s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(reserved: Option<u32>, memory_mb: u32) -> Manifest {
        let mut m = Manifest::parse(
            std::path::Path::new("t.yaml"),
            "name: s\nregion: us-east-1\n",
        )
        .unwrap();
        m.serverless.reserved_concurrency = reserved;
        m.serverless.memory_mb = memory_mb;
        m
    }

    fn statuses(f: &[Finding]) -> Vec<Status> {
        f.iter().map(|f| f.status).collect()
    }

    #[test]
    fn a_reservation_must_leave_a_hundred_unreserved() {
        let limits = Limits {
            total: 1000,
            unreserved: Some(1000),
        };
        let fits = lambda_findings(limits, 0, &manifest(Some(900), 3000));
        assert_eq!(statuses(&fits), [Status::Ok]);
        let over = lambda_findings(limits, 0, &manifest(Some(901), 3000));
        assert_eq!(statuses(&over), [Status::Problem]);
        assert!(over[0].message.contains("leaves 99"), "{over:?}");
        assert!(over[0].hint.as_deref().unwrap().contains("at most 900"));
        // The function's own reservation comes back when it changes.
        let ours = Limits {
            total: 1000,
            unreserved: Some(100),
        };
        assert_eq!(
            statuses(&lambda_findings(ours, 900, &manifest(Some(900), 3000))),
            [Status::Ok]
        );
    }

    #[test]
    fn a_reduced_account_is_warned_about_concurrency_and_memory() {
        let new = Limits {
            total: 10,
            unreserved: Some(10),
        };
        assert_eq!(
            statuses(&lambda_findings(new, 0, &manifest(None, 3000))),
            [Status::Warning]
        );
        assert_eq!(
            statuses(&lambda_findings(new, 0, &manifest(None, 4096))),
            [Status::Warning, Status::Warning]
        );
        // Ten reserved of ten leaves nothing: a problem, not a warning.
        assert_eq!(
            statuses(&lambda_findings(new, 0, &manifest(Some(10), 3000))),
            [Status::Problem]
        );
        let big = Limits {
            total: 1000,
            unreserved: Some(1000),
        };
        assert_eq!(
            statuses(&lambda_findings(big, 0, &manifest(None, 10241))),
            [Status::Ok, Status::Problem]
        );
    }
}
