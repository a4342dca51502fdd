//! The function: package type Image deployed by digest, its architecture, memory,
//! timeout, environment, execution role and reserved concurrency. Creating it retries
//! while IAM has not yet made the new role assumable; every change waits, bounded, until
//! the function is ready for the next call.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_lambda::types::{Architecture, Environment, FunctionCode, PackageType};

use super::ALIAS;
use super::cold_start::last_init_duration;
use super::provisioned_concurrency::find_alias;
use crate::aws::{Aws, AwsError, FoundExt, Service, error};
use crate::resources::{Field, Id, Kind, Resource, Tags, tag_field};
use crate::wait::{self, Poll};

/// How long a create or update may take to settle (image functions optimise the image
/// on create: minutes for a large one).
const SETTLE: Duration = Duration::from_secs(600);

/// How long a new role may take to become assumable by Lambda (IAM is eventually
/// consistent; usually seconds).
const ROLE_PROPAGATION: Duration = Duration::from_secs(90);

#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    pub name: String,
    pub role_name: String,
    pub role_arn: String,
    pub log_group: String,
    /// `repository@sha256:…`
    pub image: String,
    /// Lambda's name for the image's architecture: `x86_64` or `arm64`.
    pub architecture: String,
    pub memory_mb: u32,
    pub timeout_s: u32,
    pub environment: BTreeMap<String, String>,
    pub reserved_concurrency: Option<u32>,
    /// Instances kept initialised on the alias [`ALIAS`] (a published version).
    pub provisioned_concurrency: Option<u32>,
    /// The image push of this run, when there is one: it must finish first.
    pub image_push: Option<Id>,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub arn: String,
    pub image: Option<String>,
    pub architecture: String,
    pub memory_mb: u32,
    pub timeout_s: u32,
    pub role_arn: String,
    pub environment: BTreeMap<String, String>,
    pub reserved_concurrency: Option<u32>,
    /// The version the alias points at, when it exists.
    pub alias_version: Option<String>,
    /// Provisioned concurrency requested on the alias.
    pub provisioned_concurrency: Option<u32>,
    pub state: String,
    pub last_update: String,
    pub tags: Tags,
    /// The init duration of the most recent cold start in the function's logs.
    pub last_init_ms: Option<f64>,
}

impl Resource for Function {
    type Observed = Observed;
    type Change = Field;
    const KIND: Kind = Kind::LambdaFunction;

    fn name(&self) -> &str {
        &self.name
    }

    fn depends_on(&self) -> Vec<Id> {
        let mut deps = vec![
            Id::new(Kind::IamRole, &self.role_name),
            Id::new(Kind::LogGroup, &self.log_group),
        ];
        deps.extend(self.image_push.clone());
        deps
    }

    async fn find(&self, aws: &Aws) -> Result<Option<Observed>, AwsError> {
        let Some(out) = aws
            .lambda
            .get_function()
            .function_name(&self.name)
            .send()
            .await
            .found(Service::Lambda, "lambda:GetFunction")?
        else {
            return Ok(None);
        };
        let Some(c) = out.configuration() else {
            return Ok(None);
        };
        let last_init_ms = last_init_duration(aws, &self.log_group).await?;
        let (alias_version, provisioned_concurrency) = find_alias(aws, &self.name).await?;
        Ok(Some(Observed {
            arn: c.function_arn().unwrap_or_default().to_string(),
            image: out
                .code()
                .and_then(|code| code.image_uri())
                .map(str::to_string),
            architecture: c
                .architectures()
                .first()
                .map_or("x86_64", |a| a.as_str())
                .to_string(),
            memory_mb: c.memory_size().unwrap_or_default() as u32,
            timeout_s: c.timeout().unwrap_or_default() as u32,
            role_arn: c.role().unwrap_or_default().to_string(),
            environment: c
                .environment()
                .and_then(|e| e.variables())
                .map(|v| v.clone().into_iter().collect())
                .unwrap_or_default(),
            reserved_concurrency: out
                .concurrency()
                .and_then(|c| c.reserved_concurrent_executions())
                .map(|n| n as u32),
            alias_version,
            provisioned_concurrency,
            state: c.state().map_or("", |s| s.as_str()).to_string(),
            last_update: c
                .last_update_status()
                .map_or("", |s| s.as_str())
                .to_string(),
            tags: out
                .tags()
                .map(|t| t.clone().into_iter().collect())
                .unwrap_or_default(),
            last_init_ms,
        }))
    }

