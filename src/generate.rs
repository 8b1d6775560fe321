//! Shell completions and man pages, generated from the one clap definition (`idtok completions SHELL`,
//! `idtok man [COMMAND]`). The committed copies under `completions/` and `man/` are checked by a test.

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::{Error, Result};

pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    let mut out = Vec::new();
    // Rendered into memory: clap_complete panics on a broken pipe when writing to stdout directly.
    clap_complete::generate(shell, &mut Cli::command(), "idtok", &mut out);
    out
}

pub fn man(command: Option<&str>) -> Result<Vec<u8>> {
    let root = Cli::command();
    let mut out = Vec::new();
    let render_err = |e: std::io::Error| Error::Bug(format!("cannot render the man page: {e}"));
    match command {
        None => {
            clap_mangen::Man::new(root)
                .render(&mut out)
                .map_err(render_err)?;
            out.extend_from_slice(EXTRA_SECTIONS.as_bytes());
        }
        Some(name) => {
            let mut root = root;
            root.build();
            let sub = root
                .get_subcommands()
                .find(|c| c.get_name() == name && !c.is_hide_set())
                .ok_or_else(|| Error::Unsupported {
                    what: format!("no command `{name}`"),
                    hint: None,
                })?
                .clone();
            let sub = sub
                .display_name(format!("idtok-{name}"))
                .bin_name(format!("idtok {name}"))
                .version(env!("CARGO_PKG_VERSION"));
            clap_mangen::Man::new(sub)
                .render(&mut out)
                .map_err(render_err)?;
        }
    }
    Ok(out)
}

const EXTRA_SECTIONS: &str = r#".SH "CREDENTIAL CHAIN"
\fBimpersonate\fR and \fBprint\-identity\-token\fR use the first of: \fB\-\-credential\-file\-override\fR
(CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE); GOOGLE_APPLICATION_CREDENTIALS (passed over when an ACCOUNT is
named); the gcloud account (ACCOUNT, CLOUDSDK_CORE_ACCOUNT, or the active configuration) from credentials.db;
the application default credentials file; the metadata server. \fB\-v\fR says which step won and why each
earlier one was passed over.
.SH ENVIRONMENT
.TP
\fBGCE_METADATA_HOST\fR, \fBGCE_METADATA_ROOT\fR
The metadata server's host[:port] (default metadata.google.internal).
.TP
\fBGCE_METADATA_IP\fR
Tried once when metadata.google.internal does not resolve (default 169.254.169.254).
.TP
\fBGOOGLE_APPLICATION_CREDENTIALS\fR
A credential file.
.TP
\fBCLOUDSDK_CONFIG\fR
gcloud's configuration directory (default ~/.config/gcloud).
.TP
\fBCLOUDSDK_CORE_ACCOUNT\fR, \fBCLOUDSDK_ACTIVE_CONFIG_NAME\fR, \fBCLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT\fR
As in gcloud.
.TP
\fBCLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS\fR
Base URL of the IAM Credentials API.
.TP
\fBCLOUDSDK_AUTH_TOKEN_HOST\fR
The default OAuth2 token endpoint.
.TP
\fBGOOGLE_CLOUD_UNIVERSE_DOMAIN\fR
The universe domain (default googleapis.com).
.TP
\fBGOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES\fR
Set to 1 to let an external_account file run its credential_source executable.
.TP
\fBAWS_REGION\fR, \fBAWS_DEFAULT_REGION\fR, \fBAWS_ACCESS_KEY_ID\fR, \fBAWS_SECRET_ACCESS_KEY\fR, \fBAWS_SESSION_TOKEN\fR
Region and credentials for an external_account file with an aws source (else the instance metadata service).
.TP
\fBIDTOK_OUTPUT\fR, \fBIDTOK_NO_CACHE\fR, \fBIDTOK_MIN_TTL\fR, \fBIDTOK_TIMEOUT\fR, \fBIDTOK_JWKS_URL\fR
Defaults of the flags of the same name.
.TP
\fBIDTOK_CACHE_DIR\fR
Where tokens are cached (default the platform cache directory's idtok/).
.TP
\fBSSL_CERT_FILE\fR
Extra CA certificates (PEM) trusted beside the built-in roots.
.SH "EXIT STATUS"
.TP
0
success
.TP
1
an unexpected failure (a bug)
.TP
2
usage error
.TP
3
no usable credentials, or a credential file or configuration is invalid or unsafe
.TP
4
an endpoint refused the request (permission denied, invalid grant, unknown account)
.TP
5
an endpoint could not be reached, timed out, or failed after retries
.TP
6
decode: the token is malformed, a claim is missing, or verification failed
"#;
