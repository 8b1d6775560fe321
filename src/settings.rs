//! Everything the environment decides, read once at start-up so that no fetcher reads the environment.
//! Flags override these; clap handles the variables that belong to a flag (`env = ...` in cli.rs).

use std::ffi::OsString;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::token::Secret;

/// The environment variables idtok honours beyond those clap reads for flags.
#[derive(Debug, Default, Clone)]
pub struct Env {
    /// `GCE_METADATA_HOST`: the metadata server's `host[:port]`.
    pub gce_metadata_host: Option<String>,
    /// `GCE_METADATA_ROOT`: gcloud's name for the same.
    pub gce_metadata_root: Option<String>,
    /// `GCE_METADATA_IP`: tried once when `metadata.google.internal` does not resolve.
    pub gce_metadata_ip: Option<String>,
    /// `GOOGLE_APPLICATION_CREDENTIALS`.
    pub google_application_credentials: Option<PathBuf>,
    /// `CLOUDSDK_CONFIG`: gcloud's configuration directory.
    pub cloudsdk_config: Option<PathBuf>,
    /// `CLOUDSDK_CORE_ACCOUNT`.
    pub core_account: Option<String>,
    /// `CLOUDSDK_ACTIVE_CONFIG_NAME`: the gcloud configuration (commands without `--configuration`).
    pub active_config: Option<String>,
    /// `APPDATA` (Windows): where gcloud's directory lives there.
    pub appdata: Option<PathBuf>,
    /// `CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS`: base URL of IAM Credentials.
    pub iamcredentials_endpoint: Option<String>,
    /// `CLOUDSDK_AUTH_TOKEN_HOST`: the default OAuth2 token endpoint.
    pub token_host: Option<String>,
    /// `GOOGLE_CLOUD_UNIVERSE_DOMAIN`, else `CLOUDSDK_CORE_UNIVERSE_DOMAIN`.
    pub universe_domain: Option<String>,
    /// `GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1`.
    pub allow_executables: bool,
    /// `IDTOK_CACHE_DIR`.
    pub cache_dir: Option<PathBuf>,
    /// `SSL_CERT_FILE`: extra trust anchors (corporate TLS-inspecting proxies).
    pub ssl_cert_file: Option<PathBuf>,
    /// The user's home directory.
    pub home: Option<PathBuf>,
    /// `AWS_*`: region and credentials for an `external_account` file with an `aws` source.
    pub aws: AwsEnv,
    /// Text variables whose value is not UTF-8: read as unset above, refused by `check_text` (a
    /// `GCE_METADATA_HOST` that cannot be read must not quietly become `metadata.google.internal`).
    pub not_utf8: Vec<&'static str>,
}