    fn tags(observed: &Observed) -> &Tags {
        &observed.tags
    }

    fn diff(&self, o: &Observed) -> Vec<Field> {
        let mut d = Vec::new();
        if o.image.as_deref() != Some(self.image.as_str()) {
            d.push(Field::new("image", o.image.as_ref(), &self.image));
        }
        if o.architecture != self.architecture {
            d.push(Field::new(
                "architecture",
                Some(&o.architecture),
                &self.architecture,
            ));
        }
        if o.memory_mb != self.memory_mb {
            d.push(Field::new("memory_mb", Some(o.memory_mb), self.memory_mb));
        }
        if o.timeout_s != self.timeout_s {
            d.push(Field::new("timeout_s", Some(o.timeout_s), self.timeout_s));
        }
        if o.role_arn != self.role_arn {
            d.push(Field::new("role", Some(&o.role_arn), &self.role_arn));
        }
        if o.environment != self.environment {
            d.push(Field::new(
                "environment",
                Some(&o.environment),
                &self.environment,
            ));
        }
        if o.reserved_concurrency != self.reserved_concurrency {
            d.push(Field::new(
                "reserved_concurrency",
                Some(o.reserved_concurrency),
                self.reserved_concurrency,
            ));
        }
        if o.provisioned_concurrency != self.provisioned_concurrency {
            d.push(Field::new(
                "provisioned_concurrency",
                Some(o.provisioned_concurrency),
                self.provisioned_concurrency,
            ));
        }
        d.extend(tag_field(&o.tags, &self.tags));
        d
    }

    async fn apply(
        &self,
        aws: &Aws,
        observed: Option<&Observed>,
        diff: &[Field],
    ) -> Result<(), AwsError> {
        let Some(o) = observed else {
            return self.create(aws).await;
        };
        let changed = |name: &str| diff.iter().any(|f| f.name == name);
        // A previous update may still be in progress: Lambda refuses another until then.
        self.settled(aws).await?;
        let configured = changed("memory_mb")
            || changed("timeout_s")
            || changed("role")
            || changed("environment");
        let coded = changed("image") || changed("architecture");
        if configured {
            aws.lambda
                .update_function_configuration()
                .function_name(&self.name)
                .memory_size(self.memory_mb as i32)
                .timeout(self.timeout_s as i32)
                .role(&self.role_arn)
                .environment(self.environment())
                .send()
                .await
                .map_err(error("lambda:UpdateFunctionConfiguration"))?;
            self.settled(aws).await?;
        }
        if coded {
            aws.lambda
                .update_function_code()
                .function_name(&self.name)
                .image_uri(&self.image)
                .architectures(self.architecture())
                .send()
                .await
                .map_err(error("lambda:UpdateFunctionCode"))?;
            self.settled(aws).await?;
        }
        if changed("reserved_concurrency") {
            self.put_concurrency(aws).await?;
        }
        match self.provisioned_concurrency {
            // New code or settings reach the warm instances as a new version on the alias.
            Some(_) if configured || coded || o.alias_version.is_none() => {
                self.publish_to_alias(aws, o.alias_version.is_some())
                    .await?;
                self.put_provisioned(aws).await?;
            }
            Some(_) if changed("provisioned_concurrency") => self.put_provisioned(aws).await?,
            None if o.alias_version.is_some() => self.drop_provisioned(aws).await?,
            _ => {}
        }
        if changed("tags") {
            aws.lambda
                .tag_resource()
                .resource(&o.arn)
                .set_tags(Some(self.tags.clone().into_iter().collect()))
                .send()
                .await
                .map_err(error("lambda:TagResource"))?;
        }
        Ok(())
    }

    async fn delete(&self, aws: &Aws, _: &Observed) -> Result<(), AwsError> {
        aws.lambda
            .delete_function()
            .function_name(&self.name)
            .send()
            .await
            .found(Service::Lambda, "lambda:DeleteFunction")?;
        Ok(())
    }

    fn detail(o: &Observed) -> String {
        let digest = o
            .image
            .as_deref()
            .and_then(|i| i.split('@').nth(1))
            .unwrap_or("no image");
        let cold = o
            .last_init_ms
            .map(|ms| format!(", last cold start {ms:.0} ms"))
            .unwrap_or_default();
        let warm = match (o.provisioned_concurrency, &o.alias_version) {
            (Some(n), Some(v)) => format!(", {n} provisioned on `{ALIAS}` (version {v})"),
            _ => String::new(),
        };
        format!(
            "{} / {}, {} MB, {} s, {digest}{warm}{cold}",
            o.state, o.last_update, o.memory_mb, o.timeout_s
        )
    }
}

