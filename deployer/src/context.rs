//! The facts a stack needs besides its manifest, looked up before planning and before
//! any write: the image reference and what it is built for, the serverful target's
//! network, instance architecture and AMI. A mismatch between the image and the
//! instances is refused here, so `up` never creates half a stack for an image that
//! cannot run.

use crate::aws::Aws;
use crate::error::Error;
use crate::image;
use crate::image::registry::{Platform, Registry, RegistryError};
use crate::manifest::Manifest;
use crate::resources::ec2;
use crate::stack::{self, Account, Context, Push};

/// What the command asks of the lookups.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lookup {
    /// Move the instances to the AMI AWS recommends now (`--refresh-ami`).
    pub refresh_ami: bool,
}

/// The image both targets run, the network and the AMI, for `manifest` in `account`.
pub async fn context(
    aws: &Aws,
    manifest: &Manifest,
    account: Account,
    push: Option<Push>,
    lookup: Lookup,
) -> Result<Context, Error> {
    let uri = image_uri(aws, manifest, &account, push.as_ref()).await?;
    let mut notes = Vec::new();
    // What the image is built for (OCI names): one, or an index's entries.
    let candidates = match push.as_ref().and_then(|p| p.built.as_ref()) {
        Some(built) => vec![built.architecture.clone()],
        None => read_architectures(aws, manifest, push.as_ref(), &uri, &mut notes).await?,
    };
    let runnable = runnable(&uri, &candidates)?;
    let architecture = runnable.first().copied().unwrap_or("x86_64");
    let (network, ami) = if manifest.serverful.enabled {
        let (network, ami) = serverful(aws, manifest, &runnable, lookup, &mut notes).await?;
        (Some(network), Some(ami))
    } else {
        (None, None)
    };
    Ok(Context {
        account,
        image: stack::Image {
            uri,
            architecture: architecture.to_string(),
        },
        network,
        ami,
        notes,
        push,
    })
}

/// The image both targets run: the manifest's `image.uri`, the one built in this run,
/// or what the tag points at now (a stack never built shows the tag itself).
async fn image_uri(
    aws: &Aws,
    manifest: &Manifest,
    account: &Account,
    push: Option<&Push>,
) -> Result<String, Error> {
    let repository = manifest.names().repository;
    let host = manifest.image.registry.clone().unwrap_or_else(|| {
        format!(
            "{}.dkr.ecr.{}.{}",
            account.id,
            account.region,
            dns_suffix(&account.partition)
        )
    });
    if let Some(uri) = &manifest.image.uri {
        return Ok(uri.clone());
    }
    if let Some(built) = push.and_then(|p| p.built.as_ref()) {
        return Ok(format!("{host}/{repository}@{}", built.digest));
    }
    let push = push.expect("no image.uri: the push step exists");
    let registry = push
        .client
        .get_or_try_init(|| Registry::connect(aws, manifest.image.registry.as_deref()))
        .await?;
    Ok(
        match registry.digest_of(&repository, &manifest.image.tag).await? {
            Some(digest) => registry.pinned(&repository, &digest),
            None => format!("{host}/{repository}:{}", manifest.image.tag),
        },
    )
}

/// What an image this run did not build is built for. Unreadable is not wrong: the
/// targets' own pulls will tell. What was assumed is said in `notes` instead of
/// stopping a deploy on a registry this run cannot read.
async fn read_architectures(
    aws: &Aws,
    manifest: &Manifest,
    push: Option<&Push>,
    uri: &str,
    notes: &mut Vec<String>,
) -> Result<Vec<String>, Error> {
    match image_architecture(aws, manifest, push, uri).await {
        Ok(archs) => archs,
        Err(Unread(e)) => {
            let arch = image::host_architecture().to_string();
            notes.push(format!(
                "could not read what `{uri}` is built for ({e}); assuming `{}`",
                image::lambda_architecture(&arch)
            ));
            Ok(vec![arch])
        }
    }
}

/// The architectures of `candidates` AWS runs (EC2's and Lambda's names); none is an
/// error.
fn runnable(uri: &str, candidates: &[String]) -> Result<Vec<&'static str>, Error> {
    let runnable: Vec<&'static str> = candidates
        .iter()
        .filter_map(|a| aws_architecture(a))
        .collect();
    if runnable.is_empty() {
        return Err(Error::Usage {
            message: format!(
                "`{uri}` is built for `{}`; AWS runs x86_64 and arm64 only",
                candidates.join("`, `")
            ),
            hint: Some("deploy an image built for linux/amd64 or linux/arm64".into()),
        });
    }
    Ok(runnable)
}

/// The serverful target's network and AMI. The instances keep the AMI they run until
/// asked to move: AWS publishes a new ECS-optimized AMI every few weeks, and a plan that
/// changes by itself is noise.
async fn serverful(
    aws: &Aws,
    manifest: &Manifest,
    runnable: &[&str],
    lookup: Lookup,
    notes: &mut Vec<String>,
) -> Result<(ec2::Network, String), Error> {
    let s = &manifest.serverful;
    let instance_arch = instance_architecture(aws, manifest, runnable).await?;
    let net = &s.network;
    let network = ec2::network(aws, net.vpc_id.as_deref(), &net.subnets, &s.instance_type).await?;
    let recommended = ec2::recommended_ami(aws, &instance_arch).await?;
    let current = ec2::find_template(aws, &manifest.names().launch_template)
        .await?
        .filter(|t| t.data.instance_type == s.instance_type && !t.data.image_id.is_empty())
        .map(|t| t.data.image_id);
    match current {
        Some(current) if !lookup.refresh_ami && current != recommended => {
            notes.push(format!(
                "AWS recommends a newer ECS-optimized AMI, `{recommended}`; the \
                 instances keep `{current}` until `--refresh-ami` (instances launched \
                 after that use the new one)"
            ));
            Ok((network, current))
        }
        _ => Ok((network, recommended)),
    }
}

