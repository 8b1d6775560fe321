//! The metadata server as a credential: the identity endpoint for ID tokens, the token endpoint for the
//! access token an impersonation starts from.

use super::{Context, IdTokenRequest};
use crate::cli::TokenFormat;
use crate::error::Result;
use crate::settings::GCLOUD_CLIENT_ID;
use crate::sources::metadata::{self, IdentityRequest};
use crate::token::{IdToken, Secret};

#[derive(Debug, Clone)]
pub struct MetadataCredential {
    /// `default` or the email of one of the instance's service accounts.
    pub service_account: String,
}

impl MetadataCredential {
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
        metadata::identity(ctx.http, ctx.env, &request).await
    }

    pub async fn access_token(&self, ctx: &Context<'_>) -> Result<Secret> {
        metadata::access_token(ctx.http, ctx.env, &self.service_account).await
    }
}
