//! `external_account` credentials (workload and workforce identity federation): a subject token from the
//! `credential_source`, exchanged at STS for a federated access token, then generateIdToken on the
//! service account of `service_account_impersonation_url`. Without a service account there is no
//! Google-signed ID token to be had: the federated token is not a service account's, and only IAM mints
//! ID tokens for federated callers.
//! <https://google.aip.dev/auth/4117>, <https://cloud.google.com/iam/docs/workload-identity-federation>

use serde_json::Value;

use super::file::{Fields, http_url};
use super::subject_token::{CredentialSource, Fetch};
use super::{AccessToken, Context, IdTokenRequest, Origin};
use crate::error::{Error, Result};
use crate::settings::{DEFAULT_STS_TOKEN_URL, Env, GCLOUD_CLIENT_ID};
use crate::sources::http::{parse_url, require_secure};
use crate::sources::iam::{self, GenerateIdToken};
use crate::sources::sts::{self, Exchange};
use crate::token::{IdToken, Secret};

/// The `source` of ID tokens minted from federated credentials (SPEC.md section 4).
pub const SOURCE: &str = "external_account";

#[derive(Debug, Clone)]
pub struct ExternalAccount {
    /// Where the credential was found, named in errors.
    pub origin: Origin,
    /// The STS audience: the workload or workforce identity provider.
    pub audience: String,
    pub subject_token_type: String,
    /// As written in the file, else `https://sts.{universe}/v1/token`.
    pub token_url: String,
    /// `https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/EMAIL:generateAccessToken`.
    pub service_account_impersonation_url: Option<String>,
    /// The service account's email, from the impersonation URL.
    pub service_account: Option<String>,
    /// Where generateIdToken is called: see `iam_base`.
    pub iam_base: Option<String>,
    /// `service_account_impersonation.token_lifetime_seconds`: for access tokens only (ID tokens
    /// always live an hour).
    pub token_lifetime_seconds: Option<u64>,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub workforce_pool_user_project: Option<String>,
    pub universe_domain: Option<String>,
    /// Read and kept, never needed to mint a token.
    pub token_info_url: Option<String>,
    pub credential_source: CredentialSource,
}

