//! The Lambda permission that lets this API, and only this API, invoke the function: a
//! statement, under an id of the API's name, in the resource policy of the function (or
//! of the alias the API invokes). It belongs to the HTTP API resource (made after the
//! API, whose id its source ARN names; removed before it), kept in its own file as
//! terraform-provider keeps `permission.go`.

use serde_json::Value;

use super::HttpApi;
use crate::aws::{Aws, AwsError, FoundExt, Service, error};

impl HttpApi {
    /// The permission's statement id on the function.
    pub fn statement_id(&self) -> String {
        format!("{}-invoke", self.name)
    }

    /// Every route and stage of this API only.
    pub fn source_arn(&self, api_id: &str) -> String {
        format!("{}:{api_id}/*", self.execute_arn_prefix)
    }

    /// Makes the statement allow API `api` (`have`: the source ARN it allows now, as
    /// `find` saw it).
    pub(super) async fn ensure_permission(
        &self,
        aws: &Aws,
        api: &str,
        have: Option<&str>,
    ) -> Result<(), AwsError> {
        let want = self.source_arn(api);
        // A new API (its predecessor deleted out of band) finds the old statement still
        // on the function under the same id, and AddPermission would refuse it
        // (`ResourceConflictException`): read the function's policy before adding.
        let have = match have {
            Some(h) => Some(h.to_string()),
            None => self.find_permission(aws).await?,
        };
        if have.as_deref() == Some(want.as_str()) {
            return Ok(());
        }
        if have.is_some() {
            self.remove_permission(aws).await?;
        }
        aws.lambda
            .add_permission()
            .function_name(&self.function)
            .set_qualifier(self.qualifier.clone())
            .statement_id(self.statement_id())
            .action("lambda:InvokeFunction")
            .principal("apigateway.amazonaws.com")
            .source_arn(want)
            .send()
            .await
            .map_err(error("lambda:AddPermission"))?;
        Ok(())
    }

    pub(super) async fn remove_permission(&self, aws: &Aws) -> Result<(), AwsError> {
        aws.lambda
            .remove_permission()
            .function_name(&self.function)
            .set_qualifier(self.qualifier.clone())
            .statement_id(self.statement_id())
            .send()
            .await
            .found(Service::Lambda, "lambda:RemovePermission")?;
        Ok(())
    }

    /// The source ARN of this API's statement in the function's resource policy.
    pub(super) async fn find_permission(&self, aws: &Aws) -> Result<Option<String>, AwsError> {
        let Some(out) = aws
            .lambda
            .get_policy()
            .function_name(&self.function)
            .set_qualifier(self.qualifier.clone())
            .send()
            .await
            .found(Service::Lambda, "lambda:GetPolicy")?
        else {
            return Ok(None);
        };
        Ok(statement_source_arn(
            out.policy().unwrap_or("{}"),
            &self.statement_id(),
        ))
    }
}

/// The `AWS:SourceArn` condition of statement `sid` in a Lambda resource policy.
pub fn statement_source_arn(policy: &str, sid: &str) -> Option<String> {
    let policy: Value = serde_json::from_str(policy).ok()?;
    let statement = policy["Statement"]
        .as_array()?
        .iter()
        .find(|s| s["Sid"].as_str() == Some(sid))?;
    // A statement under our id with no source condition is still there (and still
    // blocks `AddPermission`): it differs from every wanted source ARN.
    Some(
        statement["Condition"]["ArnLike"]["AWS:SourceArn"]
            .as_str()
            .unwrap_or("(any source)")
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Tags;

    #[test]
    fn the_permission_is_scoped_to_this_api() {
        let api = HttpApi {
            name: "s-api".into(),
            function: "s-predictor".into(),
            function_arn: "arn:aws:lambda:us-east-1:123456789012:function:s-predictor".into(),
            qualifier: None,
            routes: Vec::new(),
            timeout_ms: 30_000,
            execute_arn_prefix: "arn:aws:execute-api:us-east-1:123456789012".into(),
            arn_prefix: "arn:aws:apigateway:us-east-1".into(),
            tags: Tags::new(),
        };
        assert_eq!(
            api.source_arn("abc123"),
            "arn:aws:execute-api:us-east-1:123456789012:abc123/*"
        );
        assert_eq!(api.statement_id(), "s-api-invoke");
    }

    /// A resource policy as the Lambda GetPolicy reference shows it.
    #[test]
    fn the_statement_is_found_in_the_function_policy() {
        let policy = r#"{"Version":"2012-10-17","Id":"default","Statement":[
            {"Sid":"other","Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},
             "Action":"lambda:InvokeFunction","Resource":"arn:aws:lambda:us-east-1:123456789012:function:s-predictor"},
            {"Sid":"s-api-invoke","Effect":"Allow","Principal":{"Service":"apigateway.amazonaws.com"},
             "Action":"lambda:InvokeFunction","Resource":"arn:aws:lambda:us-east-1:123456789012:function:s-predictor",
             "Condition":{"ArnLike":{"AWS:SourceArn":"arn:aws:execute-api:us-east-1:123456789012:abc123/*"}}}]}"#;
        assert_eq!(
            statement_source_arn(policy, "s-api-invoke").as_deref(),
            Some("arn:aws:execute-api:us-east-1:123456789012:abc123/*")
        );
        assert_eq!(statement_source_arn(policy, "missing"), None);
        assert_eq!(statement_source_arn("not json", "s-api-invoke"), None);
        // Our id without a source condition: there, and not what is wanted.
        let unconditioned = r#"{"Statement":[{"Sid":"s-api-invoke","Effect":"Allow"}]}"#;
        assert_eq!(
            statement_source_arn(unconditioned, "s-api-invoke").as_deref(),
            Some("(any source)")
        );
    }
}
