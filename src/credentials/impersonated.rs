//! Service account impersonation: another credential's access token, then IAM Credentials generateIdToken on
//! the target, with delegates. One type serves `idtok impersonate`, `--impersonate-service-account A,B,C`
//! and `impersonated_service_account` files.
//!
//! idtok never calls generateAccessToken: an impersonation whose source is itself an impersonation is
//! flattened into one delegation chain (the inner target becomes the last delegate), so that only
//! `iam.serviceAccounts.getOpenIdToken` (and, for delegates, token creation along the chain) is needed.
//!
//! The IAM endpoint: `CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS` when set (the user's explicit choice
//! wins, as in gcloud); else, for a file, the base of its `service_account_impersonation_url` (so a file
//! made for a private or regional endpoint keeps using it); else `https://iamcredentials.{universe}`.

use super::file::Fields;
use super::{AccessToken, Context, Credential, IdTokenRequest};
use crate::error::{Error, Result};
use crate::settings::{Env, GCLOUD_CLIENT_ID};
use crate::sources::http::{parse_url, require_secure};
use crate::sources::iam::{self, GenerateIdToken};
use crate::token::IdToken;

#[derive(Debug)]
pub struct Impersonation {
    /// Whose access token calls IAM.
    pub source: Box<Credential>,
    /// The service account whose ID token is minted (an email).
    pub target: String,
    /// The delegation chain from the source towards the target, as bare emails.
    pub delegates: Vec<String>,
    /// The IAM Credentials base URL, without a trailing slash.
    pub iam_base: String,
    /// `--allow-self-impersonation`.
    pub allow_self: bool,
}

impl Impersonation {
    /// An impersonation of `target` through `delegates`, starting from `source`. `iam_base` is an endpoint
    /// the credential named (a file's URL), used unless CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS is
    /// set. The endpoint is checked here, so that an unsafe one is refused before anything is sent.
    pub fn new(
        source: Credential,
        target: &str,
        delegates: &[String],
        iam_base: Option<String>,
        env: &Env,
    ) -> Result<Impersonation> {
        let target = bare_email(target);
        if target.is_empty() {
            return Err(Error::Unsupported {
                what: "no service account to impersonate (the email is empty)".into(),
                hint: Some("name it: --service-account SA@PROJECT.iam.gserviceaccount.com".into()),
            });
        }
        let mut delegates: Vec<String> = delegates
            .iter()
            .map(|d| bare_email(d))
            .filter(|d| !d.is_empty())
            .collect();
        let (source, inner_base) = match source {
            Credential::Impersonated(inner) => {
                let mut chain = inner.delegates;
                chain.push(inner.target);
                chain.append(&mut delegates);
                delegates = chain;
                (inner.source, Some(inner.iam_base))
            }
            other => (Box::new(other), None),
        };
        let iam_base = match (&env.iamcredentials_endpoint, iam_base.or(inner_base)) {
            (None, Some(base)) => base.trim_end_matches('/').to_string(),
            _ => env.iam_base(source.universe_domain()),
        };
        let url = parse_url(
            &format!("{iam_base}/v1/projects/-/serviceAccounts/{target}:generateIdToken"),
            "the IAM Credentials endpoint",
        )?;
        require_secure(&url, "an access token", env.metadata_host())?;
        Ok(Impersonation {
            source,
            target,
            delegates,
            iam_base,
            allow_self: false,
        })
    }

    /// An `impersonated_service_account` file whose `source_credentials` are already loaded.
    pub fn load(fields: &Fields<'_>, source: Credential, env: &Env) -> Result<Impersonation> {
        let url = fields.required("service_account_impersonation_url")?;
        let Some((base, target)) = parse_impersonation_url(url) else {
            return Err(fields.invalid(
                "service_account_impersonation_url",
                "does not name a service account (.../projects/-/serviceAccounts/EMAIL:generateAccessToken)",
            ));
        };
        let delegates = fields.strings("delegates")?;
        Impersonation::new(source, &target, &delegates, Some(base), env)
    }

    /// The cache identity; `None` when the source's is (see `Credential::identity`).
    pub fn identity(&self, env: &Env) -> Option<String> {
        Some(format!(
            "impersonated:{}:{}:{}:{}<-{}",
            self.iam_base,
            self.delegates.join(","),
            self.target,
            if self.allow_self { "self-allowed" } else { "" },
            self.source.identity(env)?
        ))
    }

