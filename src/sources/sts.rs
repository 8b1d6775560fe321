//! Google's Security Token Service: the OAuth 2.0 token exchange (RFC 8693) that turns an external
//! subject token (an OIDC token, a SAML assertion, a signed AWS request) into a federated Google access
//! token, as google-auth's `oauth2/sts.py` sends it.
//! <https://cloud.google.com/iam/docs/reference/sts/rest/v1/TopLevel/token>

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::Url;
use serde_json::{Value, json};

use super::http::{Body, Http, Request, require_secure};
use crate::error::Result;
use crate::settings::Env;
use crate::token::Secret;

const ENDPOINT: &str = "STS";
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const REQUESTED_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// The exchange of one subject token.
pub struct Exchange<'a> {
    pub token_url: &'a Url,
    /// The workload or workforce identity provider: `//iam.googleapis.com/projects/...`.
    pub audience: &'a str,
    pub subject_token: &'a Secret,
    pub subject_token_type: &'a str,
    /// Workforce pools only: the project billed for the exchange, sent as `options={"userProject":...}`.
    pub user_project: Option<&'a str>,
    /// HTTP Basic client authentication (RFC 6749 section 2.3.1), when the file has a `client_id`.
    pub client: Option<(&'a str, Option<&'a Secret>)>,
}

/// A federated access token.
#[derive(Debug, Clone)]
pub struct FederatedToken {
    pub access_token: Secret,
    pub expires_in: Option<u64>,
}

pub async fn exchange(http: &Http, env: &Env, req: &Exchange<'_>) -> Result<FederatedToken> {
    require_secure(req.token_url, "a subject token", env.metadata_host())?;
    let mut form = vec![
        ("grant_type", GRANT_TYPE.to_string()),
        ("audience", req.audience.to_string()),
        ("scope", CLOUD_PLATFORM_SCOPE.to_string()),
        ("requested_token_type", REQUESTED_TOKEN_TYPE.to_string()),
        ("subject_token", req.subject_token.expose().to_string()),
        ("subject_token_type", req.subject_token_type.to_string()),
    ];
    if let Some(project) = req.user_project {
        form.push(("options", json!({ "userProject": project }).to_string()));
    }
    let mut request = Request::post(ENDPOINT, req.token_url.clone(), Body::Form(form));
    if let Some((id, secret)) = req.client {
        let pair = format!("{id}:{}", secret.map(Secret::expose).unwrap_or(""));
        request = request.header("Authorization", format!("Basic {}", STANDARD.encode(pair)));
    }
    let response = http.send(&request).await?;
    match response.status.as_u16() {
        200..=299 => {
            let body = response.json()?;
            let access_token = response.field_of(&body, "access_token")?;
            // Some token services send expires_in as a string (google-auth tolerates it too).
            let expires_in = match body.get("expires_in") {
                Some(Value::Number(n)) => n.as_u64(),
                Some(Value::String(s)) => s.parse().ok(),
                _ => None,
            };
            Ok(FederatedToken {
                access_token,
                expires_in,
            })
        }
        _ => {
            let mut hints = vec![
                "STS rejected the subject token: check that the identity provider's issuer, allowed audiences \
                 and attribute condition accept it"
                    .to_string(),
                format!(
                    "compare the token's claims with the provider: `gcloud iam workload-identity-pools providers \
                     describe` for {}",
                    req.audience
                ),
            ];
            if response.status.as_u16() == 401 && req.client.is_some() {
                hints.insert(
                    0,
                    "the client_id/client_secret of the credential file were not accepted".into(),
                );
            }
            Err(response.refused(hints))
        }
    }
}

/// The refresh-token grant of a workforce identity federation user (`external_account_authorized_user`)
/// at STS's `oauthtoken` endpoint, with HTTP Basic client authentication, as google-auth's
/// `external_account_authorized_user.py` sends it. Returns the access token.
pub async fn refresh_user_token(
    http: &Http,
    env: &Env,
    token_url: &Url,
    refresh_token: &Secret,
    client_id: &str,
    client_secret: &Secret,
) -> Result<Secret> {
    require_secure(token_url, "a refresh token", env.metadata_host())?;
    let form = vec![
        ("grant_type", "refresh_token".to_string()),
        ("refresh_token", refresh_token.expose().to_string()),
    ];
    let pair = format!("{client_id}:{}", client_secret.expose());
    let request = Request::post(ENDPOINT, token_url.clone(), Body::Form(form))
        .header("Authorization", format!("Basic {}", STANDARD.encode(pair)));
    let response = http.send(&request).await?;
    match response.status.as_u16() {
        200..=299 => response.json_field("access_token"),
        _ => Err(response.refused(vec![
            "the workforce login has expired or was revoked: log in again with \
             `gcloud auth application-default login --login-config=LOGIN_CONFIG`"
                .into(),
        ])),
    }
}

/// Whether an STS audience names a workforce pool (`//iam.googleapis.com/locations/L/workforcePools/...`)
/// rather than a workload identity pool (`//iam.googleapis.com/projects/N/locations/global/...`).
pub fn is_workforce_audience(audience: &str) -> bool {
    let Some(rest) = audience.strip_prefix("//") else {
        return false;
    };
    let parts: Vec<&str> = rest.split('/').collect();
    parts.len() > 3
        && parts[0].starts_with("iam.")
        && parts[1] == "locations"
        && !parts[2].is_empty()
        && parts[3] == "workforcePools"
}

/// The `principalSet://` that names every identity of the workload identity pool of an STS audience, for
/// the IAM binding a hint shows.
pub fn pool_principal_set(audience: &str) -> Option<String> {
    let rest = audience.strip_prefix("//")?;
    let cut = rest.find("/providers/")?;
    Some(format!("principalSet://{}/*", &rest[..cut]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workforce_audiences() {
        assert!(is_workforce_audience(
            "//iam.googleapis.com/locations/global/workforcePools/pool/providers/p"
        ));
        assert!(!is_workforce_audience(
            "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/providers/p"
        ));
        assert!(!is_workforce_audience(
            "iam.googleapis.com/locations/global/workforcePools/x"
        ));
    }

    #[test]
    fn principal_sets() {
        assert_eq!(
            pool_principal_set(
                "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/gh/providers/p"
            )
            .as_deref(),
            Some("principalSet://iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/gh/*")
        );
        assert_eq!(pool_principal_set("nonsense"), None);
    }
}
