//! The metadata server (Compute Engine, Cloud Run, GKE, Cloud Functions): the identity endpoint for ID
//! tokens and the token endpoint for the access token an impersonation starts from.
//! <https://cloud.google.com/compute/docs/instances/verifying-instance-identity>

use std::time::Duration;

use reqwest::Url;

use super::http::{Http, Request, Response, Route};
use crate::cli::TokenFormat;
use crate::error::{Error, Result};
use crate::settings::{DEFAULT_METADATA_HOST, Env};
use crate::token::{IdToken, Secret};

const ENDPOINT: &str = "metadata server";
/// How long the name of the metadata server may take to resolve before idtok calls it unresolvable.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);
/// The same for `metadata.google.internal`: on Google Cloud the metadata server itself answers the lookup at
/// once, and off it the fallback IP is tried anyway, so idtok does not wait long (SPEC 2.1: fail fast).
const DEFAULT_RESOLVE_TIMEOUT: Duration = Duration::from_millis(400);

/// What to ask the identity endpoint for.
#[derive(Debug, Clone)]
pub struct IdentityRequest<'a> {
    pub audience: &'a str,
    pub format: TokenFormat,
    pub licenses: bool,
    pub service_account: &'a str,
}

/// `GET .../service-accounts/{sa}/identity?audience=...&format=...[&licenses=TRUE]`.
pub async fn identity(http: &Http, at: &Location, req: &IdentityRequest<'_>) -> Result<IdToken> {
    let path = [
        "instance",
        "service-accounts",
        req.service_account,
        "identity",
    ];
    let mut query = vec![("audience", req.audience), ("format", req.format.as_str())];
    if req.licenses {
        query.push(("licenses", "TRUE"));
    }
    let response = get(http, at, &path, &query, req.service_account).await?;
    let principal = (req.service_account != "default").then(|| req.service_account.to_string());
    let mut token = IdToken::from_response(response.body.trim(), "metadata", principal)
        .map_err(|e| response.failed(format!("HTTP 200 but the body is not an ID token ({e})")))?;
    if token.principal.is_none() {
        token.principal = token.jwt.str_claim("email").map(str::to_string);
    }
    Ok(token)
}

/// An access token of the instance's service account, and its email, for an impersonation that starts
/// from the metadata server.
pub async fn access_token(http: &Http, at: &Location, service_account: &str) -> Result<Secret> {
    let path = ["instance", "service-accounts", service_account, "token"];
    let response = get(http, at, &path, &[], service_account).await?;
    response.json_field("access_token")
}

/// The email of the instance's service account.
pub async fn email(http: &Http, at: &Location, service_account: &str) -> Result<String> {
    let path = ["instance", "service-accounts", service_account, "email"];
    let response = get(http, at, &path, &[], service_account).await?;
    Ok(response.body.trim().to_string())
}

/// Where the metadata server is, found once per command.
#[derive(Debug, Clone)]
pub struct Location {
    host: String,
    route: Route,
    /// `GCE_METADATA_HOST`/`GCE_METADATA_ROOT` named it (else idtok chose it, and off Google Cloud is likely).
    named: bool,
}

/// The host the user named, else `metadata.google.internal` and, only when that name does not resolve, the
/// fallback IP, tried once.
pub async fn locate(http: &Http, env: &Env) -> Result<Location> {
    let log = http.log();
    let (host, route) = match env.metadata_host() {
        Some(host) => {
            log.info(|| {
                format!("metadata server: {host} (from GCE_METADATA_HOST/GCE_METADATA_ROOT)")
            });
            if host.contains('/') || host.contains('?') || host.contains('#') {
                return Err(Error::Unsupported {
                    what: format!(
                        "GCE_METADATA_HOST/GCE_METADATA_ROOT `{host}` is not a host[:port] (no scheme or path)"
                    ),
                    hint: Some(
                        "set it to host[:port], for example GCE_METADATA_HOST=127.0.0.1:8080"
                            .into(),
                    ),
                });
            }
            if !resolves(http, host, RESOLVE_TIMEOUT).await {
                return Err(unresolvable(host, true));
            }
            (host.to_string(), Route::Metadata)
        }
        None if resolves(http, DEFAULT_METADATA_HOST, DEFAULT_RESOLVE_TIMEOUT).await => {
            (DEFAULT_METADATA_HOST.to_string(), Route::Metadata)
        }
        None => {
            let ip = env.metadata_ip();
            log.info(|| format!("{DEFAULT_METADATA_HOST} does not resolve; trying {ip} once"));
            (ip.to_string(), Route::MetadataFallback)
        }
    };
    Ok(Location {
        host,
        route,
        named: env.metadata_host().is_some(),
    })
}

