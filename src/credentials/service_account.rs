//! A service account key (`"type": "service_account"`): an RS256 JWT-bearer assertion, signed with the key,
//! sent to the key's `token_uri`. With `target_audience` the endpoint answers with a Google-signed ID token;
//! with `scope` it answers with an access token (the source of an impersonation).
//! <https://developers.google.com/identity/protocols/oauth2/service-account#httprest>

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Url;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};

use super::file::Fields;
use super::{AccessToken, Context, IdTokenRequest, Origin, digest_hex};
use crate::error::{Error, Result};
use crate::settings::{DEFAULT_UNIVERSE, Env, GCLOUD_CLIENT_ID};
use crate::sources::iam::{self, GenerateIdToken};
use crate::sources::oauth::{self, Grant, OAuthError};
use crate::token::{IdToken, Secret};

/// The scope of the access token an impersonation starts from.
pub const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Lifetime of the assertion, as Google's libraries use.
const ASSERTION_LIFETIME: u64 = 3600;

pub struct ServiceAccountKey {
    pub client_email: String,
    pub private_key_id: Option<String>,
    key: Box<RsaKeyPair>,
    /// SHA-256 of the PEM: identifies the key in the cache key without being the key.
    key_digest: String,
    pub token_uri: Url,
    pub universe_domain: Option<String>,
    pub origin: Origin,
}

impl std::fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .field("token_uri", &self.token_uri.as_str())
            .finish_non_exhaustive()
    }
}

impl ServiceAccountKey {
    pub fn load(fields: &Fields<'_>, env: &Env) -> Result<ServiceAccountKey> {
        let client_email = fields.required("client_email")?.to_string();
        let pem = fields.required("private_key")?;
        let key = parse_key(pem).map_err(|problem| fields.invalid("private_key", problem))?;
        let token_uri = fields.endpoint(
            "token_uri",
            &env.default_token_uri(),
            "a signed assertion",
            env,
        )?;
        Ok(ServiceAccountKey {
            client_email,
            private_key_id: fields.optional("private_key_id")?.map(str::to_string),
            key: Box::new(key),
            key_digest: digest_hex(pem),
            token_uri,
            universe_domain: fields.optional("universe_domain")?.map(str::to_string),
            origin: fields.origin.clone(),
        })
    }

    pub fn identity(&self, env: &Env) -> String {
        // The endpoint that mints: IAM Credentials outside googleapis.com, else the token endpoint.
        let endpoint = match self.other_universe(env) {
            Some(universe) => format!("iam={}", env.iam_base(Some(universe))),
            None => format!("token_uri={}", self.token_uri),
        };
        format!(
            "service_account:{}:{}:{}:{endpoint}",
            self.client_email,
            self.private_key_id.as_deref().unwrap_or(""),
            self.key_digest,
        )
    }

    /// JWT-bearer with `target_audience`: the endpoint answers `{"id_token": ...}`.
    pub async fn id_token(&self, ctx: &Context<'_>, req: &IdTokenRequest) -> Result<IdToken> {
        if let Some(universe) = self.other_universe(ctx.env) {
            return self.id_token_in_universe(ctx, req, universe).await;
        }
        let audience = req.audience.as_deref().unwrap_or(GCLOUD_CLIENT_ID);
        ctx.log.info(|| {
            format!(
                "signing a JWT-bearer assertion as {} (key {}) for audience {audience}",
                self.client_email,
                self.private_key_id.as_deref().unwrap_or("without id")
            )
        });
        let assertion = self.assertion(json!({ "target_audience": audience }))?;
        let response = self.exchange(ctx, &assertion).await?;
        let token = response
            .id_token
            .ok_or_else(|| oauth::missing(&self.token_uri, "id_token"))?;
        IdToken::from_response(
            token.expose(),
            "service_account",
            Some(self.client_email.clone()),
        )
        .map_err(|e| Error::Failed {
            endpoint: "OAuth2 token endpoint",
            url: self.token_uri.to_string(),
            problem: format!("the `id_token` is not a JWT ({e})"),
        })
    }

    /// JWT-bearer with `scope=cloud-platform`: an access token for an impersonation to start from.
    pub async fn access_token(&self, ctx: &Context<'_>) -> Result<AccessToken> {
        if let Some(universe) = self.other_universe(ctx.env) {
            return self.access_token_in_universe(ctx, universe);
        }
        let assertion = self.assertion(json!({ "scope": CLOUD_PLATFORM }))?;
        let response = self.exchange(ctx, &assertion).await?;
        let token = response
            .access_token
            .ok_or_else(|| oauth::missing(&self.token_uri, "access_token"))?;
        Ok(AccessToken {
            token,
            principal: Some(self.client_email.clone()),
        })
    }

    async fn exchange(
        &self,
        ctx: &Context<'_>,
        assertion: &Secret,
    ) -> Result<oauth::TokenResponse> {
        oauth::exchange(
            ctx.http,
            ctx.env,
            &self.token_uri,
            Grant::JwtBearer { assertion },
            |e| self.hints(e),
        )
        .await
    }

    /// Claims `iss`, `aud` = token_uri and `extra` (see `signed_jwt`).
    fn assertion(&self, extra: Value) -> Result<Secret> {
        let mut claims = json!({
            "iss": self.client_email,
            "aud": self.token_uri.as_str(),
        });
        if let (Some(claims), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
            claims.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        self.signed_jwt(claims)
    }

    /// Header `{alg, kid, typ}`; `claims` with `iat` = now and `exp` = iat + 3600, signed with the key.
    fn signed_jwt(&self, mut claims: Value) -> Result<Secret> {
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| Error::Bug("the system clock is before 1970".into()))?
            .as_secs();
        claims["iat"] = json!(iat);
        claims["exp"] = json!(iat + ASSERTION_LIFETIME);
        let mut header = json!({ "alg": "RS256", "typ": "JWT" });
        if let Some(kid) = &self.private_key_id {
            header["kid"] = json!(kid);
        }
        self.sign(&header, &claims)
    }

