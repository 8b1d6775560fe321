//! The one `match` over commands.

use std::time::{Duration, Instant, SystemTime};

use clap::CommandFactory;
use clap::error::ErrorKind;

use crate::cache::{self, Lookup, TokenCache};
use crate::cli::{
    Cli, Command, ImpersonateArgs, MetadataArgs, PrintIdentityTokenArgs, TokenFormat, TokenOptions,
};
use crate::credentials::chain::{self, ChainRequest};
use crate::credentials::impersonated::{Impersonation, parse_chain};
use crate::credentials::metadata::MetadataCredential;
use crate::credentials::{Context, Credential, IdTokenRequest};
use crate::error::{Error, Result};
use crate::log::Log;
use crate::settings::Env;
use crate::sources::http::Http;
use crate::token::IdToken;
use crate::{decode, generate, output};

pub async fn run(cli: Cli) -> Result<()> {
    // `--timeout` is the whole command's deadline: it starts now, before the credential chain is read.
    let started = Instant::now();
    let env = Env::from_process();
    let log = Log::new(cli.verbose);
    if matches!(
        cli.command,
        Command::Metadata(_) | Command::Impersonate(_) | Command::PrintIdentityToken(_)
    ) {
        env.check_text()?;
    }
    match cli.command {
        Command::Metadata(args) => metadata(args, &env, log, started).await,
        Command::Impersonate(args) => impersonate(args, &env, log, started).await,
        Command::PrintIdentityToken(args) => print_identity_token(args, &env, log, started).await,
        Command::Decode(args) => decode::run(args, &env, log).await,
        Command::Completions { shell } => output::emit(&generate::completions(shell)),
        Command::Man { command } => output::emit(&generate::man(command.as_deref())?),
    }
}

/// A usage error in clap's own format (exit 2), for flags that clap accepts alone but not together.
pub fn usage_error(message: impl std::fmt::Display) -> Error {
    Error::Usage(Cli::command().error(ErrorKind::ArgumentConflict, message))
}

async fn metadata(args: MetadataArgs, env: &Env, log: Log, started: Instant) -> Result<()> {
    check_license(args.include_license, Some(args.token_format))?;
    let credential = Credential::Metadata(MetadataCredential::new(args.service_account.clone()));
    let request = IdTokenRequest {
        audience: Some(args.audience.clone()),
        include_email: false,
        format: Some(args.token_format),
        licenses: args.include_license,
    };
    let deadline = deadline(started, &args.token);
    deliver(
        "metadata",
        &credential,
        &request,
        &args.token,
        env,
        log,
        deadline,
    )
    .await
}

/// `impersonate`: the chain's credential is the caller; generateIdToken on the target, directly.
async fn impersonate(args: ImpersonateArgs, env: &Env, log: Log, started: Instant) -> Result<()> {
    let deadline = deadline(started, &args.token);
    let mut env = env.clone();
    let found = chain::find(
        &ChainRequest {
            credential_file_override: args.credentials.credential_file_override.as_deref(),
            account: None,
            configuration: None,
            deadline: Some(deadline),
        },
        &mut env,
        log,
    )?;
    let env = &env;
    let mut impersonation = Impersonation::new(
        found.credential,
        &args.service_account,
        &args.delegates,
        None,
        env,
    )?;
    impersonation.allow_self = args.allow_self_impersonation;
    let request = IdTokenRequest {
        audience: Some(args.audience.clone()),
        include_email: args.include_email,
        format: None,
        licenses: false,
    };
    let credential = Credential::Impersonated(impersonation);
    deliver(
        "impersonate",
        &credential,
        &request,
        &args.token,
        env,
        log,
        deadline,
    )
    .await
}