impl ExternalAccount {
    /// Loads an `external_account` file. Errors name the file and the field, never a value. Every endpoint
    /// that will receive a secret is checked here, before any subject token is read or command run.
    pub fn load(fields: &Fields<'_>, env: &Env) -> Result<ExternalAccount> {
        let hint = || {
            Some(
                "regenerate the file with `gcloud iam workload-identity-pools create-cred-config`"
                    .to_string(),
            )
        };
        let bad = |problem: String| fields.origin.invalid(problem, hint());

        let audience = fields.required("audience")?.to_string();
        let subject_token_type = fields.required("subject_token_type")?.to_string();
        let universe_domain = fields.optional("universe_domain")?.map(str::to_string);
        let universe = universe_domain.as_deref().unwrap_or(env.universe());
        let token_url = match fields.optional("token_url")? {
            Some(url) => url.to_string(),
            None => DEFAULT_STS_TOKEN_URL.replace("{universe}", universe),
        };
        let parsed = http_url(&token_url)
            .ok_or_else(|| fields.invalid("token_url", "is not an http(s) URL"))?;
        require_secure(&parsed, "a subject token", env.metadata_host())?;

        let service_account_impersonation_url = fields
            .optional("service_account_impersonation_url")?
            .map(str::to_string);
        let (service_account, iam_base) = match &service_account_impersonation_url {
            None => (None, None),
            Some(url) => {
                let email = service_account_from_url(url).ok_or_else(|| {
                    fields.invalid(
                        "service_account_impersonation_url",
                        "does not name a service account (.../serviceAccounts/EMAIL:generateAccessToken)",
                    )
                })?;
                let base = iam_base(env, url).ok_or_else(|| {
                    fields.invalid("service_account_impersonation_url", "is not an http(s) URL")
                })?;
                let check = parse_url(&base, "the IAM Credentials endpoint")?;
                require_secure(&check, "an access token", env.metadata_host())?;
                (Some(email), Some(base))
            }
        };
        let token_lifetime_seconds = match fields
            .map
            .get("service_account_impersonation")
            .and_then(|o| o.get("token_lifetime_seconds"))
        {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .filter(|s| (600..=43_200).contains(s))
                    .ok_or_else(|| {
                        fields.invalid(
                            "service_account_impersonation.token_lifetime_seconds",
                            "must be a number of seconds from 600 to 43200",
                        )
                    })?,
            ),
        };
        let workforce_pool_user_project = fields
            .optional("workforce_pool_user_project")?
            .map(str::to_string);
        if workforce_pool_user_project.is_some() && !sts::is_workforce_audience(&audience) {
            return Err(fields.invalid(
                "workforce_pool_user_project",
                "is set but the audience is not a workforce pool \
                 (//iam.googleapis.com/locations/LOCATION/workforcePools/...)",
            ));
        }
        let source = fields.object("credential_source")?;
        let credential_source = CredentialSource::parse(source, &bad)?;
        Ok(ExternalAccount {
            origin: fields.origin.clone(),
            audience,
            subject_token_type,
            token_url,
            service_account_impersonation_url,
            service_account,
            iam_base,
            token_lifetime_seconds,
            client_id: fields.optional("client_id")?.map(str::to_string),
            client_secret: fields.optional("client_secret")?.map(Secret::new),
            workforce_pool_user_project,
            universe_domain,
            token_info_url: fields.optional("token_info_url")?.map(str::to_string),
            credential_source,
        })
    }

    /// The principal that signs in: the impersonated service account, when there is one.
    pub fn principal(&self) -> Option<&str> {
        self.service_account.as_deref()
    }

    /// What identifies this credential in the token cache key (no secret in it). It covers the subject token itself (as a digest), because the token minted for
    /// the service account must never outlive the caller it was minted for: with a `file` source that
    /// costs one local read; URL, executable and AWS sources would need a network call or a process before
    /// every cache lookup, so their tokens are not cached (`None`).
    pub fn identity(&self) -> Option<String> {
        let subject = self.credential_source.subject_digest()?;
        Some(format!(
            "external_account:{}:{}:{}:{}:{}:{subject}",
            self.audience,
            self.token_url,
            self.service_account_impersonation_url
                .as_deref()
                .unwrap_or("-"),
            // Where generateIdToken is called: the override, when set, wins over the URL's host.
            self.iam_base.as_deref().unwrap_or("-"),
            self.credential_source.describe()
        ))
    }

    /// An ID token for the service account of `service_account_impersonation_url`.
    pub async fn id_token(&self, ctx: &Context<'_>, req: &IdTokenRequest) -> Result<IdToken> {
        let (Some(email), Some(base)) = (&self.service_account, &self.iam_base) else {
            return Err(self.no_service_account());
        };
        let federated = self.federated_token(ctx).await?;
        let audience = req.audience.as_deref().unwrap_or(GCLOUD_CLIENT_ID);
        ctx.log
            .info(|| format!("generateIdToken for {email} with the federated token"));
        let request = GenerateIdToken {
            base,
            target: email,
            audience,
            include_email: req.include_email,
            delegates: &[],
            caller: None,
        };
        let token = iam::generate_id_token(ctx.http, ctx.env, &request, &federated)
            .await
            .map_err(|e| self.with_binding_hint(e, email))?;
        IdToken::from_response(token.expose(), SOURCE, Some(email.clone())).map_err(|e| {
            Error::Failed {
                endpoint: "IAM Credentials",
                url: base.clone(),
                problem: format!("HTTP 200 but the token is not a JWT ({e})"),
            }
        })
    }

    /// The access token this credential stands for: the impersonated service account's (generateAccessToken
    /// at `service_account_impersonation_url`: what the URL is for, and what google-auth and gcloud do with
    /// it), else the federated token itself.
    pub async fn access_token(&self, ctx: &Context<'_>) -> Result<AccessToken> {
        let federated = self.federated_token(ctx).await?;
        let (Some(email), Some(url)) = (
            &self.service_account,
            &self.service_account_impersonation_url,
        ) else {
            // The federated identity (a principal:// without an email).
            return Ok(AccessToken {
                token: federated,
                principal: None,
            });
        };
        let url = match &ctx.env.iamcredentials_endpoint {
            Some(base) => format!(
                "{}/v1/projects/-/serviceAccounts/{email}:generateAccessToken",
                base.trim_end_matches('/')
            ),
            None => url.clone(),
        };
        ctx.log
            .info(|| format!("generateAccessToken for {email} with the federated token"));
        let token = iam::generate_access_token(
            ctx.http,
            ctx.env,
            &url,
            email,
            self.token_lifetime_seconds,
            &federated,
        )
        .await
        .map_err(|e| self.with_binding_hint(e, email))?;
        Ok(AccessToken {
            token,
            principal: Some(email.clone()),
        })
    }

    /// The subject token, exchanged at STS.
    async fn federated_token(&self, ctx: &Context<'_>) -> Result<Secret> {
        ctx.log.info(|| {
            format!(
                "external account {}: subject token from {}",
                self.origin.path().display(),
                self.credential_source.describe()
            )
        });
        let subject_token = self
            .credential_source
            .subject_token(&Fetch {
                http: ctx.http,
                credential_file: self.origin.path(),
                audience: &self.audience,
                subject_token_type: &self.subject_token_type,
                impersonated_email: self.service_account.as_deref(),
                allow_executables: ctx.env.allow_executables,
                aws: &ctx.env.aws,
                metadata_host: ctx.env.metadata_host(),
                log: ctx.log,
            })
            .await?;
        ctx.log
            .info(|| format!("subject token {}", subject_token.redacted()));
        let token_url = parse_url(
            &self.token_url,
            &format!("`token_url` of {}", self.origin.path().display()),
        )?;
        // google-auth leaves userProject out when the client authenticates: the client id already names
        // the project.
        let user_project = match &self.client_id {
            Some(_) => None,
            None => self.workforce_pool_user_project.as_deref(),
        };
        let exchange = Exchange {
            token_url: &token_url,
            audience: &self.audience,
            subject_token: &subject_token,
            subject_token_type: &self.subject_token_type,
            user_project,
            client: self
                .client_id
                .as_deref()
                .map(|id| (id, self.client_secret.as_ref())),
        };
        let federated = sts::exchange(ctx.http, ctx.env, &exchange).await?;
        Ok(federated.access_token)
    }

    fn no_service_account(&self) -> Error {
        let member = sts::pool_principal_set(&self.audience)
            .unwrap_or_else(|| "principalSet://iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/*".into());
        self.origin.invalid(
            "this external_account file has no `service_account_impersonation_url`: federation without \
                      a service account (direct resource access) cannot obtain a Google-signed ID token, because \
                      only IAM generateIdToken on a service account mints one for a federated identity",
            Some(format!(
                "let the pool impersonate a service account SA: `gcloud iam service-accounts add-iam-policy-binding SA \
                 --role=roles/iam.workloadIdentityUser --member='{member}'`, then regenerate this file with \
                 `gcloud iam workload-identity-pools create-cred-config PROVIDER --service-account=SA --output-file=FILE ...` \
                 (google-github-actions/auth: set `service_account`)"
            )),
        )
    }

    /// A refusal by IAM gets the binding that federation needs as an extra hint.
    fn with_binding_hint(&self, mut e: Error, email: &str) -> Error {
        if let (Some(hints), Some(member)) =
            (e.forbidden_hints(), sts::pool_principal_set(&self.audience))
        {
            *hints = vec![
                format!(
                    "the federated identities of the pool need roles/iam.workloadIdentityUser on {email}:"
                ),
                format!(
                    "gcloud iam service-accounts add-iam-policy-binding {email} \
                     --role=roles/iam.workloadIdentityUser --member='{member}'"
                ),
            ];
        }
        e
    }
}

