//! The credential chain of SPEC.md section 3, in order; `-v` says which step won and why each earlier one was
//! passed over.
//!
//! 1. `--credential-file-override` / `CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE`
//! 2. `GOOGLE_APPLICATION_CREDENTIALS` (a missing or unreadable file is an error, not a skip). Passed over
//!    when `ACCOUNT` is given on the command line: the user picked a gcloud account, and gcloud itself
//!    never reads this variable.
//! 3. the gcloud account (`ACCOUNT`, `CLOUDSDK_CORE_ACCOUNT`, `[core] account` of the active
//!    configuration) from `credentials.db`. An account without credentials is an error (as in gcloud);
//!    no account at all moves on.
//! 4. the application default credentials file in gcloud's directory
//! 5. the metadata server, chosen without probing (see `metadata.rs` for what happens when it does not
//!    answer).

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::gcloud::{self, Configuration};
use super::metadata::MetadataCredential;
use super::{Credential, Origin, file};
use crate::error::{Error, Result};
use crate::log::Log;
use crate::settings::Env;

pub const OVERRIDE: &str = "--credential-file-override/CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE";
pub const GAC: &str = "GOOGLE_APPLICATION_CREDENTIALS";
pub const ADC_FILE: &str = "application_default_credentials.json";

/// What the command line says about where to look.
#[derive(Debug, Default, Clone, Copy)]
pub struct ChainRequest<'a> {
    /// `--credential-file-override` (clap also reads CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE).
    pub credential_file_override: Option<&'a Path>,
    /// `print-identity-token ACCOUNT`.
    pub account: Option<&'a str>,
    /// `--configuration` (clap also reads CLOUDSDK_ACTIVE_CONFIG_NAME).
    pub configuration: Option<&'a str>,
    /// The command's deadline (`--timeout` from its start): bounds the wait for a locked `credentials.db`.
    pub deadline: Option<Instant>,
}

/// The credential the chain found, and the active gcloud configuration (for `[auth]` properties).
#[derive(Debug)]
pub struct Found {
    pub credential: Credential,
    pub configuration: Option<Configuration>,
}

