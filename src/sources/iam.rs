//! IAM Credentials `generateIdToken`: an ID token for a service account, minted with the caller's access
//! token. Only `iam.serviceAccounts.getOpenIdToken` is needed; idtok never calls generateAccessToken first.
//! <https://cloud.google.com/iam/docs/reference/credentials/rest/v1/projects.serviceAccounts/generateIdToken>

use serde_json::{Value, json};

use super::http::{Body, Http, Request, parse_url, require_secure};
use crate::error::Result;
use crate::settings::Env;
use crate::token::Secret;

const ENDPOINT: &str = "IAM Credentials";
/// The permission generateIdToken checks on the target service account.
pub const PERMISSION: &str = "iam.serviceAccounts.getOpenIdToken";
pub const ROLE: &str = "roles/iam.serviceAccountOpenIdTokenCreator";

#[derive(Debug, Clone)]
pub struct GenerateIdToken<'a> {
    /// The IAM Credentials base URL, as `Env::iam_base` gives it.
    pub base: &'a str,
    /// The target service account's email (or unique id).
    pub target: &'a str,
    pub audience: &'a str,
    pub include_email: bool,
    /// Bare emails or `projects/-/serviceAccounts/EMAIL`: sent in the latter form.
    pub delegates: &'a [String],
    /// The caller's principal (an email), named in the hint of a 403.
    pub caller: Option<&'a str>,
}

/// The delegate form the API documents: `projects/-/serviceAccounts/EMAIL`.
pub fn delegate_resource(delegate: &str) -> String {
    let email = delegate.rsplit('/').next().unwrap_or(delegate);
    format!("projects/-/serviceAccounts/{email}")
}

/// `member` of an IAM binding for a principal's email.
pub fn member(principal: &str) -> String {
    if principal.contains(':') {
        principal.to_string()
    } else if principal.ends_with(".gserviceaccount.com") {
        format!("serviceAccount:{principal}")
    } else {
        format!("user:{principal}")
    }
}

/// Calls generateIdToken and returns the token string of `{"token": "..."}`.
pub async fn generate_id_token(
    http: &Http,
    env: &Env,
    req: &GenerateIdToken<'_>,
    access_token: &Secret,
) -> Result<Secret> {
    // The target is one percent-encoded segment: a `?` or `#` in it must not cut the method off the path.
    let mut url = parse_url(req.base, "the IAM Credentials endpoint")?;
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty().extend([
            "v1",
            "projects",
            "-",
            "serviceAccounts",
            &format!("{}:generateIdToken", req.target),
        ]);
    }
    require_secure(&url, "an access token", env.metadata_host())?;
    let delegates: Vec<String> = req.delegates.iter().map(|d| delegate_resource(d)).collect();
    let mut body = json!({ "audience": req.audience, "includeEmail": req.include_email });
    if !delegates.is_empty() {
        body["delegates"] = json!(delegates);
    }
    let request = Request::post(ENDPOINT, url, Body::Json(body)).bearer(access_token);
    let response = http.send(&request).await?;
    match response.status.as_u16() {
        200..=299 => response.json_field("token"),
        403 => {
            let permission = response
                .json()
                .ok()
                .and_then(|v| find_permission(&v))
                .unwrap_or_else(|| PERMISSION.to_string());
            let caller = req
                .caller
                .map(member)
                .unwrap_or_else(|| "<your principal>".to_string());
            Err(response.refused_because(
                format!(
                    "{} (permission {permission} on {})",
                    response.google_message(),
                    req.target
                ),
                vec![
                    format!("the caller {caller} needs {ROLE} on {}:", req.target),
                    format!(
                        "gcloud iam service-accounts add-iam-policy-binding {} --member={caller} --role={ROLE}",
                        req.target
                    ),
                ],
            ))
        }
        404 => Err(response.refused(vec![format!(
            "check the service account's email: {}",
            req.target
        )])),
        401 => Err(response.refused(vec![
            "the caller's credentials were not accepted; log in again".into(),
        ])),
        _ => Err(response.refused(Vec::new())),
    }
}

/// The role that lets a principal mint access tokens for a service account.
pub const TOKEN_CREATOR_ROLE: &str = "roles/iam.serviceAccountTokenCreator";

/// generateAccessToken at a full URL (`.../serviceAccounts/EMAIL:generateAccessToken`), as an
/// `external_account` file's `service_account_impersonation_url` names it: the access token of the
/// service account, for an impersonation chain that starts from federated credentials. (ID tokens never
/// go through here: they come from generateIdToken directly.)
/// <https://cloud.google.com/iam/docs/reference/credentials/rest/v1/projects.serviceAccounts/generateAccessToken>
pub async fn generate_access_token(
    http: &Http,
    env: &Env,
    url: &str,
    target: &str,
    lifetime_secs: Option<u64>,
    access_token: &Secret,
) -> Result<Secret> {
    let url = parse_url(url, "the service account impersonation URL")?;
    require_secure(&url, "an access token", env.metadata_host())?;
    let body = json!({
        "scope": [crate::sources::sts::CLOUD_PLATFORM_SCOPE],
        "lifetime": format!("{}s", lifetime_secs.unwrap_or(3600)),
    });
    let request = Request::post(ENDPOINT, url, Body::Json(body)).bearer(access_token);
    let response = http.send(&request).await?;
    match response.status.as_u16() {
        200..=299 => response.json_field("accessToken"),
        403 => Err(response.refused(vec![format!(
            "the caller needs {TOKEN_CREATOR_ROLE} (or, for workload identity federation, \
             roles/iam.workloadIdentityUser) on {target}"
        )])),
        404 => Err(response.refused(vec![format!("check the service account's email: {target}")])),
        _ => Err(response.refused(Vec::new())),
    }
}

/// The permission named in an AIP-193 error's `ErrorInfo`, if any.
fn find_permission(body: &Value) -> Option<String> {
    body.pointer("/error/details")?
        .as_array()?
        .iter()
        .find_map(|d| d.pointer("/metadata/permission").and_then(Value::as_str))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delegates_are_prefixed_once() {
        assert_eq!(
            delegate_resource("a@p.iam.gserviceaccount.com"),
            "projects/-/serviceAccounts/a@p.iam.gserviceaccount.com"
        );
        assert_eq!(
            delegate_resource("projects/-/serviceAccounts/a@p.iam.gserviceaccount.com"),
            "projects/-/serviceAccounts/a@p.iam.gserviceaccount.com"
        );
    }

    #[test]
    fn members_by_principal_kind() {
        assert_eq!(
            member("sa@p.iam.gserviceaccount.com"),
            "serviceAccount:sa@p.iam.gserviceaccount.com"
        );
        assert_eq!(member("me@example.com"), "user:me@example.com");
        assert_eq!(member("principal://x"), "principal://x");
    }
}