/// The OCI architecture of an image this run did not build (`image.uri`, or the tag's
/// current digest), read from its config: Lambda must be told, and the instances must
/// match. An image not pushed yet is taken to be this machine's (`up` builds it here).
async fn image_architecture(
    aws: &Aws,
    manifest: &Manifest,
    push: Option<&Push>,
    uri: &str,
) -> Result<Result<Vec<String>, Error>, Unread> {
    let (host, reference) = crate::local::rootfs::parse(uri).map_err(Unread)?;
    let platform = match push {
        Some(push) => {
            let ours = push
                .client
                .get_or_try_init(|| Registry::connect(aws, manifest.image.registry.as_deref()))
                .await
                .map_err(unread)?;
            read(ours, &host, &reference).await
        }
        None => {
            let ours = Registry::connect(aws, manifest.image.registry.as_deref())
                .await
                .map_err(unread)?;
            read(&ours, &host, &reference).await
        }
    }
    .map_err(unread)?;
    Ok(match platform {
        Some(Platform::Image(arch)) => Ok(vec![arch]),
        None => Ok(vec![image::host_architecture().to_string()]),
        Some(Platform::Index(archs)) if !manifest.serverless.enabled => {
            // ECS pulls the entry of the instance's own platform; buildx's attestation
            // entries (`unknown`) are not images.
            Ok(archs.into_iter().filter(|a| a != "unknown").collect())
        }
        Some(Platform::Index(archs)) => Err(Error::Usage {
            message: format!(
                "`{uri}` is a multi-architecture index ({}); Lambda runs single-architecture \
                 images only",
                archs.join(", ")
            ),
            hint: Some("name one of its images by digest in `image.uri`".into()),
        }),
    })
}

/// EC2's and Lambda's name for an OCI architecture both targets can run, if any.
fn aws_architecture(oci: &str) -> Option<&'static str> {
    match oci {
        "amd64" => Some("x86_64"),
        "arm64" => Some("arm64"),
        _ => None,
    }
}

/// Why an image's architecture could not be read (the registry's answer), for a note.
struct Unread(String);

fn unread(e: RegistryError) -> Unread {
    Unread(e.to_string())
}

/// What `reference` is built for, read with this account's registry credentials when it
/// lives there, anonymously elsewhere.
async fn read(
    ours: &Registry,
    host: &str,
    reference: &oci_client::Reference,
) -> Result<Option<Platform>, RegistryError> {
    if ours.host == host {
        ours.platform(reference).await
    } else {
        Registry::new(host, oci_client::secrets::RegistryAuth::Anonymous)
            .platform(reference)
            .await
    }
}

/// The EC2 architecture of the manifest's instance type, refused unless the image (one of
/// an index's entries) is built for it.
async fn instance_architecture(
    aws: &Aws,
    manifest: &Manifest,
    image_archs: &[&str],
) -> Result<String, Error> {
    let t = &manifest.serverful.instance_type;
    let Some(archs) = ec2::instance_architectures(aws, t).await? else {
        return Err(Error::Usage {
            message: format!(
                "`serverful.instance_type: {t}` is not an instance type of `{}`",
                manifest.region
            ),
            hint: Some("`aws ec2 describe-instance-types` lists them".into()),
        });
    };
    if let Some(both) = image_archs.iter().find(|a| archs.iter().any(|b| b == *a)) {
        return Ok(both.to_string());
    }
    let wanted = image_archs.first().copied().unwrap_or("x86_64");
    Err(Error::Usage {
        message: format!(
            "the image is built for `{}` but `{t}` runs `{}`",
            image_archs.join("`, `"),
            archs.join("`, `")
        ),
        hint: Some(format!(
            "pick a `serverful.instance_type` that runs {wanted} (e.g. {}), or deploy an \
             image built for {}",
            if wanted == "arm64" {
                "t4g.xlarge"
            } else {
                "t3a.xlarge"
            },
            archs.first().map_or("it", String::as_str)
        )),
    })
}

/// The DNS suffix of a partition's service endpoints (the ECR registry host).
pub fn dns_suffix(partition: &str) -> &'static str {
    match partition {
        "aws-cn" => "amazonaws.com.cn",
        "aws-eusc" => "amazonaws.eu",
        _ => "amazonaws.com",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_hosts_follow_the_partition() {
        assert_eq!(dns_suffix("aws"), "amazonaws.com");
        assert_eq!(dns_suffix("aws-us-gov"), "amazonaws.com");
        assert_eq!(dns_suffix("aws-cn"), "amazonaws.com.cn");
        assert_eq!(dns_suffix("aws-eusc"), "amazonaws.eu");
    }

    #[test]
    fn partitions_follow_the_region() {
        use crate::aws::partition_of;
        assert_eq!(partition_of("us-east-1"), "aws");
        assert_eq!(partition_of("cn-north-1"), "aws-cn");
        assert_eq!(partition_of("us-gov-west-1"), "aws-us-gov");
        assert_eq!(partition_of("eusc-de-east-1"), "aws-eusc");
        assert_eq!(partition_of("us-isob-east-1"), "aws-iso-b");
    }

    #[test]
    fn only_architectures_aws_runs_are_accepted() {
        assert_eq!(aws_architecture("amd64"), Some("x86_64"));
        assert_eq!(aws_architecture("arm64"), Some("arm64"));
        assert_eq!(aws_architecture("s390x"), None);
        assert_eq!(aws_architecture("unknown"), None);
    }
}
