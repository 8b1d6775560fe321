//! The command line, as one clap definition: help, completions and the man page all come from here.

use std::path::PathBuf;

use clap::builder::FalseyValueParser;
use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

/// Print, decode and verify Google-signed OpenID Connect ID tokens.
///
/// Tokens come from the metadata server, IAM impersonation, or any credential gcloud or the Google
/// auth libraries would use, without gcloud installed. stdout carries only the product; diagnostics
/// go to stderr.
#[derive(Debug, Parser)]
#[command(
    name = "idtok",
    version,
    disable_help_subcommand = true,
    max_term_width = 100
)]
#[command(
    after_help = "Exit codes: 0 success, 1 bug, 2 usage, 3 credentials, 4 refused, 5 unreachable, 6 bad token."
)]
pub struct Cli {
    /// Explain to stderr which credentials were chosen and every request sent (-vv adds headers).
    /// Secrets are redacted.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print an ID token from the metadata server (Compute Engine, Cloud Run, GKE, Cloud Functions).
    Metadata(MetadataArgs),
    /// Print an ID token for a service account through IAM Credentials generateIdToken.
    Impersonate(ImpersonateArgs),
    /// Print an ID token from the active credentials, as `gcloud auth print-identity-token` does.
    PrintIdentityToken(PrintIdentityTokenArgs),
    /// Show a token's header and claims, and optionally verify it against Google's keys.
    Decode(DecodeArgs),
    /// Print a shell completion script.
    #[command(hide = true)]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): idtok(1), or idtok-COMMAND(1) for one subcommand.
    #[command(hide = true)]
    Man { command: Option<String> },
}

const METADATA_ENV: &str = "\
Environment:
  GCE_METADATA_HOST  the metadata server's host[:port] (default metadata.google.internal)
  GCE_METADATA_ROOT  the same, used when GCE_METADATA_HOST is unset
  GCE_METADATA_IP    tried once when the default name does not resolve (default 169.254.169.254)";

const CHAIN_ENV: &str = "\
Credentials, the first found:
  1. --credential-file-override (CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE)
  2. GOOGLE_APPLICATION_CREDENTIALS
  3. the gcloud account: ACCOUNT (print-identity-token), CLOUDSDK_CORE_ACCOUNT, or the configuration's
  4. application_default_credentials.json (gcloud's directory: CLOUDSDK_CONFIG, ~/.config/gcloud)
  5. the metadata server (GCE_METADATA_HOST)
Endpoints: CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS, CLOUDSDK_AUTH_TOKEN_HOST,
  GOOGLE_CLOUD_UNIVERSE_DOMAIN";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputMode {
    /// The token and a newline.
    Token,
    /// `Authorization: Bearer <token>` and a newline.
    Header,
    /// One JSON object with the token, its expiry, audience, email, subject and source.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TokenFormat {
    /// Without email and instance claims.
    Standard,
    /// With `email`, `email_verified` and, on Compute Engine, `google.compute_engine`.
    Full,
}

impl TokenFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenFormat::Standard => "standard",
            TokenFormat::Full => "full",
        }
    }
}

/// Options shared by the three token commands.
#[derive(Debug, Args)]
pub struct TokenOptions {
    /// What to print.
    #[arg(short, long, value_enum, env = "IDTOK_OUTPUT", default_value = "token")]
    pub output: OutputMode,

    /// Neither read nor write the token cache.
    #[arg(long, env = "IDTOK_NO_CACHE", value_parser = FalseyValueParser::new())]
    pub no_cache: bool,

    /// Reuse a cached token only while it stays valid at least this many seconds.
    #[arg(
        long,
        value_name = "SECS",
        env = "IDTOK_MIN_TTL",
        default_value_t = 300
    )]
    pub min_ttl: u64,

    /// The whole command's deadline in seconds, retries included.
    #[arg(long, value_name = "SECS", env = "IDTOK_TIMEOUT", default_value_t = 30.0,
          value_parser = parse_timeout)]
    pub timeout: f64,
}

/// Options of the commands that walk the credential chain.
#[derive(Debug, Args)]
pub struct CredentialOptions {
    /// Use this credential file and skip the rest of the credential chain.
    #[arg(
        long,
        value_name = "FILE",
        env = "CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE"
    )]
    pub credential_file_override: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(after_help = METADATA_ENV)]
pub struct MetadataArgs {
    /// The audience (`aud`) of the token: the receiving service's URL or client id.
    #[arg(long, visible_alias = "audiences", value_name = "AUD")]
    pub audience: String,

    /// `full` adds email and instance claims.
    #[arg(long, value_enum, default_value = "standard")]
    pub token_format: TokenFormat,

    /// Include the instance's license codes (needs --token-format full).
    #[arg(long)]
    pub include_license: bool,

    /// The service account of the instance: `default` or its email.
    #[arg(long, value_name = "default|EMAIL", default_value = "default")]
    pub service_account: String,

    #[command(flatten)]
    pub token: TokenOptions,
}

#[derive(Debug, Args)]
#[command(after_help = CHAIN_ENV)]
pub struct ImpersonateArgs {
    /// The service account whose ID token to print.
    #[arg(long, value_name = "EMAIL")]
    pub service_account: String,

