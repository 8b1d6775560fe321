//! The one HTTP client of idtok: built lazily (a cache hit needs none), with the deadline of `--timeout`
//! and the retry policy of SPEC.md section 4 for every endpoint: connect errors, 408, 429 and 5xx are
//! retried with exponential backoff from 100 ms while time remains; other statuses are final. A 429 or 503
//! with `Retry-After: SECS` waits that long instead, when it fits in the time that remains.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Client, Method, StatusCode, Url};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::log::Log;
use crate::token::{Secret, redact};

/// Bodies larger than this are refused: no Google endpoint answers with more.
const MAX_BODY: usize = 1 << 20;
/// Request headers whose values `-vv` shows in full; every other value is redacted.
const SAFE_HEADERS: [&str; 5] = [
    "Metadata-Flavor",
    "Content-Type",
    "Accept",
    "User-Agent",
    "X-aws-ec2-metadata-token-ttl-seconds",
];
/// The largest `SSL_CERT_FILE` read: a full CA bundle is a few hundred kilobytes.
const MAX_CERT_FILE: u64 = 16 << 20;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// The longest `Retry-After` honoured; a longer one (or one past the deadline) gets the usual backoff.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The metadata server: never through a proxy, plain http.
    Metadata,
    /// The metadata server's fallback IP: one attempt, connect timeout of 500 ms.
    MetadataFallback,
    /// Google APIs (and their stand-ins): the environment's proxy settings apply.
    Api,
}

