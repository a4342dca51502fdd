//! What the instances run: the architectures of their instance type and the
//! ECS-optimized AMI AWS recommends for it (looked up, never created).

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::InstanceType;

use crate::aws::{Aws, AwsError, error};

/// The CPU architectures (EC2's names: `x86_64`, `arm64`) an instance type runs, from
/// `DescribeInstanceTypes`; an instance type the region does not know is an input error.
pub async fn instance_architectures(
    aws: &Aws,
    instance_type: &str,
) -> Result<Option<Vec<String>>, AwsError> {
    const OP: &str = "ec2:DescribeInstanceTypes";
    let out = aws
        .ec2
        .describe_instance_types()
        .instance_types(InstanceType::from(instance_type))
        .send()
        .await;
    let out = match out {
        Ok(out) => out,
        // EC2 refuses an unknown type in the request itself (`InvalidInstanceType`).
        // (`InvalidInstanceType.NotFound` from older emulators.)
        Err(e)
            if matches!(
                e.code(),
                Some("InvalidInstanceType" | "InvalidInstanceType.NotFound")
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(error(OP)(e)),
    };
    Ok(out.instance_types().first().map(|t| {
        t.processor_info()
            .map(|p| {
                p.supported_architectures()
                    .iter()
                    .map(|a| a.as_str().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }))
}

/// The public SSM parameter naming the current ECS-optimized Amazon Linux 2023 AMI for
/// instances of `architecture` (EC2's name).
pub fn ami_parameter(architecture: &str) -> &'static str {
    match architecture {
        "arm64" => "/aws/service/ecs/optimized-ami/amazon-linux-2023/arm64/recommended/image_id",
        _ => "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id",
    }
}

/// The ECS-optimized AMI AWS recommends now for `architecture`.
pub async fn recommended_ami(aws: &Aws, architecture: &str) -> Result<String, AwsError> {
    const OP: &str = "ssm:GetParameter";
    aws.ssm
        .get_parameter()
        .name(ami_parameter(architecture))
        .send()
        .await
        .map_err(error(OP))?
        .parameter
        .and_then(|p| p.value)
        .ok_or_else(|| AwsError::new(OP, "the ECS AMI parameter has no value"))
}