    /// Signs `header.claims` with the key, RS256.
    fn sign(&self, header: &Value, claims: &Value) -> Result<Secret> {
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| Error::Bug("RSA signing failed".into()))?;
        Ok(Secret::new(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        )))
    }

    fn hints(&self, error: &OAuthError) -> Vec<String> {
        let email = &self.client_email;
        let mut hints = Vec::new();
        let description = error
            .description
            .as_deref()
            .unwrap_or("")
            .to_ascii_lowercase();
        match error.error.as_str() {
            "invalid_grant"
                if description.contains("signature")
                    || description.contains("account not found") =>
            {
                hints.push(format!(
                    "the key may have been deleted or disabled, or the service account deleted: \
                     `gcloud iam service-accounts keys list --iam-account {email}`"
                ));
                hints.push(format!(
                    "create a new key: `gcloud iam service-accounts keys create key.json --iam-account {email}`"
                ));
            }
            "invalid_grant"
                if description.contains("time") || description.contains("short-lived") =>
            {
                hints.push(
                    "check this machine's clock: the assertion is valid for one hour from now"
                        .into(),
                );
            }
            "invalid_grant" => {
                hints.push(format!(
                    "check that the service account {email} and its key {} still exist and are enabled",
                    self.private_key_id.as_deref().unwrap_or("(no private_key_id)")
                ));
            }
            "unauthorized_client" | "invalid_client" => {
                hints.push(format!(
                    "the service account {email} or its key is disabled or deleted"
                ));
            }
            _ => {}
        }
        hints
    }
}

// ---- Other universes (issue 5) ----
//
// The OAuth2 token endpoint serves googleapis.com only. Outside it, the Python and Go libraries sign a JWT
// themselves (`iss` = `sub` = client_email, a `scope`, no `aud`, `kid` = private_key_id) and use it as the
// bearer token: for IAM generateIdToken on the key's own service account (an ID token), or as the access
// token itself (where an impersonation starts). google-auth: `service_account.IDTokenCredentials.
// _refresh_with_iam_endpoint`, and `Credentials` with self-signed JWTs outside the default universe.

/// The scope of the self-signed JWT that asks IAM for an ID token, as google-auth signs it.
const IAM_SCOPE: &str = "https://www.googleapis.com/auth/iam";

impl ServiceAccountKey {
    /// The key's universe when it is not googleapis.com: the file's `universe_domain`, else
    /// `GOOGLE_CLOUD_UNIVERSE_DOMAIN`.
    fn other_universe<'a>(&'a self, env: &'a Env) -> Option<&'a str> {
        let universe = self.universe_domain.as_deref().unwrap_or(env.universe());
        (universe != DEFAULT_UNIVERSE).then_some(universe)
    }

    /// A JWT signed by the key for itself: claims `iss` = `sub` = client_email and `scope` (see
    /// `signed_jwt`).
    fn self_signed_jwt(&self, scope: &str) -> Result<Secret> {
        self.signed_jwt(json!({
            "iss": self.client_email,
            "sub": self.client_email,
            "scope": scope,
        }))
    }

    /// generateIdToken on the key's own service account, with a self-signed JWT as the bearer token, at
    /// `https://iamcredentials.{universe}` (or CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS). Like every
    /// key's token, it carries the email (google-auth sends `includeEmail` too).
    async fn id_token_in_universe(
        &self,
        ctx: &Context<'_>,
        req: &IdTokenRequest,
        universe: &str,
    ) -> Result<IdToken> {
        let base = ctx.env.iam_base(Some(universe));
        let audience = req.audience.as_deref().unwrap_or(GCLOUD_CLIENT_ID);
        ctx.log.info(|| {
            format!(
                "universe {universe}: the token endpoint serves googleapis.com only; generateIdToken for {} \
                 at {base} with a JWT signed by its key {}",
                self.client_email,
                self.private_key_id.as_deref().unwrap_or("(without id)")
            )
        });
        let jwt = self.self_signed_jwt(IAM_SCOPE)?;
        let request = GenerateIdToken {
            base: &base,
            target: &self.client_email,
            audience,
            include_email: true,
            delegates: &[],
            caller: Some(&self.client_email),
        };
        let token = iam::generate_id_token(ctx.http, ctx.env, &request, &jwt).await?;
        IdToken::from_response(
            token.expose(),
            "service_account",
            Some(self.client_email.clone()),
        )
        .map_err(|e| Error::Failed {
            endpoint: "IAM Credentials",
            url: base.clone(),
            problem: format!("the returned `token` is not a JWT ({e})"),
        })
    }

    /// Outside googleapis.com a self-signed JWT with the cloud-platform scope is the access token.
    fn access_token_in_universe(&self, ctx: &Context<'_>, universe: &str) -> Result<AccessToken> {
        ctx.log.info(|| {
            format!(
                "universe {universe}: a JWT self-signed by {} stands in for its access token",
                self.client_email
            )
        });
        Ok(AccessToken {
            token: self.self_signed_jwt(CLOUD_PLATFORM)?,
            principal: Some(self.client_email.clone()),
        })
    }
}

/// Parses a PKCS#8 PEM RSA key. The problem names what is wrong, never the key.
fn parse_key(pem: &str) -> Result<RsaKeyPair, &'static str> {
    let der = PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|_| "is not a PKCS#8 PEM private key (-----BEGIN PRIVATE KEY-----)")?;
    RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
        .map_err(|_| "is not a valid RSA private key for RS256 (PKCS#8, 2048 to 8192 bits)")
}
