//! `external_account_authorized_user`: a workforce identity federation user's login (`gcloud auth login
//! --login-config`, `gcloud auth application-default login --login-config`). It refreshes to an access
//! token at STS, but it can never yield a Google-signed ID token of its own: Google mints those for
//! Google accounts, service accounts and VMs, and a workforce user is none of them. An impersonation
//! chain that starts from it works: `--impersonate-service-account SA`.
//! <https://cloud.google.com/iam/docs/workforce-obtaining-short-lived-credentials>

use reqwest::Url;

use super::file::{Fields, http_url};
use super::{AccessToken, Context, Origin, digest_hex};
use crate::error::{Error, Result};
use crate::settings::Env;
use crate::sources::http::require_secure;
use crate::sources::sts;
use crate::token::Secret;

#[derive(Debug, Clone)]
pub struct ExternalAccountAuthorizedUser {
    pub origin: Origin,
    /// `//iam.googleapis.com/locations/global/workforcePools/POOL/providers/PROVIDER`.
    pub audience: Option<String>,
    pub refresh_token: Secret,
    pub token_url: Url,
    pub client_id: String,
    pub client_secret: Secret,
    pub universe_domain: Option<String>,
}

impl ExternalAccountAuthorizedUser {
    /// Loads the file. Errors name the file and the field, never a value.
    pub fn load(fields: &Fields<'_>, env: &Env) -> Result<ExternalAccountAuthorizedUser> {
        let token_url = fields.required("token_url")?;
        let url = http_url(token_url)
            .ok_or_else(|| fields.invalid("token_url", "is not an http(s) URL"))?;
        require_secure(&url, "a refresh token", env.metadata_host())?;
        Ok(ExternalAccountAuthorizedUser {
            origin: fields.origin.clone(),
            audience: fields.optional("audience")?.map(str::to_string),
            refresh_token: Secret::new(fields.required("refresh_token")?),
            token_url: url,
            client_id: fields.required("client_id")?.to_string(),
            client_secret: Secret::new(fields.required("client_secret")?),
            universe_domain: fields.optional("universe_domain")?.map(str::to_string),
        })
    }

    /// What identifies this credential in the token cache key: the refresh token only as a digest.
    pub fn identity(&self) -> String {
        format!(
            "external_account_authorized_user:{}:{}:{}:{}",
            self.audience.as_deref().unwrap_or("-"),
            self.client_id,
            self.token_url,
            digest_hex(self.refresh_token.expose())
        )
    }

    /// Always an error (exit 3): why there is no ID token, and what works instead.
    pub fn id_token_error(&self) -> Error {
        self.origin.invalid(
            "this is a workforce identity federation user login (external_account_authorized_user), which \
                      cannot obtain a Google-signed ID token: Google mints ID tokens for Google accounts, service \
                      accounts and VMs, and a workforce user has no service account to mint one for",
            Some(
                "mint one for a service account you may impersonate: `idtok print-identity-token \
                 --impersonate-service-account SA --audiences AUD` (needs roles/iam.serviceAccountOpenIdTokenCreator \
                 on SA for your workforce principal)"
                    .into(),
            ),
        )
    }

    /// The user's access token, from the refresh-token grant at `token_url` with Basic client auth.
    pub async fn access_token(&self, ctx: &Context<'_>) -> Result<AccessToken> {
        ctx.log.info(|| {
            format!(
                "workforce user ({}): refresh-token grant at {}",
                self.origin.describe(),
                self.token_url
            )
        });
        let token = sts::refresh_user_token(
            ctx.http,
            ctx.env,
            &self.token_url,
            &self.refresh_token,
            &self.client_id,
            &self.client_secret,
        )
        .await?;
        // The workforce principal (principal://...) has no email.
        Ok(AccessToken {
            token,
            principal: None,
        })
    }
}