/// Whether a function is ready for the next call, from its `State` and
/// `LastUpdateStatus` (and their reasons).
pub fn readiness(
    state: Option<&str>,
    state_reason: Option<&str>,
    last_update: Option<&str>,
    update_reason: Option<&str>,
) -> Poll<()> {
    let reason = |r: Option<&str>| r.unwrap_or("no reason given").to_string();
    match (
        state.unwrap_or("Pending"),
        last_update.unwrap_or("Successful"),
    ) {
        ("Failed", _) => Poll::Failed(format!("function state Failed: {}", reason(state_reason))),
        (_, "Failed") => Poll::Failed(format!("last update Failed: {}", reason(update_reason))),
        // An idle function is reclaimed to Inactive; an update reactivates it.
        ("Active" | "Inactive", "Successful") => Poll::Ready(()),
        (state, update) => Poll::Pending(format!("state {state}, last update {update}")),
    }
}

impl Function {
    async fn settled(&self, aws: &Aws) -> Result<(), AwsError> {
        wait::until(
            "lambda:GetFunctionConfiguration",
            SETTLE,
            Duration::from_secs(1),
            || async {
                let c = aws
                    .lambda
                    .get_function_configuration()
                    .function_name(&self.name)
                    .send()
                    .await
                    .map_err(error("lambda:GetFunctionConfiguration"))?;
                Ok(readiness(
                    c.state().map(|s| s.as_str()),
                    c.state_reason(),
                    c.last_update_status().map(|s| s.as_str()),
                    c.last_update_status_reason(),
                ))
            },
        )
        .await
    }
}

/// Whether an error is IAM's eventual consistency: the role exists but Lambda cannot
/// assume it yet.
fn role_not_ready(e: &AwsError) -> bool {
    e.code.as_deref() == Some("InvalidParameterValueException")
        && e.message.contains("cannot be assumed")
}

impl Function {
    fn environment(&self) -> Environment {
        Environment::builder()
            .set_variables(Some(self.environment.clone().into_iter().collect()))
            .build()
    }

    fn architecture(&self) -> Architecture {
        Architecture::from(self.architecture.as_str())
    }

    async fn create(&self, aws: &Aws) -> Result<(), AwsError> {
        wait::retrying(
            "lambda:CreateFunction",
            ROLE_PROPAGATION,
            Duration::from_secs(2),
            || async {
                aws.lambda
                    .create_function()
                    .function_name(&self.name)
                    .package_type(PackageType::Image)
                    .code(FunctionCode::builder().image_uri(&self.image).build())
                    .role(&self.role_arn)
                    .architectures(self.architecture())
                    .memory_size(self.memory_mb as i32)
                    .timeout(self.timeout_s as i32)
                    .environment(self.environment())
                    .set_tags(Some(self.tags.clone().into_iter().collect()))
                    .send()
                    .await
                    .map_err(error("lambda:CreateFunction"))
            },
            role_not_ready,
        )
        .await?;
        self.settled(aws).await?;
        // A new function has no reserved concurrency: only a number needs a call.
        if self.reserved_concurrency.is_some() {
            self.put_concurrency(aws).await?;
        }
        if self.provisioned_concurrency.is_some() {
            self.publish_to_alias(aws, false).await?;
            self.put_provisioned(aws).await?;
        }
        Ok(())
    }

