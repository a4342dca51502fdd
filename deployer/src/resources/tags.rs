//! The stack's tags as the SDKs' tag types: one conversion each way, for every service
//! whose tags are a list of key-value structs (Lambda, API Gateway and CloudWatch Logs
//! take a map, which [`Tags`] already is).

use super::Tags;

/// An SDK's tag struct: built from a key and a value, read back as both.
pub trait SdkTag: Sized {
    /// `None` when the SDK's builder refuses the pair (it cannot for a key and a value
    /// both given; the builders that can fail only check that they are).
    fn build(key: &str, value: &str) -> Option<Self>;
    /// `None` for a tag without a value (EC2's, ECS's and ELB's fields are optional).
    fn pair(&self) -> Option<(&str, &str)>;
}

/// `tags` as `T`s, in key order.
pub fn to_sdk<T: SdkTag>(tags: &Tags) -> Vec<T> {
    tags.iter().filter_map(|(k, v)| T::build(k, v)).collect()
}

/// The key-value pairs of `tags`.
pub fn from_sdk<T: SdkTag>(tags: &[T]) -> Tags {
    tags.iter()
        .filter_map(SdkTag::pair)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// For the SDKs whose tag fields are optional and whose builder cannot fail.
macro_rules! optional_fields {
    ($($ty:ty),*) => {$(
        impl SdkTag for $ty {
            fn build(key: &str, value: &str) -> Option<Self> {
                Some(<$ty>::builder().key(key).value(value).build())
            }
            fn pair(&self) -> Option<(&str, &str)> {
                Some((self.key()?, self.value()?))
            }
        }
    )*};
}

/// For the SDKs whose tag fields are required, so whose builder checks them.
macro_rules! required_fields {
    ($($ty:ty),*) => {$(
        impl SdkTag for $ty {
            fn build(key: &str, value: &str) -> Option<Self> {
                <$ty>::builder().key(key).value(value).build().ok()
            }
            fn pair(&self) -> Option<(&str, &str)> {
                Some((self.key(), self.value()))
            }
        }
    )*};
}

optional_fields!(
    aws_sdk_ec2::types::Tag,
    aws_sdk_ecs::types::Tag,
    aws_sdk_elasticloadbalancingv2::types::Tag
);
required_fields!(
    aws_sdk_iam::types::Tag,
    aws_sdk_ecr::types::Tag,
    aws_sdk_s3::types::Tag
);

/// Auto Scaling's tags are read as descriptions; they are written with the group's name
/// and whether they propagate to its instances (see `autoscaling::Group`), which a key
/// and a value alone do not say.
impl SdkTag for aws_sdk_autoscaling::types::TagDescription {
    fn build(key: &str, value: &str) -> Option<Self> {
        Some(Self::builder().key(key).value(value).build())
    }
    fn pair(&self) -> Option<(&str, &str)> {
        Some((self.key()?, self.value()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack_tags() -> Tags {
        [("deployer:stack", "yolo"), ("team", "ml")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn round_trip<T: SdkTag>() -> Tags {
        from_sdk(&to_sdk::<T>(&stack_tags()))
    }

    #[test]
    fn every_sdk_tag_type_round_trips_the_stacks_tags() {
        assert_eq!(round_trip::<aws_sdk_ec2::types::Tag>(), stack_tags());
        assert_eq!(round_trip::<aws_sdk_ecs::types::Tag>(), stack_tags());
        assert_eq!(
            round_trip::<aws_sdk_elasticloadbalancingv2::types::Tag>(),
            stack_tags()
        );
        assert_eq!(round_trip::<aws_sdk_iam::types::Tag>(), stack_tags());
        assert_eq!(round_trip::<aws_sdk_ecr::types::Tag>(), stack_tags());
        assert_eq!(round_trip::<aws_sdk_s3::types::Tag>(), stack_tags());
        assert_eq!(
            round_trip::<aws_sdk_autoscaling::types::TagDescription>(),
            stack_tags()
        );
    }

    #[test]
    fn a_tag_without_a_value_is_not_read() {
        let tags = [aws_sdk_ec2::types::Tag::builder().key("Name").build()];
        assert_eq!(from_sdk(&tags), Tags::new());
    }
}