    /// The audience (`aud`) of the token: the receiving service's URL or client id.
    #[arg(long, visible_alias = "audiences", value_name = "AUD")]
    pub audience: String,

    /// Put `email` and `email_verified` claims in the token.
    #[arg(long)]
    pub include_email: bool,

    /// The delegation chain, from the caller towards the target.
    #[arg(long, value_name = "EMAIL", value_delimiter = ',')]
    pub delegates: Vec<String>,

    /// Proceed (with a warning) when the caller is the target service account itself.
    #[arg(long)]
    pub allow_self_impersonation: bool,

    #[command(flatten)]
    pub credentials: CredentialOptions,

    #[command(flatten)]
    pub token: TokenOptions,
}

#[derive(Debug, Args)]
#[command(after_help = CHAIN_ENV)]
pub struct PrintIdentityTokenArgs {
    /// The gcloud account (email) whose credentials to use.
    #[arg(value_name = "ACCOUNT")]
    pub account: Option<String>,

    /// The audience (`aud`); default gcloud's client id, or a user login's own client id.
    #[arg(long, visible_alias = "audience", value_name = "AUD")]
    pub audiences: Option<String>,

    /// Put `email` and `email_verified` claims in the token.
    #[arg(long)]
    pub include_email: bool,

    /// Metadata server only: `full` adds email and instance claims.
    #[arg(long, value_enum)]
    pub token_format: Option<TokenFormat>,

    /// Metadata server only: include license codes (needs --token-format full).
    #[arg(long)]
    pub include_license: bool,

    /// Impersonate this service account; with a comma list the last is the target, the others delegates.
    #[arg(
        long,
        value_name = "SA[,SA...]",
        env = "CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT"
    )]
    pub impersonate_service_account: Option<String>,

    /// The gcloud configuration to read the account and impersonation from.
    #[arg(long, value_name = "NAME", env = "CLOUDSDK_ACTIVE_CONFIG_NAME")]
    pub configuration: Option<String>,

    /// Proceed (with a warning) when the caller is the target service account itself.
    #[arg(long)]
    pub allow_self_impersonation: bool,

    #[command(flatten)]
    pub credentials: CredentialOptions,

    #[command(flatten)]
    pub token: TokenOptions,
}

#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// The token: a JWT, `Bearer <jwt>`, or a header line such as `Authorization: Bearer <jwt>`, with
    /// whitespace or quotes around it; `-` or absent reads stdin (at most 64 KiB).
    #[arg(value_name = "TOKEN|-")]
    pub token: Option<String>,

    /// Print `{"header": ..., "payload": ...}` on one line and nothing else.
    #[arg(long, conflicts_with = "claim")]
    pub json: bool,

    /// Print this claim's value alone on a line: strings bare, other values as compact JSON
    /// (repeatable). A name starting with `/` is a JSON pointer: `/google/compute_engine/zone`. A
    /// missing claim is exit 6 and prints nothing.
    #[arg(long, value_name = "NAME")]
    pub claim: Vec<String>,

    /// Verify the algorithm (RS256 or ES256 only), the signature, iss, exp/nbf/iat and the aud and
    /// email asked for; prints nothing unless every check passes, else exit 6 naming the first that
    /// failed.
    #[arg(long)]
    pub verify: bool,

    /// With --verify: the audience the token must carry.
    #[arg(
        long,
        visible_alias = "audiences",
        value_name = "AUD",
        requires = "verify"
    )]
    pub audience: Option<String>,

    /// With --verify: the email the token must carry, with email_verified true.
    #[arg(long, value_name = "EMAIL", requires = "verify")]
    pub email: Option<String>,

    /// With --verify: accept exactly this iss instead of Google's (accounts.google.com or
    /// https://accounts.google.com; for ES256 IAP assertions https://cloud.google.com/iap).
    #[arg(long, value_name = "ISS", requires = "verify")]
    pub issuer: Option<String>,

    /// With --verify: fetch the key set (JWKS) from this URL instead of Google's, which is picked by
    /// the token's alg: RS256 https://www.googleapis.com/oauth2/v3/certs, ES256
    /// https://www.gstatic.com/iap/verify/public_key-jwk. Fetched key sets are cached while their
    /// Cache-Control max-age allows.
    #[arg(long, value_name = "URL", env = "IDTOK_JWKS_URL")]
    pub jwks_url: Option<String>,

    /// With --verify: read the key set (JWKS) from this file, offline; wins over --jwks-url. A file
    /// that is not a key set is exit 3.
    #[arg(long, value_name = "FILE", requires = "verify")]
    pub jwks: Option<PathBuf>,

    /// With --verify: seconds of clock difference tolerated on exp, nbf and iat.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub clock_skew: u64,

    /// With --verify: the whole command's deadline in seconds when fetching keys.
    #[arg(long, value_name = "SECS", env = "IDTOK_TIMEOUT", default_value_t = 30.0,
          value_parser = parse_timeout)]
    pub timeout: f64,
}

fn parse_timeout(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if v.is_finite() && v > 0.0 && v <= 86_400.0 {
        Ok(v)
    } else {
        Err("must be more than 0 and at most 86400 seconds".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