pub enum Body {
    Empty,
    Form(Vec<(&'static str, String)>),
    Json(Value),
}

/// One request. Header values are secrets so that they are never logged.
pub struct Request {
    pub endpoint: &'static str,
    pub method: Method,
    pub url: Url,
    pub headers: Vec<(Cow<'static, str>, Secret)>,
    pub body: Body,
    pub route: Route,
}

impl Request {
    pub fn get(endpoint: &'static str, url: Url, route: Route) -> Request {
        Request {
            endpoint,
            method: Method::GET,
            url,
            headers: Vec::new(),
            body: Body::Empty,
            route,
        }
    }

    pub fn post(endpoint: &'static str, url: Url, body: Body) -> Request {
        Request {
            endpoint,
            method: Method::POST,
            url,
            headers: Vec::new(),
            body,
            route: Route::Api,
        }
    }

    pub fn header(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<String>,
    ) -> Request {
        self.headers.push((name.into(), Secret::new(value)));
        self
    }

    pub fn bearer(self, token: &Secret) -> Request {
        self.header("Authorization", format!("Bearer {}", token.expose()))
    }

    /// A failure of this request that no retry mends (exit 5).
    pub fn failed(&self, problem: String) -> Error {
        Error::Failed {
            endpoint: self.endpoint,
            url: self.url.to_string(),
            problem,
        }
    }
}

/// A response with a final status (2xx, or a 4xx other than 408/429).
pub struct Response {
    pub endpoint: &'static str,
    pub url: Url,
    pub status: StatusCode,
    pub body: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Response {
    /// Google's own explanation from an error body: AIP-193 `error.message` or OAuth2's
    /// `error: error_description`; else the body's first line, cut short.
    pub fn google_message(&self) -> String {
        google_message(&self.body)
    }

    /// The refusal as an error (exit 4), with Google's message and hints for the user.
    pub fn refused(&self, hints: Vec<String>) -> Error {
        self.refused_because(self.google_message(), hints)
    }

    /// The refusal as an error (exit 4), with a message of the fetcher's own.
    pub fn refused_because(&self, message: String, hints: Vec<String>) -> Error {
        Error::Refused {
            endpoint: self.endpoint,
            url: self.url.to_string(),
            status: self.status.as_u16(),
            message,
            hints,
        }
    }

    /// An answer that is not what the endpoint should give (exit 5).
    pub fn failed(&self, problem: String) -> Error {
        Error::Failed {
            endpoint: self.endpoint,
            url: self.url.to_string(),
            problem,
        }
    }

    /// The JSON body, or an error naming the endpoint (exit 5).
    pub fn json(&self) -> Result<Value> {
        serde_json::from_str(&self.body).map_err(|_| {
            self.failed(format!(
                "HTTP {} with a body that is not JSON",
                self.status.as_u16()
            ))
        })
    }

    /// A string field of a JSON body, or an error naming the field (exit 5).
    pub fn json_field(&self, field: &str) -> Result<Secret> {
        self.field_of(&self.json()?, field)
    }

    /// `json_field` of a body that `json` already parsed.
    pub fn field_of(&self, body: &Value, field: &str) -> Result<Secret> {
        match body.get(field).and_then(Value::as_str) {
            Some(value) if !value.is_empty() => Ok(Secret::new(value)),
            _ => Err(self.failed(format!("the response has no `{field}`"))),
        }
    }
}

pub fn google_message(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        if let Some(message) = v.pointer("/error/message").and_then(Value::as_str) {
            return message.to_string();
        }
        if let Some(code) = v.get("error").and_then(Value::as_str) {
            return match v.get("error_description").and_then(Value::as_str) {
                Some(desc) if !desc.is_empty() => format!("{code}: {desc}"),
                _ => code.to_string(),
            };
        }
    }
    let line = body.lines().next().unwrap_or("").trim();
    if line.starts_with("eyJ") || line.starts_with("ya29.") {
        return redact(line);
    }
    line.chars().take(200).collect()
}

pub struct Http {
    deadline: Instant,
    timeout: Duration,
    log: Log,
    ssl_cert_file: Option<std::path::PathBuf>,
    api: OnceCell<Client>,
    metadata: OnceCell<Client>,
    fallback: OnceCell<Client>,
}

impl Http {
    pub fn new(timeout: Duration, log: Log, ssl_cert_file: Option<std::path::PathBuf>) -> Http {
        Http::until(Instant::now() + timeout, timeout, log, ssl_cert_file)
    }

    /// A client whose deadline was set earlier (when the command started, `timeout` before `deadline`).
    pub fn until(
        deadline: Instant,
        timeout: Duration,
        log: Log,
        ssl_cert_file: Option<std::path::PathBuf>,
    ) -> Http {
        Http {
            deadline,
            timeout,
            log,
            ssl_cert_file,
            api: OnceCell::new(),
            metadata: OnceCell::new(),
            fallback: OnceCell::new(),
        }
    }

    pub fn log(&self) -> Log {
        self.log
    }

    /// What is left of the command's deadline.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    fn client(&self, route: Route) -> Result<&Client> {
        let cell = match route {
            Route::Api => &self.api,
            Route::Metadata => &self.metadata,
            Route::MetadataFallback => &self.fallback,
        };
        if let Some(client) = cell.get() {
            return Ok(client);
        }
        let client = build_client(route, self.ssl_cert_file.as_deref())?;
        Ok(cell.get_or_init(|| client))
    }

    /// Sends the request, retrying as the policy says, and returns the first final response.
    pub async fn send(&self, request: &Request) -> Result<Response> {
        let client = self.client(request.route)?;
        let retry = request.route != Route::MetadataFallback;
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1u32;
        loop {
            let remaining = self.remaining();
            if remaining.is_zero() {
                return Err(self.timed_out(request));
            }
            let started = Instant::now();
            let outcome = self.attempt(client, request, remaining).await;
            let elapsed = started.elapsed();
            let (retry_reason, delay) = match outcome {
                Ok(response) => {
                    let status = response.status;
                    self.log.info(|| {
                        format!(
                            "{} {} -> {} ({} ms)",
                            request.method,
                            request.url,
                            status.as_u16(),
                            elapsed.as_millis()
                        )
                    });
                    self.log
                        .debug(|| format_headers("response", response.headers.iter()));
                    if status.is_redirection() {
                        return Err(redirect_not_followed(request, &response));
                    }
                    if !retryable(status) {
                        return Ok(response);
                    }
                    let retry_after = retry_after(&response)
                        .filter(|wait| *wait <= MAX_RETRY_AFTER && *wait < self.remaining());
                    let delay = retry_after.map_or(backoff, |wait| wait.max(backoff));
                    if !retry || self.remaining() <= delay {
                        return Err(request.failed(format!(
                            "HTTP {} after {attempt} attempt{}: {}",
                            status.as_u16(),
                            if attempt == 1 { "" } else { "s" },
                            response.google_message()
                        )));
                    }
                    let reason = match retry_after {
                        Some(wait) => {
                            format!("HTTP {} (Retry-After: {})", status.as_u16(), wait.as_secs())
                        }
                        None => format!("HTTP {}", status.as_u16()),
                    };
                    (reason, delay)
                }
                Err(AttemptError::Final(e)) => return Err(e),
                Err(AttemptError::Transport(reason)) => {
                    self.log.info(|| {
                        format!(
                            "{} {} -> {reason} ({} ms)",
                            request.method,
                            request.url,
                            elapsed.as_millis()
                        )
                    });
                    if !retry || self.remaining() <= backoff {
                        if self.remaining().is_zero() {
                            return Err(self.timed_out(request));
                        }
                        return Err(Error::Unreachable {
                            endpoint: request.endpoint,
                            url: request.url.to_string(),
                            reason,
                            hints: Vec::new(),
                        });
                    }
                    (reason, backoff)
                }
            };
            self.log
                .info(|| format!("retrying in {} ms after {retry_reason}", delay.as_millis()));
            tokio::time::sleep(delay).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            attempt += 1;
        }
    }

    fn timed_out(&self, request: &Request) -> Error {
        Error::Unreachable {
            endpoint: request.endpoint,
            url: request.url.to_string(),
            reason: format!(
                "no answer within the deadline of {}s",
                self.timeout.as_secs_f64()
            ),
            hints: vec!["raise the deadline with --timeout SECS (or IDTOK_TIMEOUT)".into()],
        }
    }

    async fn attempt(
        &self,
        client: &Client,
        request: &Request,
        remaining: Duration,
    ) -> Result<Response, AttemptError> {
        let mut builder = client
            .request(request.method.clone(), request.url.clone())
            .timeout(remaining);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_ref(), value.expose());
        }
        builder = match &request.body {
            Body::Empty => builder,
            Body::Form(fields) => builder.form(fields),
            Body::Json(value) => builder.json(value),
        };
        if !request.headers.is_empty() {
            self.log.debug(|| {
                let shown = request.headers.iter().map(|(name, value)| {
                    // Only headers known to carry no secret are shown whole: a credential file's custom
                    // headers or an IMDSv2 session token must not reach the trace.
                    let value = if SAFE_HEADERS
                        .iter()
                        .any(|safe| name.eq_ignore_ascii_case(safe))
                    {
                        value.expose().to_string()
                    } else {
                        value.redacted()
                    };
                    format!("{name}: {value}")
                });
                format!("request headers: {}", shown.collect::<Vec<_>>().join(", "))
            });
        }
        let mut response = builder.send().await.map_err(|e| {
            if is_not_http(&e) {
                // Not a transient failure: a server that does not speak HTTP will not start on a retry.
                AttemptError::Final(request.failed(format!(
                    "the answer is not an HTTP response ({})",
                    describe(&e)
                )))
            } else {
                AttemptError::Transport(describe(&e))
            }
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_BODY {
                        return Err(AttemptError::Final(
                            request.failed(format!("the response is larger than {MAX_BODY} bytes")),
                        ));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(AttemptError::Transport(describe(&e))),
            }
        }
        let body = String::from_utf8(body).map_err(|_| {
            AttemptError::Final(request.failed(format!(
                "HTTP {} with a body that is not UTF-8",
                status.as_u16()
            )))
        })?;
        Ok(Response {
            endpoint: request.endpoint,
            url: request.url.clone(),
            status,
            body,
            headers,
        })
    }
}

/// A redirect that the policy stopped (another origin, or too many): final, naming where it pointed.
fn redirect_not_followed(request: &Request, response: &Response) -> Error {
    let location = response
        .headers
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| response.url.join(v).ok())
        .map(|u| u.to_string())
        .unwrap_or_else(|| "(no Location)".into());
    request.failed(format!(
        "HTTP {} redirect to {location}, not followed: idtok follows redirects only within the same \
         scheme, host and port (at most {MAX_REDIRECTS}); use the final URL",
        response.status.as_u16()
    ))
}

