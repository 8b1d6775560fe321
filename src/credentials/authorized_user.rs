//! A user login (`"type": "authorized_user"`, from `gcloud auth login` or `gcloud auth
//! application-default login`): the refresh-token grant to `token_uri`. Its response carries an `id_token`
//! whose `aud` is the login's own OAuth client id (Cloud Run accepts it). With `--audiences`, the request
//! carries `audience=AUD`, IAP's documented cross-client flow
//! (<https://cloud.google.com/iap/docs/authentication-howto#authenticating_from_a_desktop_app>).

use reqwest::Url;

use super::file::Fields;
use super::{AccessToken, Context, IdTokenRequest, Origin, digest_hex};
use crate::error::{Error, Result};
use crate::settings::Env;
use crate::sources::oauth::{self, Grant, OAuthError};
use crate::token::{IdToken, Secret};

pub struct AuthorizedUser {
    pub client_id: String,
    client_secret: Secret,
    refresh_token: Secret,
    pub token_uri: Url,
    pub universe_domain: Option<String>,
    /// The gcloud account this login belongs to, when it came from `credentials.db`.
    pub account: Option<String>,
    pub origin: Origin,
}

impl std::fmt::Debug for AuthorizedUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizedUser")
            .field("client_id", &self.client_id)
            .field("token_uri", &self.token_uri.as_str())
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl AuthorizedUser {
    pub fn load(fields: &Fields<'_>, env: &Env) -> Result<AuthorizedUser> {
        let account = match fields.origin {
            Origin::Gcloud { account, .. } => Some(account.clone()),
            _ => None,
        };
        Ok(AuthorizedUser {
            client_id: fields.required("client_id")?.to_string(),
            client_secret: Secret::new(fields.required("client_secret")?),
            refresh_token: Secret::new(fields.required("refresh_token")?),
            token_uri: fields.endpoint(
                "token_uri",
                &env.default_token_uri(),
                "a refresh token",
                env,
            )?,
            universe_domain: fields.optional("universe_domain")?.map(str::to_string),
            account,
            origin: fields.origin.clone(),
        })
    }

    pub fn identity(&self) -> String {
        format!(
            "authorized_user:{}:{}:{}",
            self.client_id,
            digest_hex(self.refresh_token.expose()),
            self.token_uri
        )
    }

    /// The refresh grant's `id_token`; `audience=AUD` only when an audience was asked for.
    pub async fn id_token(&self, ctx: &Context<'_>, req: &IdTokenRequest) -> Result<IdToken> {
        let audience = req.audience.as_deref();
        ctx.log.info(|| match audience {
            Some(aud) => format!("refreshing the user login with audience={aud}"),
            None => format!(
                "refreshing the user login; the token's audience is its OAuth client id {}",
                self.client_id
            ),
        });
        let response = self.refresh(ctx, audience).await?;
        let Some(token) = response.id_token else {
            return Err(Error::Unsupported {
                what: format!(
                    "{}: the login did not return an ID token (it was granted without the `openid` scope)",
                    self.origin.describe()
                ),
                hint: Some(self.origin.login_again()),
            });
        };
        let mut token =
            IdToken::from_response(token.expose(), "authorized_user", self.account.clone())
                .map_err(|e| Error::Failed {
                    endpoint: "OAuth2 token endpoint",
                    url: self.token_uri.to_string(),
                    problem: format!("the `id_token` is not a JWT ({e})"),
                })?;
        if let Some(aud) = audience
            && !token.jwt.audiences().contains(&aud)
        {
            // Never hand a script a token for another audience than the one it asked for.
            return Err(Error::Unsupported {
                what: format!(
                    "the token endpoint ignored audience={aud}: the user token's audience is {}",
                    token.jwt.audiences().join(", ")
                ),
                hint: Some(impersonate_hint()),
            });
        }
        if token.principal.is_none() {
            token.principal = token.jwt.str_claim("email").map(str::to_string);
        }
        Ok(token)
    }

    /// The same refresh grant, for the access token an impersonation starts from.
    pub async fn access_token(&self, ctx: &Context<'_>) -> Result<AccessToken> {
        let response = self.refresh(ctx, None).await?;
        let token = response
            .access_token
            .ok_or_else(|| oauth::missing(&self.token_uri, "access_token"))?;
        // The login's email: from the ID token that comes with the refresh (openid email scopes).
        let email = response.id_token.and_then(|t| {
            crate::token::Jwt::parse(t.expose())
                .ok()
                .and_then(|jwt| jwt.str_claim("email").map(str::to_string))
        });
        Ok(AccessToken {
            token,
            principal: email.or_else(|| self.account.clone()),
        })
    }

    async fn refresh(
        &self,
        ctx: &Context<'_>,
        audience: Option<&str>,
    ) -> Result<oauth::TokenResponse> {
        let grant = Grant::Refresh {
            client_id: &self.client_id,
            client_secret: &self.client_secret,
            refresh_token: &self.refresh_token,
            audience,
        };
        oauth::exchange(ctx.http, ctx.env, &self.token_uri, grant, |e| {
            self.hints(e, audience)
        })
        .await
    }

    fn hints(&self, error: &OAuthError, audience: Option<&str>) -> Vec<String> {
        let mut hints = Vec::new();
        if error.is_reauth() {
            hints.push(format!(
                "your organisation requires you to sign in again (reauthentication); {}",
                self.origin.login_again()
            ));
        } else {
            match error.error.as_str() {
                "invalid_grant" => hints.push(format!(
                    "the refresh token has expired or was revoked; {}",
                    self.origin.login_again()
                )),
                "invalid_client" | "unauthorized_client" => hints.push(format!(
                    "the OAuth client {} was deleted, disabled or does not match the refresh token; {}",
                    self.client_id,
                    self.origin.login_again()
                )),
                _ => {}
            }
        }
        if audience.is_some() {
            hints.push(
                "a user token can carry a custom audience only in IAP's cross-client flow, where the \
                 audience is an OAuth client id"
                    .into(),
            );
            hints.push(impersonate_hint());
        }
        hints
    }
}

fn impersonate_hint() -> String {
    "for any other audience, impersonate a service account: \
     `idtok print-identity-token --impersonate-service-account SA --audiences AUD`"
        .into()
}
