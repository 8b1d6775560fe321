//! The one error type: every failure carries its context, its hints and its exit code (SPEC.md section 4).
//! This is the only place where exit numbers live.

use std::fmt;
use std::path::PathBuf;

use crate::token::TokenError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Exit codes of SPEC.md section 4 (success is `ExitCode::SUCCESS` in `main`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Bug = 1,
    Usage = 2,
    Credentials = 3,
    Refused = 4,
    Unreachable = 5,
    Token = 6,
}

#[derive(Debug)]
pub enum Error {
    /// Flags that clap accepts one by one but that do not go together (exit 2, clap's own format).
    Usage(clap::Error),
    /// Nothing in the credential chain yielded credentials.
    NoCredentials { passed_over: Vec<String> },
    /// A credential or configuration file that cannot be used. `problem` names the field, never its value.
    CredentialFile {
        path: PathBuf,
        problem: String,
        hint: Option<String>,
    },
    /// A credential or configuration that is understood but cannot give what was asked.
    Unsupported { what: String, hint: Option<String> },
    /// An endpoint that would receive a secret over plain http to a host that is neither loopback nor metadata.
    InsecureEndpoint { url: String, purpose: &'static str },
    /// The caller would impersonate itself without `--allow-self-impersonation`.
    SelfImpersonation { email: String, audience: String },
    /// An endpoint answered with a final 4xx.
    Refused {
        endpoint: &'static str,
        url: String,
        status: u16,
        message: String,
        hints: Vec<String>,
    },
    /// An endpoint could not be reached or timed out, after retries.
    Unreachable {
        endpoint: &'static str,
        url: String,
        reason: String,
        hints: Vec<String>,
    },
    /// An endpoint kept failing with 5xx, or answered 200 with something that is not what it should be.
    Failed {
        endpoint: &'static str,
        url: String,
        problem: String,
    },
    /// `decode`: the input is not a JWT.
    Malformed(TokenError),
    /// `decode --claim`: the claim is absent.
    MissingClaim(String),
    /// `decode --verify`: the first check that failed.
    Verify { check: &'static str, detail: String },
    /// Reading input or a local file failed.
    Io {
        what: String,
        source: std::io::Error,
    },
    /// A failure that should not happen: a bug.
    Bug(String),
}

impl Error {
    pub fn exit(&self) -> Exit {
        match self {
            Error::Usage(_) => Exit::Usage,
            Error::NoCredentials { .. }
            | Error::CredentialFile { .. }
            | Error::Unsupported { .. }
            | Error::InsecureEndpoint { .. }
            | Error::SelfImpersonation { .. } => Exit::Credentials,
            Error::Refused { .. } => Exit::Refused,
            Error::Unreachable { .. } | Error::Failed { .. } => Exit::Unreachable,
            Error::Malformed(_) | Error::MissingClaim(_) | Error::Verify { .. } => Exit::Token,
            Error::Io { .. } | Error::Bug(_) => Exit::Bug,
        }
    }

    /// The hints of a 403 refusal, for a caller that knows better why permission was denied.
    pub fn forbidden_hints(&mut self) -> Option<&mut Vec<String>> {
        match self {
            Error::Refused {
                status: 403, hints, ..
            } => Some(hints),
            _ => None,
        }
    }

    /// The lines printed after the error as `hint: ...`: the exact next step.
    pub fn hints(&self) -> Vec<String> {
        match self {
            Error::NoCredentials { .. } => vec![
                "log in with `gcloud auth login`, or `gcloud auth application-default login`".into(),
                "or point GOOGLE_APPLICATION_CREDENTIALS at a credential file".into(),
                "on Google Cloud, check that the metadata server answers: `idtok metadata --audience AUD -v`".into(),
            ],
            Error::CredentialFile { hint, .. } | Error::Unsupported { hint, .. } => hint.iter().cloned().collect(),
            Error::InsecureEndpoint { .. } => {
                vec!["use an https:// URL; plain http is allowed only for loopback addresses and the metadata server".into()]
            }
            Error::SelfImpersonation { audience, .. } => vec![
                format!("the same token is available directly: `idtok print-identity-token --audiences {audience}`"),
                "or pass --allow-self-impersonation to proceed anyway".into(),
            ],
            Error::Refused { hints, .. } | Error::Unreachable { hints, .. } => hints.clone(),
            Error::Malformed(TokenError::AccessToken) => {
                vec!["an access token is opaque; print an ID token with `idtok print-identity-token`".into()]
            }
            Error::Verify { check: "audience", .. } => {
                vec!["the audience must be exactly the URL or client id the receiving service expects".into()]
            }
            Error::Verify { check: "key", .. } => vec![format!(
                "verify with the key set that signed the token: --jwks-url URL or --jwks FILE \
                 (Google ID tokens: {}; IAP: {})",
                crate::settings::GOOGLE_JWKS_URL,
                crate::settings::IAP_JWKS_URL
            )],
            Error::Verify { check: "issuer", .. } => {
                vec!["to accept another issuer, name it with --issuer ISS".into()]
            }
            Error::Verify { check: "expiry", .. } => vec![
                "mint a fresh token; if the clocks disagree, allow more with --clock-skew SECS".into(),
            ],
            Error::Verify {
                check: "not-before" | "issued-at",
                ..
            } => vec![
                "check this machine's clock (`date -u`), or allow more with --clock-skew SECS".into(),
            ],
            Error::Bug(_) => vec!["this is a bug in idtok; please report it with the output of `-vv`".into()],
            _ => Vec::new(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(e) => write!(f, "{}", e.to_string().trim_end()),
            Error::NoCredentials { passed_over } => {
                write!(f, "no credentials found")?;
                if !passed_over.is_empty() {
                    write!(f, " ({})", passed_over.join("; "))?;
                }
                Ok(())
            }
            Error::CredentialFile { path, problem, .. } => {
                write!(f, "{}: {problem}", path.display())
            }
            Error::Unsupported { what, .. } => write!(f, "{what}"),
            Error::InsecureEndpoint { url, purpose } => {
                write!(f, "refusing to send {purpose} over plain http to {url}")
            }
            Error::SelfImpersonation { email, .. } => write!(
                f,
                "refusing to impersonate {email} with its own credentials: Google treats a service account that \
                 can mint tokens for itself as a security vulnerability"
            ),
            Error::Refused {
                endpoint,
                url,
                status,
                message,
                ..
            } => {
                write!(f, "{endpoint} refused the request ({url}: HTTP {status})")?;
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                Ok(())
            }
            Error::Unreachable {
                endpoint,
                url,
                reason,
                ..
            } => write!(f, "{endpoint} unreachable ({url}): {reason}"),
            Error::Failed {
                endpoint,
                url,
                problem,
            } => write!(f, "{endpoint} failed ({url}): {problem}"),
            Error::Malformed(e) => write!(f, "{e}"),
            Error::MissingClaim(name) => write!(f, "the token has no claim `{name}`"),
            Error::Verify { check, detail } => write!(f, "verification failed: {check}: {detail}"),
            Error::Io { what, source } => write!(f, "{what}: {source}"),
            Error::Bug(message) => write!(f, "internal error (a bug): {message}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<TokenError> for Error {
    fn from(e: TokenError) -> Self {
        Error::Malformed(e)
    }
}
