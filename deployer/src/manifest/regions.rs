//! AWS's regions, to tell a mistyped region from a real one before any call is made.

/// The commercial, GovCloud, China and European Sovereign Cloud regions as of 2026.
pub const REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-south-1",
    "ap-south-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-south-1",
    "eu-south-2",
    "eu-north-1",
    "il-central-1",
    "me-south-1",
    "me-central-1",
    "mx-central-1",
    "sa-east-1",
    "us-gov-east-1",
    "us-gov-west-1",
    "cn-north-1",
    "cn-northwest-1",
    "eusc-de-east-1",
];

/// `Ok` for a known region, or one shaped like a region that is close to none of them (a
/// region newer than this list); otherwise the known region it was probably meant to
/// be, if one is close.
pub fn check(region: &str) -> Result<(), Option<String>> {
    if REGIONS.contains(&region) {
        return Ok(());
    }
    let known: Vec<String> = REGIONS.iter().map(|r| r.to_string()).collect();
    match super::validate::suggest(region, &known) {
        Some(close) => Err(Some(close)),
        None if super::validate::is_region(region) => Ok(()),
        None => Err(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_get_the_region_they_were_meant_to_be() {
        assert_eq!(check("us-east-1"), Ok(()));
        assert_eq!(check("us-esat-1"), Err(Some("us-east-1".into())));
        assert_eq!(check("eu-west-l"), Err(Some("eu-west-1".into())));
        assert_eq!(check("euwest1"), Err(Some("eu-west-1".into())));
        assert_eq!(check("nowhere"), Err(None));
        // Shaped like a region and near none: a region newer than the list.
        assert_eq!(check("xy-polar-9"), Ok(()));
    }
}
