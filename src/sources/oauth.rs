//! The OAuth2 token endpoint (`token_uri`): the JWT-bearer grant of service account keys (RFC 7523) and the
//! refresh-token grant of user logins (RFC 6749 section 6), both form POSTs. Error bodies are RFC 6749's
//! `{"error", "error_description"}`, plus Google's `error_subtype` for reauthentication
//! (`invalid_rapt`, `rapt_required`).
//! <https://developers.google.com/identity/protocols/oauth2/service-account#httprest>

use reqwest::Url;
use serde_json::Value;

use super::http::{Body, Http, Request, Response, require_secure};
use crate::error::{Error, Result};
use crate::settings::Env;
use crate::token::Secret;

const ENDPOINT: &str = "OAuth2 token endpoint";
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// A grant to send. The secrets are only ever put in the form body.
pub enum Grant<'a> {
    /// `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=JWT`.
    JwtBearer { assertion: &'a Secret },
    /// `grant_type=refresh_token&client_id&client_secret&refresh_token[&audience]`.
    Refresh {
        client_id: &'a str,
        client_secret: &'a Secret,
        refresh_token: &'a Secret,
        audience: Option<&'a str>,
    },
}

/// The useful part of a 200: either token may be absent.
pub struct TokenResponse {
    pub access_token: Option<Secret>,
    pub id_token: Option<Secret>,
}

/// An OAuth2 error body, as far as it could be read.
#[derive(Debug, Clone, Default)]
pub struct OAuthError {
    pub error: String,
    pub description: Option<String>,
    pub subtype: Option<String>,
}

impl OAuthError {
    fn from_response(response: &Response) -> OAuthError {
        let v: Value = serde_json::from_str(&response.body).unwrap_or(Value::Null);
        let text = |name: &str| {
            v.get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        OAuthError {
            error: text("error").unwrap_or_default(),
            description: text("error_description"),
            subtype: text("error_subtype"),
        }
    }

    /// `invalid_grant` with `invalid_rapt` or `rapt_required`: the account needs reauthentication.
    pub fn is_reauth(&self) -> bool {
        matches!(
            self.subtype.as_deref(),
            Some("invalid_rapt" | "rapt_required")
        )
    }

    fn message(&self, response: &Response) -> String {
        if self.error.is_empty() {
            return response.google_message();
        }
        let mut message = self.error.clone();
        if let Some(description) = &self.description {
            message = format!("{message}: {description}");
        }
        if let Some(subtype) = &self.subtype {
            message = format!("{message} ({subtype})");
        }
        message
    }
}

/// Sends a grant to `token_uri`. A 4xx becomes `Error::Refused` (exit 4) with Google's error and
/// description and the hints `hints` gives for it.
pub async fn exchange(
    http: &Http,
    env: &Env,
    token_uri: &Url,
    grant: Grant<'_>,
    hints: impl FnOnce(&OAuthError) -> Vec<String>,
) -> Result<TokenResponse> {
    let (purpose, fields) = match grant {
        Grant::JwtBearer { assertion } => (
            "a signed assertion",
            vec![
                ("grant_type", JWT_BEARER.to_string()),
                ("assertion", assertion.expose().to_string()),
            ],
        ),
        Grant::Refresh {
            client_id,
            client_secret,
            refresh_token,
            audience,
        } => {
            let mut fields = vec![
                ("grant_type", "refresh_token".to_string()),
                ("client_id", client_id.to_string()),
                ("client_secret", client_secret.expose().to_string()),
                ("refresh_token", refresh_token.expose().to_string()),
            ];
            if let Some(audience) = audience {
                fields.push(("audience", audience.to_string()));
            }
            ("a refresh token", fields)
        }
    };
    require_secure(token_uri, purpose, env.metadata_host())?;
    let request = Request::post(ENDPOINT, token_uri.clone(), Body::Form(fields));
    let response = http.send(&request).await?;
    if response.status.is_success() {
        let v = response.json()?;
        let token = |name: &str| {
            v.get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(Secret::new)
        };
        return Ok(TokenResponse {
            access_token: token("access_token"),
            id_token: token("id_token"),
        });
    }
    let error = OAuthError::from_response(&response);
    Err(response.refused_because(error.message(&response), hints(&error)))
}

/// A 200 that lacks the token asked for (exit 5).
pub fn missing(token_uri: &Url, field: &str) -> Error {
    Error::Failed {
        endpoint: ENDPOINT,
        url: token_uri.to_string(),
        problem: format!("HTTP 200 but the response has no `{field}`"),
    }
}