    async fn put_concurrency(&self, aws: &Aws) -> Result<(), AwsError> {
        match self.reserved_concurrency {
            Some(n) => {
                aws.lambda
                    .put_function_concurrency()
                    .function_name(&self.name)
                    .reserved_concurrent_executions(n as i32)
                    .send()
                    .await
                    .map_err(error("lambda:PutFunctionConcurrency"))?;
            }
            None => {
                aws.lambda
                    .delete_function_concurrency()
                    .function_name(&self.name)
                    .send()
                    .await
                    .map_err(error("lambda:DeleteFunctionConcurrency"))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired() -> Function {
        Function {
            name: "s-predictor".into(),
            role_name: "s-lambda".into(),
            role_arn: "arn:aws:iam::123456789012:role/s-lambda".into(),
            log_group: "/aws/lambda/s-predictor".into(),
            image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/s-predictor@sha256:aa".into(),
            architecture: "x86_64".into(),
            memory_mb: 3000,
            timeout_s: 30,
            environment: [("CONF".to_string(), "0.25".to_string())].into(),
            reserved_concurrency: None,
            provisioned_concurrency: None,
            image_push: None,
            tags: [("deployer:stack".to_string(), "s".to_string())].into(),
        }
    }

    fn in_sync(f: &Function) -> Observed {
        Observed {
            arn: "arn:aws:lambda:us-east-1:123456789012:function:s-predictor".into(),
            image: Some(f.image.clone()),
            architecture: f.architecture.clone(),
            memory_mb: f.memory_mb,
            timeout_s: f.timeout_s,
            role_arn: f.role_arn.clone(),
            environment: f.environment.clone(),
            reserved_concurrency: None,
            alias_version: None,
            provisioned_concurrency: None,
            state: "Active".into(),
            last_update: "Successful".into(),
            tags: f.tags.clone(),
            last_init_ms: None,
        }
    }

    #[test]
    fn in_sync_function_has_no_diff() {
        let f = desired();
        assert_eq!(f.diff(&in_sync(&f)), []);
    }

    #[test]
    fn a_new_digest_is_an_image_change_only() {
        let f = desired();
        let mut o = in_sync(&f);
        o.image = Some(f.image.replace("sha256:aa", "sha256:bb"));
        let d = f.diff(&o);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].name, "image");
    }

    #[test]
    fn settings_drift_is_named() {
        let f = desired();
        let mut o = in_sync(&f);
        o.memory_mb = 1024;
        o.timeout_s = 3;
        o.environment.insert("CONF".into(), "0.5".into());
        o.reserved_concurrency = Some(5);
        o.architecture = "arm64".into();
        let names: Vec<&str> = f.diff(&o).iter().map(|f| f.name).collect();
        assert_eq!(
            names,
            [
                "architecture",
                "memory_mb",
                "timeout_s",
                "environment",
                "reserved_concurrency"
            ]
        );
    }

    /// `State`/`LastUpdateStatus` pairs as the GetFunctionConfiguration reference
    /// documents them (fixtures in tests/fixtures/lambda).
    #[test]
    fn readiness_follows_state_and_last_update() {
        let fixtures: serde_json::Value = serde_json::from_str(include_str!(
            "../../../tests/fixtures/lambda/get_function_configuration.json"
        ))
        .unwrap();
        for case in fixtures.as_array().unwrap() {
            let c = &case["response"];
            let s = |k: &str| c[k].as_str();
            let got = readiness(
                s("State"),
                s("StateReason"),
                s("LastUpdateStatus"),
                s("LastUpdateStatusReason"),
            );
            let want = case["expect"].as_str().unwrap();
            let kind = match &got {
                Poll::Ready(()) => "ready",
                Poll::Pending(_) => "pending",
                Poll::Failed(_) => "failed",
            };
            assert_eq!(kind, want, "{}: {got:?}", case["case"]);
            if let Poll::Failed(why) = got {
                assert!(
                    why.contains(s("StateReason").or(s("LastUpdateStatusReason")).unwrap()),
                    "{why}"
                );
            }
        }
    }

    #[test]
    fn provisioned_concurrency_is_its_own_field() {
        let mut f = desired();
        f.provisioned_concurrency = Some(2);
        let d = f.diff(&in_sync(&desired()));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].name, "provisioned_concurrency");
        assert_eq!(d[0].to, serde_json::json!(2));
    }

    #[test]
    fn only_the_role_propagation_error_is_retried() {
        let e = |code: &str, msg: &str| AwsError {
            operation: "lambda:CreateFunction",
            code: Some(code.into()),
            message: msg.into(),
            hint: None,
            unreachable: false,
            unsent: false,
        };
        assert!(role_not_ready(&e(
            "InvalidParameterValueException",
            "The role defined for the function cannot be assumed by Lambda."
        )));
        assert!(!role_not_ready(&e(
            "InvalidParameterValueException",
            "Source image 1234.dkr.ecr.us-east-1.amazonaws.com/x@sha256:aa does not exist."
        )));
        assert!(!role_not_ready(&e(
            "AccessDeniedException",
            "cannot be assumed"
        )));
    }
}
