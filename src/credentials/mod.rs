//! The shared credential loader: the chain of SPEC.md section 3 finds a `Credential`; each credential type
//! (one file each) can mint an ID token and an access token for an impersonation to start from.
//!
//! - `chain`: the order of SPEC.md section 3, explained under `-v`.
//! - `gcloud`: gcloud's own state (configuration directory, active configuration, `credentials.db`).
//! - `file`: a credential's JSON, dispatched on its `type`.
//! - one file per type: `metadata`, `service_account`, `authorized_user`, `impersonated`,
//!   `external_account` (with `subject_token` and `executable`), `external_account_authorized_user`.

pub mod authorized_user;
pub mod chain;
pub mod executable;
pub mod external_account;
pub mod external_account_authorized_user;
pub mod file;
pub mod gcloud;
pub mod impersonated;
pub mod metadata;
pub mod service_account;
pub mod subject_token;

use std::path::{Path, PathBuf};

use crate::cli::TokenFormat;
use crate::error::{Error, Result};
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

/// An access token and the principal it belongs to (when known): what an impersonation starts from.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: Secret,
    /// The caller's email, for the self-impersonation rule and the hint of a 403.
    pub principal: Option<String>,
}

/// A credential found by the chain.
#[derive(Debug)]
pub enum Credential {
    /// The metadata server (also gcloud's `gce` credential).
    Metadata(metadata::MetadataCredential),
    /// A service account key (`service_account`).
    ServiceAccount(service_account::ServiceAccountKey),
    /// A user login (`authorized_user`).
    AuthorizedUser(authorized_user::AuthorizedUser),
    /// An `impersonated_service_account` file, `impersonate`, or `--impersonate-service-account`: another
    /// credential's access token, then IAM generateIdToken on the target.
    Impersonated(impersonated::Impersonation),
    /// Workload or workforce identity federation (`external_account`).
    ExternalAccount(Box<external_account::ExternalAccount>),
    /// A workforce identity federation user login (`external_account_authorized_user`).
    ExternalAccountUser(external_account_authorized_user::ExternalAccountAuthorizedUser),
}

impl Credential {
    /// Mints an ID token.
    pub async fn id_token(&self, ctx: &Context<'_>, req: &IdTokenRequest) -> Result<IdToken> {
        match self {
            Credential::Metadata(c) => c.id_token(ctx, req).await,
            Credential::ServiceAccount(c) => c.id_token(ctx, req).await,
            Credential::AuthorizedUser(c) => c.id_token(ctx, req).await,
            Credential::Impersonated(c) => c.id_token(ctx, req).await,
            Credential::ExternalAccount(c) => c.id_token(ctx, req).await,
            Credential::ExternalAccountUser(c) => Err(c.id_token_error()),
        }
    }

    /// An access token for this principal, from which an impersonation starts.
    pub async fn access_token(&self, ctx: &Context<'_>) -> Result<AccessToken> {
        match self {
            Credential::Metadata(c) => c.access_token(ctx).await,
            Credential::ServiceAccount(c) => c.access_token(ctx).await,
            Credential::AuthorizedUser(c) => c.access_token(ctx).await,
            Credential::Impersonated(c) => c.access_token(ctx).await,
            Credential::ExternalAccount(c) => c.access_token(ctx).await,
            Credential::ExternalAccountUser(c) => c.access_token(ctx).await,
        }
    }

    /// What identifies this credential in the token cache key: the source and its principal, never a
    /// secret (a secret that identifies the credential enters only as a SHA-256 digest). `None`: tokens of
    /// this credential are not cached, because who it speaks for is only known after a network call (a
    /// federated subject token from a URL, an executable or AWS), and a cached token could be served to a
    /// later caller whose own subject token would not be allowed to mint it.
    pub fn identity(&self, env: &Env) -> Option<String> {
        Some(match self {
            Credential::Metadata(c) => c.identity(env),
            Credential::ServiceAccount(c) => c.identity(env),
            Credential::AuthorizedUser(c) => c.identity(),
            Credential::Impersonated(c) => c.identity(env)?,
            Credential::ExternalAccount(c) => c.identity()?,
            Credential::ExternalAccountUser(c) => c.identity(),
        })
    }