enum AttemptError {
    Transport(String),
    Final(Error),
}

/// The wait a 429 or 503 asks for with `Retry-After: SECS` (the HTTP-date form is not used by Google and
/// gets the usual backoff).
fn retry_after(response: &Response) -> Option<Duration> {
    if response.status != StatusCode::TOO_MANY_REQUESTS
        && response.status != StatusCode::SERVICE_UNAVAILABLE
    {
        return None;
    }
    let value = response
        .headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse::<u64>().ok().map(Duration::from_secs)
}

fn retryable(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
}

fn format_headers<'a>(
    what: &str,
    headers: impl Iterator<
        Item = (
            &'a reqwest::header::HeaderName,
            &'a reqwest::header::HeaderValue,
        ),
    >,
) -> String {
    let shown: Vec<String> = headers
        .map(|(name, value)| {
            let value = value.to_str().unwrap_or("(binary)");
            if name.as_str().eq_ignore_ascii_case("authorization")
                || name.as_str().eq_ignore_ascii_case("set-cookie")
            {
                format!("{name}: {}", redact(value))
            } else {
                format!("{name}: {value}")
            }
        })
        .collect();
    format!("{what} headers: {}", shown.join(", "))
}

/// Whether the server answered with something that is not HTTP/1 (hyper's parse errors).
fn is_not_http(e: &reqwest::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_parse)
        {
            return true;
        }
        cause = c.source();
    }
    false
}

