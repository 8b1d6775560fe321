//! `external_account_authorized_user`: a workforce identity federation user's login (`gcloud auth login
//! --login-config`, `gcloud auth application-default login --login-config`). It refreshes to an access
//! token at STS, but it can never yield a Google-signed ID token of its own: Google mints those for
//! Google accounts, service accounts and VMs, and a workforce user is none of them. An impersonation
//! chain that starts from it works: `--impersonate-service-account SA`.
//! <https://cloud.google.com/iam/docs/workforce-obtaining-short-lived-credentials>

use std::path::{Path, PathBuf};

use reqwest::Url;
use serde_json::Value;

use super::Context;
use crate::error::{Error, Result};
use crate::sources::http::parse_url;
use crate::sources::sts;
use crate::token::Secret;

#[derive(Debug, Clone)]
pub struct ExternalAccountAuthorizedUser {
    pub path: PathBuf,
    /// `//iam.googleapis.com/locations/global/workforcePools/POOL/providers/PROVIDER`.
    pub audience: Option<String>,
    pub refresh_token: Secret,
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub universe_domain: Option<String>,
}

impl ExternalAccountAuthorizedUser {
    /// Parses the file. Errors name the file and the field, never a value.
    pub fn parse(path: &Path, json: &Value) -> Result<ExternalAccountAuthorizedUser> {
        let bad = |problem: String| Error::CredentialFile {
            path: path.to_path_buf(),
            problem,
            hint: Some(
                "log in again: `gcloud auth application-default login --login-config=LOGIN_CONFIG`"
                    .into(),
            ),
        };
        let optional = |name: &str| -> Result<Option<String>> {
            match json.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(bad(format!("`{name}` is not a string"))),
            }
        };
        let required = |name: &str| -> Result<String> {
            optional(name)?.ok_or_else(|| bad(format!("`{name}` is missing")))
        };
        let token_url = required("token_url")?;
        if Url::parse(&token_url).is_err() {
            return Err(bad("`token_url` is not a URL".into()));
        }
        Ok(ExternalAccountAuthorizedUser {
            path: path.to_path_buf(),
            audience: optional("audience")?,
            refresh_token: Secret::new(required("refresh_token")?),
            token_url,
            client_id: required("client_id")?,
            client_secret: Secret::new(required("client_secret")?),
            universe_domain: optional("universe_domain")?,
        })
    }

    /// What identifies this credential in the token cache key: the refresh token only as a digest.
    pub fn identity(&self) -> String {
        let digest = ring::digest::digest(
            &ring::digest::SHA256,
            self.refresh_token.expose().as_bytes(),
        );
        let short: String = digest.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!(
            "external_account_authorized_user:{}:{}:{short}",
            self.audience.as_deref().unwrap_or("-"),
            self.client_id
        )
    }

    /// Always an error (exit 3): why there is no ID token, and what works instead.
    pub fn id_token_error(&self) -> Error {
        Error::CredentialFile {
            path: self.path.clone(),
            problem: "this is a workforce identity federation user login (external_account_authorized_user), which \
                      cannot obtain a Google-signed ID token: Google mints ID tokens for Google accounts, service \
                      accounts and VMs, and a workforce user has no service account to mint one for"
                .into(),
            hint: Some(
                "mint one for a service account you may impersonate: `idtok print-identity-token \
                 --impersonate-service-account SA --audiences AUD` (needs roles/iam.serviceAccountOpenIdTokenCreator \
                 on SA for your workforce principal)"
                    .into(),
            ),
        }
    }

    /// The user's access token, from the refresh-token grant at `token_url` with Basic client auth.
    pub async fn access_token(&self, ctx: &Context<'_>) -> Result<Secret> {
        let url = parse_url(
            &self.token_url,
            &format!("`token_url` of {}", self.path.display()),
        )?;
        ctx.log.info(|| {
            format!(
                "workforce user {}: refreshing at {url}",
                self.path.display()
            )
        });
        sts::refresh_user_token(
            ctx.http,
            ctx.env,
            &url,
            &self.refresh_token,
            &self.client_id,
            &self.client_secret,
        )
        .await
    }
}
