//! The shared credential loader: the chain of SPEC.md section 3 finds a `Credential`; each credential type
//! (one file each) can mint an ID token and an access token for an impersonation to start from.

pub mod metadata;

use crate::cli::TokenFormat;
use crate::error::Result;
use crate::log::Log;
use crate::settings::Env;
use crate::sources::http::Http;
use crate::token::{IdToken, Secret};

/// What every fetcher needs: the shared client (with the deadline), the environment and the log.
pub struct Context<'a> {
    pub http: &'a Http,
    pub env: &'a Env,
    pub log: Log,
}

/// What the caller wants in the ID token.
#[derive(Debug, Clone)]
pub struct IdTokenRequest {
    /// `None`: the credential's default (gcloud's client id, or a user login's own client id).
    pub audience: Option<String>,
    pub include_email: bool,
    /// Metadata server only.
    pub format: Option<TokenFormat>,
    /// Metadata server only.
    pub licenses: bool,
}

/// A credential found by the chain.
#[derive(Debug)]
pub enum Credential {
    Metadata(metadata::MetadataCredential),
}

impl Credential {
    /// Mints an ID token.
    pub async fn id_token(&self, ctx: &Context<'_>, req: &IdTokenRequest) -> Result<IdToken> {
        match self {
            Credential::Metadata(c) => c.id_token(ctx, req).await,
        }
    }

    /// An access token for this principal, from which an impersonation starts.
    pub async fn access_token(&self, ctx: &Context<'_>) -> Result<Secret> {
        match self {
            Credential::Metadata(c) => c.access_token(ctx).await,
        }
    }

    /// What identifies this credential in the token cache key: the source and its principal, never a
    /// secret (a secret that identifies the credential enters only as a SHA-256 digest).
    pub fn identity(&self, env: &Env) -> String {
        match self {
            Credential::Metadata(c) => {
                // Without a named host, the fallback IP may be the server that answers: both are the endpoint.
                let endpoint = match env.metadata_host() {
                    Some(host) => host.to_string(),
                    None => format!(
                        "{}|{}",
                        crate::settings::DEFAULT_METADATA_HOST,
                        env.metadata_ip()
                    ),
                };
                format!("metadata:{endpoint}:{}", c.service_account)
            }
        }
    }

    /// A short name of the credential type, for `-v` and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Credential::Metadata(_) => "metadata server",
        }
    }
}