    /// A short name of the credential type, for `-v` and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Credential::Metadata(_) => "metadata server",
            Credential::ServiceAccount(_) => "service account key",
            Credential::AuthorizedUser(_) => "user login",
            Credential::Impersonated(_) => "service account impersonation",
            Credential::ExternalAccount(_) => "external account (identity federation)",
            Credential::ExternalAccountUser(_) => "workforce identity federation user login",
        }
    }

    /// The principal known without the network (a key's `client_email`, a gcloud account), if any.
    pub fn principal(&self) -> Option<&str> {
        match self {
            Credential::Metadata(c) => c.principal.as_deref(),
            Credential::ServiceAccount(c) => Some(&c.client_email),
            Credential::AuthorizedUser(c) => c.account.as_deref(),
            Credential::Impersonated(c) => c.source.principal(),
            Credential::ExternalAccount(c) => c.principal(),
            Credential::ExternalAccountUser(_) => None,
        }
    }

    /// The credential's `universe_domain`, when it names one.
    pub fn universe_domain(&self) -> Option<&str> {
        match self {
            Credential::Metadata(_) => None,
            Credential::ServiceAccount(c) => c.universe_domain.as_deref(),
            Credential::AuthorizedUser(c) => c.universe_domain.as_deref(),
            Credential::Impersonated(c) => c.source.universe_domain(),
            Credential::ExternalAccount(c) => c.universe_domain.as_deref(),
            Credential::ExternalAccountUser(c) => c.universe_domain.as_deref(),
        }
    }

    /// The metadata server, the only source `--token-format` and `--include-license` apply to.
    pub fn is_metadata(&self) -> bool {
        matches!(self, Credential::Metadata(_))
    }
}

/// Where a credential was found: named in errors (the file, never its contents) and used for hints.
#[derive(Debug, Clone)]
pub enum Origin {
    /// A file named by a flag or a variable.
    File {
        path: PathBuf,
        named_by: &'static str,
    },
    /// A gcloud account's credential in `credentials.db`.
    Gcloud { db: PathBuf, account: String },
    /// The application default credentials file (`gcloud auth application-default login`).
    Adc { path: PathBuf },
}

impl Origin {
    /// The file an error names.
    pub fn path(&self) -> &Path {
        match self {
            Origin::File { path, .. } | Origin::Adc { path } => path,
            Origin::Gcloud { db, .. } => db,
        }
    }

    /// An error about this credential (exit 3): the file and the field or problem, never a value.
    pub fn invalid(&self, problem: impl Into<String>, hint: Option<String>) -> Error {
        let problem = problem.into();
        let problem = match self {
            Origin::Gcloud { account, .. } => format!("account {account}: {problem}"),
            _ => problem,
        };
        Error::CredentialFile {
            path: self.path().to_path_buf(),
            problem,
            hint,
        }
    }

    /// The command that gives this login a fresh refresh token.
    pub fn login_again(&self) -> String {
        match self {
            Origin::Gcloud { account, .. } => {
                format!("log in again: `gcloud auth login {account}`")
            }
            Origin::Adc { .. } => "log in again: `gcloud auth application-default login`".into(),
            Origin::File { path, named_by } => format!(
                "log in again (`gcloud auth application-default login`) and point {named_by} at the new \
                 file, or replace {}",
                path.display()
            ),
        }
    }

    /// For `-v`: where the credential came from.
    pub fn describe(&self) -> String {
        match self {
            Origin::File { path, named_by } => format!("{} (from {named_by})", path.display()),
            Origin::Gcloud { db, account } => {
                format!("gcloud account {account} ({})", db.display())
            }
            Origin::Adc { path } => format!("application default credentials {}", path.display()),
        }
    }
}

/// SHA-256 of a secret, hex: how a secret may enter a cache key.
pub fn digest_hex(secret: &str) -> String {
    crate::digest::sha256_hex(secret.as_bytes())
}