/// The email between `serviceAccounts/` and `:generateAccessToken` (google-auth parses it the same way).
pub fn service_account_from_url(url: &str) -> Option<String> {
    let end = url.find(":generateAccessToken")?;
    let start = url[..end].rfind('/')? + 1;
    let email = url[start..end].replace("%40", "@");
    (!email.is_empty() && url[..start].ends_with("serviceAccounts/")).then_some(email)
}

/// The IAM Credentials base URL for generateIdToken: `CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS` when
/// set (the user's explicit choice for every IAM call, as in gcloud), else the scheme and host of
/// `service_account_impersonation_url`, which already names the right universe (and a private or
/// regional endpoint, when the file was made for one).
fn iam_base(env: &Env, url: &str) -> Option<String> {
    if let Some(base) = &env.iamcredentials_endpoint {
        return Some(base.trim_end_matches('/').to_string());
    }
    let parsed = http_url(url)?;
    let mut base = format!("{}://{}", parsed.scheme(), parsed.host_str()?);
    if let Some(port) = parsed.port() {
        base.push_str(&format!(":{port}"));
    }
    Some(base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::Origin;
    use serde_json::json;

    #[test]
    fn service_account_email_from_url() {
        assert_eq!(
            service_account_from_url(
                "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/sa@p.iam.gserviceaccount.com:generateAccessToken"
            )
            .as_deref(),
            Some("sa@p.iam.gserviceaccount.com")
        );
        assert_eq!(
            service_account_from_url(
                "https://x/v1/projects/-/serviceAccounts/:generateAccessToken"
            ),
            None
        );
        assert_eq!(
            service_account_from_url("https://x/v1/sa@p:generateIdToken"),
            None
        );
    }

    fn load(v: &Value, env: &Env) -> Result<ExternalAccount> {
        let origin = Origin::File {
            path: "f.json".into(),
            named_by: "--credential-file-override",
        };
        let fields = Fields::new(v, &origin, "")?;
        ExternalAccount::load(&fields, env)
    }

    fn file(extra: Value) -> Value {
        let mut v = json!({
            "type": "external_account",
            "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q",
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "credential_source": {"file": "/tmp/t"},
        });
        for (k, val) in extra.as_object().unwrap() {
            v[k] = val.clone();
        }
        v
    }

    #[test]
    fn defaults_and_validation() {
        let env = Env::default();
        let ea = load(&file(json!({})), &env).unwrap();
        assert_eq!(ea.token_url, "https://sts.googleapis.com/v1/token");
        let ea = load(&file(json!({"universe_domain": "u.example"})), &env).unwrap();
        assert_eq!(ea.token_url, "https://sts.u.example/v1/token");
        let universe = Env {
            universe_domain: Some("env.example".into()),
            ..Env::default()
        };
        assert_eq!(
            load(&file(json!({})), &universe).unwrap().token_url,
            "https://sts.env.example/v1/token"
        );
        let err = load(&file(json!({"workforce_pool_user_project": "123"})), &env).unwrap_err();
        assert!(err.to_string().contains("workforce_pool_user_project"));
        let mut v = file(json!({}));
        v.as_object_mut().unwrap().remove("audience");
        let err = load(&v, &env).unwrap_err();
        assert_eq!(err.to_string(), "f.json: missing field `audience`");
    }

    #[test]
    fn iam_base_prefers_the_override() {
        let url = "https://iamcredentials.u.example/v1/projects/-/serviceAccounts/a@b:generateAccessToken";
        let ea = load(
            &file(json!({"service_account_impersonation_url": url})),
            &Env::default(),
        )
        .unwrap();
        assert_eq!(
            ea.iam_base.as_deref(),
            Some("https://iamcredentials.u.example")
        );
        assert_eq!(ea.service_account.as_deref(), Some("a@b"));
        let env = Env {
            iamcredentials_endpoint: Some("http://127.0.0.1:9/".into()),
            ..Env::default()
        };
        let ea = load(
            &file(json!({"service_account_impersonation_url": url})),
            &env,
        )
        .unwrap();
        assert_eq!(ea.iam_base.as_deref(), Some("http://127.0.0.1:9"));
    }
}