/// The variables read as text (endpoints, names, keys); the others are paths and may be any bytes.
const TEXT_VARS: [&str; 15] = [
    "GCE_METADATA_HOST",
    "GCE_METADATA_ROOT",
    "GCE_METADATA_IP",
    "CLOUDSDK_CORE_ACCOUNT",
    "CLOUDSDK_ACTIVE_CONFIG_NAME",
    "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS",
    "CLOUDSDK_AUTH_TOKEN_HOST",
    "GOOGLE_CLOUD_UNIVERSE_DOMAIN",
    "CLOUDSDK_CORE_UNIVERSE_DOMAIN",
    "GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

impl Env {
    /// Reads the process environment. Empty values count as unset.
    pub fn from_process() -> Env {
        Env::from_lookup(|name| std::env::var_os(name))
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<OsString>) -> Env {
        let text = |name: &'static str| {
            debug_assert!(TEXT_VARS.contains(&name), "{name} is not in TEXT_VARS");
            get(name)
                .and_then(|v| v.into_string().ok())
                .filter(|v| !v.trim().is_empty())
        };
        let path = |name: &str| get(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        Env {
            gce_metadata_host: text("GCE_METADATA_HOST"),
            gce_metadata_root: text("GCE_METADATA_ROOT"),
            gce_metadata_ip: text("GCE_METADATA_IP"),
            google_application_credentials: path("GOOGLE_APPLICATION_CREDENTIALS"),
            cloudsdk_config: path("CLOUDSDK_CONFIG"),
            core_account: text("CLOUDSDK_CORE_ACCOUNT"),
            active_config: text("CLOUDSDK_ACTIVE_CONFIG_NAME"),
            appdata: path("APPDATA"),
            iamcredentials_endpoint: text("CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS"),
            token_host: text("CLOUDSDK_AUTH_TOKEN_HOST"),
            universe_domain: text("GOOGLE_CLOUD_UNIVERSE_DOMAIN")
                .or_else(|| text("CLOUDSDK_CORE_UNIVERSE_DOMAIN")),
            allow_executables: text("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES").as_deref()
                == Some("1"),
            cache_dir: path("IDTOK_CACHE_DIR"),
            ssl_cert_file: path("SSL_CERT_FILE"),
            home: dirs::home_dir(),
            aws: AwsEnv {
                region: text("AWS_REGION").or_else(|| text("AWS_DEFAULT_REGION")),
                access_key_id: text("AWS_ACCESS_KEY_ID"),
                secret_access_key: text("AWS_SECRET_ACCESS_KEY").map(Secret::new),
                session_token: text("AWS_SESSION_TOKEN").map(Secret::new),
            },
            not_utf8: TEXT_VARS
                .into_iter()
                .filter(|name| get(name).is_some_and(|v| v.to_str().is_none()))
                .collect(),
        }
    }

    /// Refuses a text variable whose value is not UTF-8 (exit 3, naming the variable, never the value).
    /// The token commands call this before anything else.
    pub fn check_text(&self) -> Result<()> {
        match self.not_utf8.as_slice() {
            [] => Ok(()),
            [name] => Err(Error::Unsupported {
                what: format!("the environment variable {name} is not valid UTF-8"),
                hint: Some(format!("set {name} to plain text, or unset it")),
            }),
            names => Err(Error::Unsupported {
                what: format!(
                    "the environment variables {} are not valid UTF-8",
                    names.join(", ")
                ),
                hint: Some("set them to plain text, or unset them".into()),
            }),
        }
    }

    /// The metadata server's `host[:port]` when the user named one (`GCE_METADATA_HOST`, else
    /// `GCE_METADATA_ROOT`); `None` means the default name with the IP fallback.
    pub fn metadata_host(&self) -> Option<&str> {
        self.gce_metadata_host
            .as_deref()
            .or(self.gce_metadata_root.as_deref())
    }

    /// The fallback address tried once when `metadata.google.internal` does not resolve.
    pub fn metadata_ip(&self) -> &str {
        self.gce_metadata_ip
            .as_deref()
            .unwrap_or(DEFAULT_METADATA_IP)
    }

    /// The universe domain from the environment, else `googleapis.com`.
    pub fn universe(&self) -> &str {
        self.universe_domain.as_deref().unwrap_or(DEFAULT_UNIVERSE)
    }

    /// The OAuth2 token endpoint used when a credential names none.
    pub fn default_token_uri(&self) -> String {
        match &self.token_host {
            Some(host) => host.clone(),
            None => DEFAULT_TOKEN_URI.to_string(),
        }
    }

    /// The IAM Credentials base URL (no trailing slash) for a credential of this universe.
    pub fn iam_base(&self, credential_universe: Option<&str>) -> String {
        match &self.iamcredentials_endpoint {
            Some(base) => base.trim_end_matches('/').to_string(),
            None => format!(
                "https://iamcredentials.{}",
                credential_universe.unwrap_or(self.universe())
            ),
        }
    }
}

/// The AWS environment of an `external_account` file with an `aws` credential source, as google-auth's
/// `aws.py` reads it.
#[derive(Debug, Default, Clone)]
pub struct AwsEnv {
    /// `AWS_REGION`, else `AWS_DEFAULT_REGION`.
    pub region: Option<String>,
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<Secret>,
    /// `AWS_SESSION_TOKEN`.
    pub session_token: Option<Secret>,
}

pub const DEFAULT_METADATA_HOST: &str = "metadata.google.internal";
pub const DEFAULT_METADATA_IP: &str = "169.254.169.254";
pub const DEFAULT_UNIVERSE: &str = "googleapis.com";
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// The STS token endpoint of an `external_account` file that names none, in the credential's universe.
pub const DEFAULT_STS_TOKEN_URL: &str = "https://sts.{universe}/v1/token";
/// gcloud's OAuth client id: the audience `gcloud auth print-identity-token` uses when none is given.
pub const GCLOUD_CLIENT_ID: &str = "32555940559.apps.googleusercontent.com";

/// The key set (JWKS) of the RS256 ID tokens Google signs; `decode --verify` uses it by default for RS256.
/// <https://developers.google.com/identity/openid-connect/openid-connect#validatinganidtoken>
pub const GOOGLE_JWKS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";
/// The key set (JWKS) of Identity-Aware Proxy's ES256 assertions; the default for ES256.
/// <https://cloud.google.com/iap/docs/signed-headers-howto>
pub const IAP_JWKS_URL: &str = "https://www.gstatic.com/iap/verify/public_key-jwk";
/// The `iss` of Google's ID tokens: both spellings occur.
pub const GOOGLE_ISSUERS: [&str; 2] = ["accounts.google.com", "https://accounts.google.com"];
/// The `iss` of IAP's signed headers (`x-goog-iap-jwt-assertion`).
pub const IAP_ISSUER: &str = "https://cloud.google.com/iap";

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Env::from_lookup(|name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| OsString::from(v))
        })
    }

    #[test]
    fn metadata_host_prefers_gce_metadata_host() {
        let e = env(&[("GCE_METADATA_HOST", "a:1"), ("GCE_METADATA_ROOT", "b:2")]);
        assert_eq!(e.metadata_host(), Some("a:1"));
        assert_eq!(
            env(&[("GCE_METADATA_ROOT", "b:2")]).metadata_host(),
            Some("b:2")
        );
        assert_eq!(env(&[("GCE_METADATA_HOST", " ")]).metadata_host(), None);
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_text_variables_are_named_not_unset() {
        use std::os::unix::ffi::OsStringExt;
        let bad = || OsString::from_vec(vec![b'h', 0xff, b'x']);
        let e = Env::from_lookup(|name| match name {
            "GCE_METADATA_HOST" | "AWS_SECRET_ACCESS_KEY" => Some(bad()),
            // A path may be any bytes.
            "GOOGLE_APPLICATION_CREDENTIALS" => Some(bad()),
            _ => None,
        });
        assert_eq!(e.not_utf8, ["GCE_METADATA_HOST", "AWS_SECRET_ACCESS_KEY"]);
        let message = e.check_text().unwrap_err().to_string();
        assert!(
            message.contains("GCE_METADATA_HOST, AWS_SECRET_ACCESS_KEY"),
            "{message}"
        );
        assert!(e.google_application_credentials.is_some());
        assert!(env(&[("GCE_METADATA_HOST", "a:1")]).check_text().is_ok());
    }

    #[test]
    fn iam_base_follows_override_then_universe() {
        let e = env(&[(
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS",
            "http://127.0.0.1:9/",
        )]);
        assert_eq!(e.iam_base(Some("x.com")), "http://127.0.0.1:9");
        let e = env(&[("GOOGLE_CLOUD_UNIVERSE_DOMAIN", "u.example")]);
        assert_eq!(e.iam_base(None), "https://iamcredentials.u.example");
        assert_eq!(
            e.iam_base(Some("c.example")),
            "https://iamcredentials.c.example"
        );
    }
}