    /// The source's access token, then generateIdToken.
    pub async fn id_token(&self, ctx: &Context<'_>, req: &IdTokenRequest) -> Result<IdToken> {
        let audience = req.audience.as_deref().unwrap_or(GCLOUD_CLIENT_ID);
        // A principal known without the network is checked before anything is sent.
        if let Some(principal) = self.source.principal() {
            self.check_self(principal, audience, ctx)?;
        }
        ctx.log.info(|| {
            let via = if self.delegates.is_empty() {
                String::new()
            } else {
                format!(" via {}", self.delegates.join(" -> "))
            };
            format!(
                "impersonating {}{via} with the {}'s access token (IAM Credentials {})",
                self.target,
                self.source.kind(),
                self.iam_base
            )
        });
        let caller = self.source.access_token(ctx).await?;
        if self.source.principal().is_none()
            && let Some(principal) = &caller.principal
        {
            self.check_self(principal, audience, ctx)?;
        }
        let request = GenerateIdToken {
            base: &self.iam_base,
            target: &self.target,
            audience,
            include_email: req.include_email,
            delegates: &self.delegates,
            // The principal that needs the role on the target: the last delegate, else the caller.
            caller: self
                .delegates
                .last()
                .map(String::as_str)
                .or(caller.principal.as_deref()),
        };
        let token = iam::generate_id_token(ctx.http, ctx.env, &request, &caller.token)
            .await
            .map_err(|e| self.explain_refusal(e, &caller))?;
        IdToken::from_response(token.expose(), "impersonated", caller.principal.clone()).map_err(
            |e| Error::Failed {
                endpoint: "IAM Credentials",
                url: self.iam_base.clone(),
                problem: format!("the returned `token` is not a JWT ({e})"),
            },
        )
    }

    /// Not needed by idtok: an impersonation that is itself a source is flattened (see `new`).
    pub async fn access_token(&self, _ctx: &Context<'_>) -> Result<AccessToken> {
        Err(Error::Unsupported {
            what: format!(
                "an access token for the impersonated service account {} is not available (idtok calls \
                 generateIdToken with delegates instead of generateAccessToken)",
                self.target
            ),
            hint: None,
        })
    }

    /// Refuses a caller that would mint for itself, unless `--allow-self-impersonation` (then warns).
    fn check_self(&self, principal: &str, audience: &str, ctx: &Context<'_>) -> Result<()> {
        let immediate = self
            .delegates
            .last()
            .map(String::as_str)
            .unwrap_or(principal);
        if !immediate.eq_ignore_ascii_case(&self.target) {
            return Ok(());
        }
        if !self.allow_self {
            return Err(Error::SelfImpersonation {
                email: self.target.clone(),
                audience: audience.to_string(),
            });
        }
        ctx.log.warn(&format!(
            "{} is impersonating itself (--allow-self-impersonation): Google treats a service account \
             that can mint tokens for itself as a security vulnerability",
            self.target
        ));
        Ok(())
    }

    /// A 403 with delegates: say who needs what along the chain.
    fn explain_refusal(&self, mut error: Error, caller: &AccessToken) -> Error {
        if let (Some(hints), Some(first)) = (error.forbidden_hints(), self.delegates.first()) {
            let caller = caller
                .principal
                .as_deref()
                .map(iam::member)
                .unwrap_or_else(|| "the caller".into());
            hints.push(format!(
                "with delegates, {caller} needs roles/iam.serviceAccountTokenCreator on {first}, and each \
                 delegate on the next"
            ));
        }
        error
    }
}

/// `projects/-/serviceAccounts/EMAIL` or `EMAIL` -> `EMAIL`.
fn bare_email(value: &str) -> String {
    value
        .trim()
        .rsplit('/')
        .next()
        .unwrap_or(value)
        .trim()
        .to_string()
}

/// `https://host/v1/projects/-/serviceAccounts/EMAIL:generateAccessToken` -> (`https://host`, `EMAIL`).
fn parse_impersonation_url(url: &str) -> Option<(String, String)> {
    let marker = "/serviceAccounts/";
    let at = url.find(marker)?;
    let rest = &url[at + marker.len()..];
    let email = rest.split(':').next()?.replace("%40", "@");
    if email.is_empty() || email.contains('/') {
        return None;
    }
    let base = match url.find("/v1/") {
        Some(v1) if v1 < at => &url[..v1],
        _ => return None,
    };
    Some((base.to_string(), email))
}

/// Parses `A,B,C` (from `--impersonate-service-account`, its variable or the configuration): the last is
/// the target, the ones before it delegates, as gcloud's code does.
pub fn parse_chain(value: &str) -> Option<(String, Vec<String>)> {
    let mut accounts: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(bare_email)
        .collect();
    let target = accounts.pop()?;
    Some((target, accounts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impersonation_urls() {
        assert_eq!(
            parse_impersonation_url(
                "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/sa@p.iam.gserviceaccount.com:generateAccessToken"
            ),
            Some((
                "https://iamcredentials.googleapis.com".into(),
                "sa@p.iam.gserviceaccount.com".into()
            ))
        );
        assert_eq!(
            parse_impersonation_url(
                "http://127.0.0.1:8/v1/projects/-/serviceAccounts/sa%40p.iam.gserviceaccount.com:generateAccessToken"
            ),
            Some((
                "http://127.0.0.1:8".into(),
                "sa@p.iam.gserviceaccount.com".into()
            ))
        );
        assert_eq!(parse_impersonation_url("https://x/none"), None);
    }

    #[test]
    fn chains_end_with_the_target() {
        assert_eq!(
            parse_chain("a@x, b@x ,projects/-/serviceAccounts/c@x"),
            Some(("c@x".into(), vec!["a@x".into(), "b@x".into()]))
        );
        assert_eq!(parse_chain(" , "), None);
    }
}
