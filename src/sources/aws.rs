//! The AWS instance metadata service (IMDS), for an `external_account` file with an `aws` source: the
//! IMDSv2 session token, the region of the instance and the credentials of its role, as google-auth's
//! `aws.py` fetches them. Every URL comes from the credential file (`imdsv2_session_token_url`,
//! `region_url`, `url`).
//! <https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-retrieval.html>

use reqwest::{Method, Url};
use serde_json::Value;

use super::http::{Body, Http, Request, Response, Route};
use super::sigv4::AwsCredentials;
use crate::error::{Error, Result};
use crate::token::Secret;

const ENDPOINT: &str = "AWS metadata server";
/// The lifetime asked for an IMDSv2 session token, in seconds (google-auth asks the same).
const SESSION_TTL: &str = "300";
const TOKEN_HEADER: &str = "X-aws-ec2-metadata-token";

/// `PUT imdsv2_session_token_url` with `X-aws-ec2-metadata-token-ttl-seconds`: the IMDSv2 session token
/// that the other metadata requests carry as `X-aws-ec2-metadata-token`.
pub async fn session_token(http: &Http, url: &Url) -> Result<Secret> {
    let request = Request {
        endpoint: ENDPOINT,
        method: Method::PUT,
        url: url.clone(),
        headers: Vec::new(),
        body: Body::Empty,
        route: Route::Metadata,
    }
    .header("X-aws-ec2-metadata-token-ttl-seconds", SESSION_TTL);
    let response = ok(http.send(&request).await?, "the IMDSv2 session token")?;
    let token = response.body.trim();
    if token.is_empty() {
        return Err(empty(&response, "an IMDSv2 session token"));
    }
    Ok(Secret::new(token))
}

/// `GET region_url`: the availability zone (`us-east-2b`), whose region is all but the zone letter.
pub async fn region(http: &Http, url: &Url, session: Option<&Secret>) -> Result<String> {
    let response = ok(get(http, url, session).await?, "the region")?;
    let zone = response.body.trim();
    let region = match zone.chars().last() {
        Some(c) if c.is_ascii_alphabetic() => &zone[..zone.len() - 1],
        _ => zone,
    };
    if region.is_empty() {
        return Err(empty(&response, "an availability zone"));
    }
    Ok(region.to_string())
}

/// `GET url` for the instance's role name, then `GET url/ROLE` for its temporary credentials.
pub async fn role_credentials(
    http: &Http,
    url: &Url,
    session: Option<&Secret>,
) -> Result<AwsCredentials> {
    let response = ok(get(http, url, session).await?, "the role name")?;
    let role = response
        .body
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    if role.is_empty() {
        return Err(response
            .failed("no IAM role is attached to this instance (the role list is empty)".into()));
    }
    let role_url = format!("{}/{role}", url.as_str().trim_end_matches('/'));
    let role_url = Url::parse(&role_url).map_err(|_| Error::Failed {
        endpoint: ENDPOINT,
        url: url.to_string(),
        problem: "the role name does not make a valid URL".into(),
    })?;
    let response = ok(
        get(http, &role_url, session).await?,
        "the role's credentials",
    )?;
    let body = response.json()?;
    let field = |name: &str| -> Result<String> {
        match body.get(name).and_then(Value::as_str) {
            Some(v) if !v.is_empty() => Ok(v.to_string()),
            _ => Err(response.failed(format!("the role's credentials have no `{name}`"))),
        }
    };
    Ok(AwsCredentials {
        access_key_id: field("AccessKeyId")?,
        secret_access_key: Secret::new(field("SecretAccessKey")?),
        session_token: body
            .get("Token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(Secret::new),
    })
}

async fn get(http: &Http, url: &Url, session: Option<&Secret>) -> Result<Response> {
    let mut request = Request::get(ENDPOINT, url.clone(), Route::Metadata);
    if let Some(token) = session {
        request = request.header(TOKEN_HEADER, token.expose());
    }
    http.send(&request).await
}

fn ok(response: Response, what: &str) -> Result<Response> {
    match response.status.as_u16() {
        200..=299 => Ok(response),
        401 => Err(response.refused(vec![
            "IMDSv2 is required on this instance: add `imdsv2_session_token_url` to the credential file \
             (`gcloud iam workload-identity-pools create-cred-config ... --aws --enable-imdsv2`)"
                .into(),
        ])),
        404 => Err(response.refused(vec![format!(
            "the AWS metadata server has no {what} at this URL; check the credential file's credential_source"
        )])),
        _ => Err(response.refused(Vec::new())),
    }
}

fn empty(response: &Response, what: &str) -> Error {
    response.failed(format!("HTTP 200 without {what}"))
}
