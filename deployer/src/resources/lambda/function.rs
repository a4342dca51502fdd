//! The function: package type Image deployed by digest, its architecture, memory,
//! timeout, environment, execution role and reserved concurrency. Creating it and
//! updating its configuration retry while IAM has not yet made the role assumable
//! (`update`); every change waits, bounded, until the function is ready for the next
//! call (`status`). An update sends its configuration first, waits, then its code, and
//! waits again.

use std::collections::BTreeMap;

use super::ALIAS;
use super::cold_start::last_init_duration;
use super::provisioned_concurrency::find_alias;
use super::update::{ROLE_PROPAGATION, Update, needs};
use crate::aws::{Aws, AwsError, FoundExt, Service, error};
use crate::resources::{Field, Id, Kind, Resource, TagChange, Tags, tag_diff};

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

/// What `up` can change on a function.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Image {
        from: Option<String>,
        to: String,
    },
    Architecture {
        from: String,
        to: String,
    },
    Memory {
        from: u32,
        to: u32,
    },
    Timeout {
        from: u32,
        to: u32,
    },
    Role {
        from: String,
        to: String,
    },
    Environment {
        from: BTreeMap<String, String>,
        to: BTreeMap<String, String>,
    },
    ReservedConcurrency {
        from: Option<u32>,
        to: Option<u32>,
    },
    /// On the alias [`ALIAS`].
    ProvisionedConcurrency {
        from: Option<u32>,
        to: Option<u32>,
    },
    Tags(TagChange),
}

impl crate::resources::Change for Change {
    fn field(&self) -> Field {
        match self {
            Change::Image { from, to } => Field::new("image", from.as_ref(), to),
            Change::Architecture { from, to } => Field::new("architecture", Some(from), to),
            Change::Memory { from, to } => Field::new("memory_mb", Some(from), to),
            Change::Timeout { from, to } => Field::new("timeout_s", Some(from), to),
            Change::Role { from, to } => Field::new("role", Some(from), to),
            Change::Environment { from, to } => Field::new("environment", Some(from), to),
            Change::ReservedConcurrency { from, to } => {
                Field::new("reserved_concurrency", Some(from), to)
            }
            Change::ProvisionedConcurrency { from, to } => {
                Field::new("provisioned_concurrency", Some(from), to)
            }
            Change::Tags(t) => t.field(),
        }
    }
}

impl Resource for Function {
    type Observed = Observed;
    type Change = Change;
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

    fn diff(&self, o: &Observed) -> Vec<Change> {
        let mut d = Vec::new();
        if o.image.as_deref() != Some(self.image.as_str()) {
            d.push(Change::Image {
                from: o.image.clone(),
                to: self.image.clone(),
            });
        }
        if o.architecture != self.architecture {
            d.push(Change::Architecture {
                from: o.architecture.clone(),
                to: self.architecture.clone(),
            });
        }
        if o.memory_mb != self.memory_mb {
            d.push(Change::Memory {
                from: o.memory_mb,
                to: self.memory_mb,
            });
        }
        if o.timeout_s != self.timeout_s {
            d.push(Change::Timeout {
                from: o.timeout_s,
                to: self.timeout_s,
            });
        }
        if o.role_arn != self.role_arn {
            d.push(Change::Role {
                from: o.role_arn.clone(),
                to: self.role_arn.clone(),
            });
        }
        if o.environment != self.environment {
            d.push(Change::Environment {
                from: o.environment.clone(),
                to: self.environment.clone(),
            });
        }
        if o.reserved_concurrency != self.reserved_concurrency {
            d.push(Change::ReservedConcurrency {
                from: o.reserved_concurrency,
                to: self.reserved_concurrency,
            });
        }
        if o.provisioned_concurrency != self.provisioned_concurrency {
            d.push(Change::ProvisionedConcurrency {
                from: o.provisioned_concurrency,
                to: self.provisioned_concurrency,
            });
        }
        d.extend(tag_diff(&o.tags, &self.tags).map(Change::Tags));
        d
    }

    async fn apply(
        &self,
        aws: &Aws,
        observed: Option<&Observed>,
        changes: &[Change],
    ) -> Result<(), AwsError> {
        let Some(o) = observed else {
            return self.create(aws, ROLE_PROPAGATION).await;
        };
        // A previous update may still be in progress: Lambda refuses another until then.
        self.settled(aws, aws.timeouts.update()).await?;
        // Configuration first, then code, each waited for: Lambda takes one at a time.
        let configured = needs(changes, Update::Configuration);
        let coded = needs(changes, Update::Code);
        if configured {
            self.update_configuration(aws, ROLE_PROPAGATION).await?;
            self.settled(aws, aws.timeouts.update()).await?;
        }
        if coded {
            self.update_code(aws).await?;
            self.settled(aws, aws.timeouts.update()).await?;
        }
        for change in changes {
            if let Change::ReservedConcurrency { to, .. } = change {
                self.put_concurrency(aws, *to).await?;
            }
        }
        let provisioned = needs(changes, Update::ProvisionedConcurrency);
        self.sync_alias(
            aws,
            o.alias_version.is_some(),
            configured || coded,
            provisioned,
        )
        .await?;
        if needs(changes, Update::Tags) {
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

#[cfg(test)]
mod tests {
    use super::super::replay::{desired, in_sync};
    use super::super::update::Update;
    use super::*;
    use crate::resources::Change as _;

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
        assert!(matches!(d[..], [Change::Image { .. }]), "{d:?}");
        assert_eq!(d[0].update(), Update::Code);
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
        let d = f.diff(&o);
        let names: Vec<&str> = d.iter().map(|c| c.name()).collect();
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
        let updates: Vec<Update> = d.iter().map(Change::update).collect();
        assert_eq!(
            updates,
            [
                Update::Code,
                Update::Configuration,
                Update::Configuration,
                Update::Configuration,
                Update::ReservedConcurrency
            ]
        );
        // The plan shows values, not Rust: a reservation removed reads as (none).
        assert_eq!(d[4].field().to_string(), "reserved_concurrency: 5 → (none)");
    }

    #[test]
    fn provisioned_concurrency_is_its_own_field() {
        let mut f = desired();
        f.provisioned_concurrency = Some(2);
        let d = f.diff(&in_sync(&desired()));
        assert_eq!(
            d,
            [Change::ProvisionedConcurrency {
                from: None,
                to: Some(2)
            }]
        );
        assert_eq!(d[0].name(), "provisioned_concurrency");
        assert_eq!(d[0].field().to, serde_json::json!(2));
    }
}