/// `GET` below `/computeMetadata/v1/` at `at`. `path` is a list of segments, each percent-encoded, so that a
/// `/`, `?` or `#` in a service account name cannot reach another path.
async fn get(
    http: &Http,
    at: &Location,
    path: &[&str],
    query: &[(&str, &str)],
    service_account: &str,
) -> Result<Response> {
    let Location { host, route, named } = at;
    let route = *route;
    let base = format!("http://{host}/computeMetadata/v1");
    let invalid = || Error::Unsupported {
        what: format!("the metadata server address `{host}` is not a valid host[:port]"),
        hint: Some("set GCE_METADATA_HOST to host[:port], for example 127.0.0.1:8080".into()),
    };
    let mut url = Url::parse(&base).map_err(|_| invalid())?;
    url.path_segments_mut()
        .map_err(|()| invalid())?
        .extend(path);
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    let request = Request::get(ENDPOINT, url, route).header("Metadata-Flavor", "Google");
    let response = match http.send(&request).await {
        Ok(response) => response,
        Err(Error::Unreachable {
            endpoint,
            url,
            reason,
            mut hints,
        }) => {
            if !named {
                hints.extend(off_cloud_hints());
            } else {
                hints.push(
                    "GCE_METADATA_HOST or GCE_METADATA_ROOT names this server: is it running?"
                        .into(),
                );
            }
            return Err(Error::Unreachable {
                endpoint,
                url,
                reason,
                hints,
            });
        }
        Err(e) => return Err(e),
    };
    match response.status.as_u16() {
        200..=299 => Ok(response),
        404 => Err(response.refused_because(
            format!("no service account `{service_account}` on this instance"),
            vec![
                "list the accounts: curl -H 'Metadata-Flavor: Google' \
                 http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/"
                    .into(),
                "or attach a service account to the instance, Cloud Run service or node pool".into(),
            ],
        )),
        403 => Err(response.refused_because(
            format!(
                "the request is rejected; the metadata server may be concealed ({})",
                response.google_message()
            ),
            vec![
                "on GKE, metadata concealment hides identity tokens: enable Workload Identity for the node pool".into(),
            ],
        )),
        _ => Err(response.refused(Vec::new())),
    }
}

/// Whether the name resolves, within both `limit` and what is left of `--timeout`.
async fn resolves(http: &Http, host_port: &str, limit: Duration) -> bool {
    let with_port = if host_port.starts_with('[') {
        if host_port.contains("]:") {
            host_port.to_string()
        } else {
            format!("{host_port}:80")
        }
    } else if host_port.matches(':').count() == 1 {
        host_port.to_string()
    } else if host_port.contains(':') {
        format!("[{host_port}]:80")
    } else {
        format!("{host_port}:80")
    };
    let limit = limit.min(http.remaining());
    match tokio::time::timeout(limit, tokio::net::lookup_host(with_port)).await {
        Ok(Ok(mut addrs)) => addrs.next().is_some(),
        _ => false,
    }
}

fn unresolvable(host: &str, named: bool) -> Error {
    let mut hints = Vec::new();
    if named {
        hints.push(format!(
            "GCE_METADATA_HOST or GCE_METADATA_ROOT names `{host}`; unset it or fix the name"
        ));
    }
    hints.extend(off_cloud_hints());
    Error::Unreachable {
        endpoint: ENDPOINT,
        url: format!("http://{host}/"),
        reason: format!("the name `{host}` does not resolve"),
        hints,
    }
}

fn off_cloud_hints() -> Vec<String> {
    vec![
        "not on Google Cloud? use your own credentials: `idtok print-identity-token --audiences AUD`".into(),
        "or mint for a service account: `idtok impersonate --service-account SA --audience AUD`".into(),
    ]
}
