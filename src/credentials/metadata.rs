//! The metadata server as a credential: the identity endpoint for ID tokens, the token endpoint for the
//! access token an impersonation starts from.
//!
//! When the chain falls through to the metadata server because nothing else is configured (it is chosen
//! without probing, so that on Google Cloud no time is lost), a server that cannot be reached means that
//! there are no credentials at all: exit 3 with the chain's hints, as the Google auth libraries say "could
//! not automatically determine credentials" there. Only when the user named the server
//! (`GCE_METADATA_HOST`/`GCE_METADATA_ROOT`) is an unreachable server exit 5. A server that answers with
//! an error keeps that error's own exit code.

use super::{AccessToken, Context, IdTokenRequest};
use crate::cli::TokenFormat;
use crate::error::{Error, Result};
use crate::settings::{Env, GCLOUD_CLIENT_ID};
use crate::sources::metadata::{self, IdentityRequest};
use crate::token::IdToken;

#[derive(Debug, Clone)]
pub struct MetadataCredential {
    /// `default` or the email of one of the instance's service accounts.
    pub service_account: String,
    /// The account's email when known without asking (gcloud's `gce` credential names it).
    pub principal: Option<String>,
    /// Set when the chain chose the metadata server because nothing else was found: why each earlier
    /// step was passed over.
    pub last_resort: Option<Vec<String>>,
}

impl MetadataCredential {
    /// The instance's service account, named (`default` or an email).
    pub fn new(service_account: impl Into<String>) -> MetadataCredential {
        MetadataCredential {
            service_account: service_account.into(),
            principal: None,
            last_resort: None,
        }
    }

    /// The cache identity: the server and the account.
    pub fn identity(&self, env: &Env) -> String {
        // Without a named host, the fallback IP may be the server that answers: both are the endpoint.
        let endpoint = match env.metadata_host() {
            Some(host) => host.to_string(),
            None => format!(
                "{}|{}",
                crate::settings::DEFAULT_METADATA_HOST,
                env.metadata_ip()
            ),
        };
        format!("metadata:{endpoint}:{}", self.service_account)
    }

    pub async fn id_token(&self, ctx: &Context<'_>, req: &IdTokenRequest) -> Result<IdToken> {
        // `--include-email` means format=full here, as with gcloud on Compute Engine.
        let format = match req.format {
            Some(format) => format,
            None if req.include_email => TokenFormat::Full,
            None => TokenFormat::Standard,
        };
        let request = IdentityRequest {
            audience: req.audience.as_deref().unwrap_or(GCLOUD_CLIENT_ID),
            format,
            licenses: req.licenses,
            service_account: &self.service_account,
        };
        let at = metadata::locate(ctx.http, ctx.env)
            .await
            .map_err(|e| self.explain(e, ctx.env))?;
        let mut token = metadata::identity(ctx.http, &at, &request)
            .await
            .map_err(|e| self.explain(e, ctx.env))?;
        if token.principal.is_none() {
            token.principal = self.principal.clone();
        }
        Ok(token)
    }

    /// The access token of `.../token` and the account's email from `.../email`, asked together from the
    /// server located once.
    pub async fn access_token(&self, ctx: &Context<'_>) -> Result<AccessToken> {
        let at = metadata::locate(ctx.http, ctx.env)
            .await
            .map_err(|e| self.explain(e, ctx.env))?;
        let token = metadata::access_token(ctx.http, &at, &self.service_account);
        let principal = async {
            match (&self.principal, self.service_account.as_str()) {
                (Some(p), _) => Ok(p.clone()),
                (None, "default") => metadata::email(ctx.http, &at, &self.service_account).await,
                (None, email) => Ok(email.to_string()),
            }
        };
        let (token, principal) =
            tokio::try_join!(token, principal).map_err(|e| self.explain(e, ctx.env))?;
        Ok(AccessToken {
            token,
            principal: Some(principal).filter(|p| !p.is_empty()),
        })
    }

    /// An unreachable metadata server that the chain fell through to means: no credentials (exit 3).
    fn explain(&self, error: Error, env: &Env) -> Error {
        match (error, &self.last_resort) {
            (Error::Unreachable { reason, .. }, Some(passed_over))
                if env.metadata_host().is_none() =>
            {
                let mut passed_over = passed_over.clone();
                passed_over.push(format!("the metadata server did not answer ({reason})"));
                Error::NoCredentials { passed_over }
            }
            (error, _) => error,
        }
    }
}