/// A transport error in one line, with its innermost cause ("connection refused", "dns error", ...).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "transport error"
    };
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let cause = cause.to_string();
    // reqwest's own Display repeats the URL; the innermost cause is the useful part.
    if cause.is_empty() || cause == e.to_string() {
        kind.to_string()
    } else {
        format!("{kind}: {cause}")
    }
}

/// Redirects are followed only within the origin (scheme, host and port) of the request, at most
/// `MAX_REDIRECTS` times. A 307 or 308 re-sends the body (a signed assertion, a refresh token, a subject
/// token) and custom headers: to another origin that could be plain http on another machine, which
/// `require_secure` would have refused. Google's token, IAM and STS endpoints do not redirect.
const MAX_REDIRECTS: usize = 5;

fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if same_origin && attempt.previous().len() <= MAX_REDIRECTS {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

fn build_client(route: Route, ssl_cert_file: Option<&Path>) -> Result<Client> {
    let mut builder = Client::builder()
        .http1_only()
        .redirect(redirect_policy())
        .user_agent(concat!("idtok/", env!("CARGO_PKG_VERSION")));
    match route {
        Route::Api => {
            builder = builder.tls_backend_preconfigured(tls_config(ssl_cert_file)?);
        }
        // The metadata server speaks plain http, but reqwest still wants a TLS configuration.
        Route::Metadata => {
            builder = builder
                .tls_backend_preconfigured(tls_config(None)?)
                .no_proxy()
                .connect_timeout(Duration::from_secs(3));
        }
        Route::MetadataFallback => {
            builder = builder
                .tls_backend_preconfigured(tls_config(None)?)
                .no_proxy()
                .connect_timeout(Duration::from_millis(500));
        }
    }
    builder
        .build()
        .map_err(|e| Error::Bug(format!("cannot build the HTTP client: {e}")))
}

/// rustls on ring with the compiled-in web PKI roots, plus `SSL_CERT_FILE` when set.
fn tls_config(ssl_cert_file: Option<&Path>) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ssl_cert_file {
        let bad = |problem: String| {
            Error::CredentialFile {
            path: path.to_path_buf(),
            problem,
            hint: Some("SSL_CERT_FILE must name a PEM file of CA certificates; unset it to use the built-in roots".into()),
        }
        };
        // Read like a credential file: a FIFO is refused rather than waited on, and the size is bounded.
        let pem = match crate::fsutil::read_regular_limited(path, MAX_CERT_FILE) {
            Ok(Some(pem)) => pem,
            Ok(None) => {
                return Err(bad(
                    "cannot read certificates: the file does not exist".into()
                ));
            }
            Err(e) => return Err(bad(format!("cannot read certificates: {e}"))),
        };
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| bad(format!("not a PEM certificate: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| bad(format!("unusable certificate: {e}")))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Bug(format!("TLS set-up: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// Parses an endpoint URL from a credential file, an environment variable or a flag.
pub fn parse_url(value: &str, origin: &str) -> Result<Url> {
    let url = Url::parse(value).map_err(|_| Error::Unsupported {
        what: format!("{origin}: `{value}` is not a URL"),
        hint: None,
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Error::Unsupported {
            what: format!("{origin}: `{value}` is not an http(s) URL"),
            hint: None,
        });
    }
    Ok(url)
}

/// Refuses plain http for an endpoint that receives a secret, unless it stays on this machine
/// (loopback) or goes to the metadata server (SPEC.md section 3).
pub fn require_secure(url: &Url, purpose: &'static str, metadata_host: Option<&str>) -> Result<()> {
    if url.scheme() == "https" {
        return Ok(());
    }
    let host = url
        .host_str()
        .unwrap_or("")
        .trim_start_matches('[')
        .trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    let metadata = host.eq_ignore_ascii_case(crate::settings::DEFAULT_METADATA_HOST)
        || host == crate::settings::DEFAULT_METADATA_IP
        || metadata_host.is_some_and(|m| m.split(':').next() == Some(host) || m == host);
    if loopback || metadata {
        Ok(())
    } else {
        Err(Error::InsecureEndpoint {
            url: url.to_string(),
            purpose,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback_or_metadata() {
        let ok = |u: &str| require_secure(&Url::parse(u).unwrap(), "a token", None).is_ok();
        assert!(ok("https://oauth2.googleapis.com/token"));
        assert!(ok("http://127.0.0.1:8080/token"));
        assert!(ok("http://[::1]:8080/token"));
        assert!(ok("http://localhost/token"));
        assert!(ok("http://metadata.google.internal/x"));
        assert!(!ok("http://oauth2.googleapis.com/token"));
        assert!(!ok("http://10.0.0.1/token"));
    }

    #[test]
    fn retry_after_is_read_as_seconds_on_429_and_503_only() {
        let response = |status: u16, value: &str| {
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert(
                reqwest::header::RETRY_AFTER,
                reqwest::header::HeaderValue::from_str(value).unwrap(),
            );
            Response {
                endpoint: "test",
                url: Url::parse("http://127.0.0.1/").unwrap(),
                status: StatusCode::from_u16(status).unwrap(),
                body: String::new(),
                headers,
            }
        };
        assert_eq!(
            retry_after(&response(429, "1")),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            retry_after(&response(503, " 7 ")),
            Some(Duration::from_secs(7))
        );
        assert_eq!(retry_after(&response(500, "1")), None);
        assert_eq!(retry_after(&response(429, "-1")), None);
        assert_eq!(retry_after(&response(429, "1.5")), None);
        assert_eq!(
            retry_after(&response(429, "Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
        assert_eq!(retry_after(&response(429, "99999999999999999999999")), None);
    }

    #[test]
    fn google_messages_are_extracted() {
        assert_eq!(
            google_message(r#"{"error":{"code":403,"message":"Permission denied"}}"#),
            "Permission denied"
        );
        assert_eq!(
            google_message(r#"{"error":"invalid_grant","error_description":"Bad Request"}"#),
            "invalid_grant: Bad Request"
        );
        assert_eq!(google_message("plain text\nmore"), "plain text");
        assert!(
            !google_message("eyJhbGciOiJSUzI1NiJ9.eyJ.sig").contains("eyJhbGciOiJSUzI1NiJ9.eyJ")
        );
    }
}