/// Walks the chain. The active configuration's properties fill in what the environment leaves unset
/// (gcloud's order: flag, then `CLOUDSDK_SECTION_NAME`, then the configuration), so `env` may change.
pub fn find(req: &ChainRequest<'_>, env: &mut Env, log: Log) -> Result<Found> {
    let dir = gcloud::config_dir(env);
    let explicit_config = req.configuration.or(env.active_config.as_deref());
    let configuration = match &dir {
        Some(dir) => Some(Configuration::active(dir, explicit_config)?),
        None => None,
    };
    if let Some(configuration) = &configuration {
        configuration.apply(env, log);
    }
    let env: &Env = env;
    let found = |credential: Credential| {
        log.info(|| {
            let principal = credential
                .principal()
                .map(|p| format!(" for {p}"))
                .unwrap_or_default();
            format!("credentials: {}{principal}", credential.kind())
        });
        Ok(Found {
            credential,
            configuration: configuration.clone(),
        })
    };
    let mut passed_over: Vec<String> = Vec::new();
    let mut pass = |reason: String| {
        log.info(|| format!("credential chain: passed over {reason}"));
        passed_over.push(reason);
    };

    // 1. The override.
    if let Some(path) = req.credential_file_override {
        log.info(|| {
            format!(
                "credential chain: using {} (from {OVERRIDE})",
                path.display()
            )
        });
        let origin = Origin::File {
            path: path.to_path_buf(),
            named_by: "CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE",
        };
        return found(file::load_path(origin, env, req.deadline)?);
    }
    pass(format!("{OVERRIDE}: not set"));

    // 2. GOOGLE_APPLICATION_CREDENTIALS.
    match (&env.google_application_credentials, req.account) {
        (Some(_), Some(account)) => pass(format!(
            "{GAC}: the ACCOUNT argument ({account}) picks a gcloud account"
        )),
        (Some(path), None) => {
            log.info(|| format!("credential chain: using {} (from {GAC})", path.display()));
            let origin = Origin::File {
                path: path.clone(),
                named_by: GAC,
            };
            return found(file::load_path(origin, env, req.deadline)?);
        }
        (None, _) => pass(format!("{GAC}: not set")),
    }

    // 3. The gcloud account.
    let account = match (req.account, &env.core_account, &configuration) {
        (Some(account), _, _) => Some((account.to_string(), "the ACCOUNT argument".to_string())),
        (None, Some(account), _) => Some((account.clone(), "CLOUDSDK_CORE_ACCOUNT".to_string())),
        (None, None, Some(config)) => config.get("core", "account").map(|account| {
            (
                account.to_string(),
                format!("[core] account of the configuration `{}`", config.name),
            )
        }),
        (None, None, None) => None,
    };
    match (account, &dir) {
        (Some((account, chosen_by)), Some(dir)) => {
            // The environment's, else the configuration's (`apply` above filled it in).
            let universe = env.universe_domain.as_deref();
            let db = dir.join("credentials.db");
            log.info(|| {
                format!(
                    "credential chain: gcloud account {account} (from {chosen_by}), reading {}",
                    db.display()
                )
            });
            let stored = if file::exists(&db) {
                gcloud::read_credential(&db, &account, universe, req.deadline)?
            } else {
                None
            };
            let Some(bytes) = stored else {
                return Err(no_account_credentials(&db, &account, &chosen_by));
            };
            let origin = Origin::Gcloud {
                db,
                account: account.clone(),
            };
            let mut credential = file::load_bytes(&bytes, &origin, env)?;
            if let Credential::Metadata(metadata) = &mut credential
                && metadata.principal.is_none()
            {
                metadata.principal = Some(account);
            }
            return found(credential);
        }
        (Some((account, _)), None) => {
            return Err(Error::Unsupported {
                what: format!(
                    "the gcloud account {account} was asked for, but gcloud's directory is unknown (no home directory)"
                ),
                hint: Some("set CLOUDSDK_CONFIG to gcloud's configuration directory".into()),
            });
        }
        (None, _) => {
            let config = configuration
                .as_ref()
                .map(|c| format!(" in the configuration `{}`", c.name))
                .unwrap_or_default();
            pass(format!(
                "the gcloud account: none (no ACCOUNT argument, CLOUDSDK_CORE_ACCOUNT not set, no [core] account{config})"
            ));
        }
    }

    // 4. The application default credentials file.
    match &dir {
        Some(dir) => {
            let path = dir.join(ADC_FILE);
            if file::exists(&path) {
                log.info(|| format!("credential chain: using {}", path.display()));
                return found(file::load_path(Origin::Adc { path }, env, req.deadline)?);
            }
            pass(format!("{}: does not exist", path.display()));
        }
        None => pass(format!("{ADC_FILE}: no home directory to look in")),
    }

    // 5. The metadata server, without probing.
    log.info(|| "credential chain: using the metadata server (nothing else is configured)".into());
    let mut credential = MetadataCredential::new("default");
    credential.last_resort = Some(passed_over);
    found(Credential::Metadata(credential))
}

fn no_account_credentials(db: &Path, account: &str, chosen_by: &str) -> Error {
    let absent = if file::exists(db) {
        ""
    } else {
        " (the database does not exist)"
    };
    Error::CredentialFile {
        path: PathBuf::from(db),
        problem: format!(
            "the gcloud account {account} (from {chosen_by}) has no credentials{absent}"
        ),
        hint: Some(format!(
            "log in: `gcloud auth login {account}` (a service account: `gcloud auth activate-service-account \
             {account} --key-file KEY.json`), or pick another account"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// gcloud's order for `[core] universe_domain` is the environment, then the configuration: the
    /// account's key in `credentials.db` (`email#universe`) follows the same order as everything else.
    #[test]
    fn the_environment_universe_wins_over_the_configuration_for_the_account_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("configurations")).unwrap();
        std::fs::write(
            dir.path().join("configurations/config_default"),
            "[core]\naccount = me@example.com\nuniverse_domain = config.example\n",
        )
        .unwrap();
        let db = rusqlite::Connection::open(dir.path().join("credentials.db")).unwrap();
        db.execute_batch(
            "CREATE TABLE credentials (account_id TEXT PRIMARY KEY, value BLOB);
             INSERT INTO credentials VALUES
               ('me@example.com#env.example', '{\"type\": \"gce\"}');",
        )
        .unwrap();
        drop(db);
        let mut env = Env {
            cloudsdk_config: Some(dir.path().to_path_buf()),
            universe_domain: Some("env.example".into()),
            ..Env::default()
        };
        let found = find(&ChainRequest::default(), &mut env, Log::default()).unwrap();
        assert!(found.credential.is_metadata());
        assert_eq!(env.universe_domain.as_deref(), Some("env.example"));
    }
}
