//! Where each target answers `POST /predict` now: read from the stack on AWS (the load
//! balancer's DNS name, the HTTP API's URL) or from the local runtime's state.

use crate::aws::Aws;
use crate::error::Error;
use crate::local;
use crate::manifest::Manifest;
use crate::output::Endpoint;
use crate::resources;

/// The local runtime's URLs of both targets' `POST /predict`.
pub fn local_endpoints(m: &Manifest, state: &serde_json::Value) -> Vec<Endpoint> {
    let path = m
        .serverless
        .route
        .split_once(' ')
        .map_or("/predict", |(_, p)| p);
    let mut out = Vec::new();
    for (target, enabled) in [
        ("serverful", m.serverful.enabled),
        ("serverless", m.serverless.enabled),
    ] {
        if let Some(url) = state[target]["url"].as_str().filter(|_| enabled) {
            let path = if target == "serverful" {
                "/predict"
            } else {
                path
            };
            out.push(Endpoint {
                target,
                url: format!("{url}{path}"),
            });
        }
    }
    out
}

/// The URLs requests go to now: the local runtime's for a local stack (which must be
/// running), else the stack's on AWS.
pub async fn live_endpoints(aws: &Aws, m: &Manifest) -> Result<Vec<Endpoint>, Error> {
    if !local::applies(m) {
        return endpoints(aws, m).await;
    }
    let state = local::state(m).ok_or_else(|| Error::Usage {
        message: format!("the local runtime of `{}` is not running", m.name),
        hint: Some("`deployer -f <manifest> up` starts it".into()),
    })?;
    Ok(local_endpoints(m, &state))
}

/// The URLs of both targets' `POST /predict`, as they are now (two reads).
pub async fn endpoints(aws: &Aws, manifest: &Manifest) -> Result<Vec<Endpoint>, Error> {
    let n = manifest.names();
    let mut out = Vec::new();
    if manifest.serverful.enabled
        && let Some(lb) = resources::elb::find_load_balancer(aws, &n.load_balancer).await?
    {
        let port = manifest.serverful.load_balancer.port;
        let host = lb.dns_name().unwrap_or_default();
        out.push(Endpoint {
            target: "serverful",
            url: if port == 80 {
                format!("http://{host}/predict")
            } else {
                format!("http://{host}:{port}/predict")
            },
        });
    }
    if manifest.serverless.enabled
        && let Some(api) = resources::apigw::find_api(aws, &n.http_api).await?
    {
        let path = manifest
            .serverless
            .route
            .split_once(' ')
            .map_or("/predict", |(_, p)| p);
        out.push(Endpoint {
            target: "serverless",
            url: format!("{}{path}", api.api_endpoint().unwrap_or_default()),
        });
    }
    Ok(out)
}