/// `print-identity-token`: gcloud's flags with gcloud's meaning, over every credential type.
async fn print_identity_token(
    args: PrintIdentityTokenArgs,
    env: &Env,
    log: Log,
    started: Instant,
) -> Result<()> {
    check_license(args.include_license, args.token_format)?;
    let deadline = deadline(started, &args.token);
    let mut env = env.clone();
    let found = chain::find(
        &ChainRequest {
            credential_file_override: args.credentials.credential_file_override.as_deref(),
            account: given(&args.account),
            configuration: given(&args.configuration),
            deadline: Some(deadline),
        },
        &mut env,
        log,
    )?;
    let env = &env;
    // --impersonate-service-account (or its variable), else `[auth] impersonate_service_account`.
    let chain_spec = match given(&args.impersonate_service_account) {
        Some(value) => Some((
            value.to_string(),
            "--impersonate-service-account/CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT".to_string(),
        )),
        None => found.configuration.as_ref().and_then(|c| {
            c.get("auth", "impersonate_service_account").map(|v| {
                (
                    v.to_string(),
                    format!(
                        "[auth] impersonate_service_account of the configuration `{}`",
                        c.name
                    ),
                )
            })
        }),
    };
    let mut credential = match chain_spec {
        Some((value, from)) => {
            let Some((target, delegates)) = parse_chain(&value) else {
                return Err(usage_error(format!("{from} names no service account")));
            };
            log.info(|| format!("impersonating {target} (from {from})"));
            Credential::Impersonated(Impersonation::new(
                found.credential,
                &target,
                &delegates,
                None,
                env,
            )?)
        }
        None => found.credential,
    };
    if let Credential::Impersonated(impersonation) = &mut credential {
        impersonation.allow_self = args.allow_self_impersonation;
    }
    if (args.token_format.is_some() || args.include_license) && !credential.is_metadata() {
        return Err(usage_error(
            "Invalid account type for `--token-format` or `--include-license`. Requires a valid GCE service account.",
        ));
    }
    let request = IdTokenRequest {
        audience: given(&args.audiences).map(str::to_string),
        include_email: args.include_email,
        format: args.token_format,
        licenses: args.include_license,
    };
    deliver(
        "print-identity-token",
        &credential,
        &request,
        &args.token,
        env,
        log,
        deadline,
    )
    .await
}

/// A flag or variable's value, with an empty one counting as not given (`CLOUDSDK_CORE_ACCOUNT=` in gcloud).
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.trim().is_empty())
}

/// gcloud's rule: `--include-license` only with `--token-format=full` (a usage error otherwise).
fn check_license(include_license: bool, format: Option<TokenFormat>) -> Result<()> {
    if include_license && format != Some(TokenFormat::Full) {
        return Err(usage_error(
            "`--include-license` can only be specified when `--token-format=full`",
        ));
    }
    Ok(())
}

/// The command's deadline: `--timeout` after it started.
fn deadline(started: Instant, opts: &TokenOptions) -> Instant {
    started + Duration::from_secs_f64(opts.timeout)
}

/// A token for `command` (the subcommand's name, part of the cache key), printed as `-o` asks: from the token
/// cache when an entry stays valid for `--min-ttl`, else minted with the shared client before `deadline`,
/// then cached. `--no-cache` neither reads nor writes. A cache hit builds no HTTP client.
async fn deliver(
    command: &'static str,
    credential: &Credential,
    request: &IdTokenRequest,
    opts: &TokenOptions,
    env: &Env,
    log: Log,
    deadline: Instant,
) -> Result<()> {
    let cache = if opts.no_cache {
        log.info(|| "token cache off (--no-cache / IDTOK_NO_CACHE)".into());
        None
    } else if let Some(identity) = credential.identity(env) {
        TokenCache::open(env, log).map(|cache| {
            let key = cache::Key::new(command, &identity, request);
            (cache, key)
        })
    } else {
        log.info(|| {
            "token cache not used: a federated subject token from a URL, an executable or AWS is only \
             known after fetching it, and a cached token must not outlive the caller it was minted for"
                .into()
        });
        None
    };
    let token = match cache
        .as_ref()
        .map(|(cache, key)| cache.lookup(key, opts.min_ttl, SystemTime::now()))
    {
        Some(Lookup::Hit(token)) => token,
        _ => {
            let token = mint(credential, request, opts, env, log, deadline).await?;
            if let Some((cache, key)) = &cache {
                cache.store(key, &token);
            }
            token
        }
    };
    output::emit(output::render_token(&token, opts.output, SystemTime::now()).as_bytes())
}

/// Mints a fresh token with the shared client, built here and only here (a cache hit needs none).
async fn mint(
    credential: &Credential,
    request: &IdTokenRequest,
    opts: &TokenOptions,
    env: &Env,
    log: Log,
    deadline: Instant,
) -> Result<IdToken> {
    let timeout = Duration::from_secs_f64(opts.timeout);
    let http = Http::until(deadline, timeout, log, env.ssl_cert_file.clone());
    let ctx = Context {
        http: &http,
        env,
        log,
    };
    credential.id_token(&ctx, request).await
}
