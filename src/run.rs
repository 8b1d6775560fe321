//! The one `match` over commands.

use std::time::{Duration, SystemTime};

use clap::CommandFactory;
use clap::error::ErrorKind;

use crate::cache::{self, Lookup, TokenCache};
use crate::cli::{Cli, Command, MetadataArgs, TokenFormat, TokenOptions};
use crate::credentials::metadata::MetadataCredential;
use crate::credentials::{Context, Credential, IdTokenRequest};
use crate::error::{Error, Result};
use crate::log::Log;
use crate::settings::Env;
use crate::sources::http::Http;
use crate::token::IdToken;
use crate::{decode, generate, output};

pub async fn run(cli: Cli) -> Result<()> {
    let env = Env::from_process();
    let log = Log::new(cli.verbose);
    match cli.command {
        Command::Metadata(args) => metadata(args, &env, log).await,
        Command::Impersonate(_) => Err(Error::Bug("`impersonate` is not implemented yet".into())),
        Command::PrintIdentityToken(_) => Err(Error::Bug(
            "`print-identity-token` is not implemented yet".into(),
        )),
        Command::Decode(args) => decode::run(args, &env, log).await,
        Command::Completions { shell } => output::emit(&generate::completions(shell)),
        Command::Man { command } => output::emit(&generate::man(command.as_deref())?),
    }
}

/// A usage error in clap's own format (exit 2), for flags that clap accepts alone but not together.
pub fn usage_error(message: impl std::fmt::Display) -> Error {
    Error::Usage(Cli::command().error(ErrorKind::ArgumentConflict, message))
}

async fn metadata(args: MetadataArgs, env: &Env, log: Log) -> Result<()> {
    if args.include_license && args.token_format != TokenFormat::Full {
        return Err(usage_error(
            "`--include-license` can only be specified when `--token-format=full`",
        ));
    }
    let credential = Credential::Metadata(MetadataCredential {
        service_account: args.service_account.clone(),
    });
    let request = IdTokenRequest {
        audience: Some(args.audience.clone()),
        include_email: false,
        format: Some(args.token_format),
        licenses: args.include_license,
    };
    let token = mint("metadata", &credential, &request, &args.token, env, log).await?;
    print_token(&token, &args.token)
}

/// A token for `command` (the subcommand's name, part of the cache key): from the token cache when an entry
/// stays valid for `--min-ttl`, else minted with the shared client and the command's deadline, then cached.
/// `--no-cache` neither reads nor writes. A cache hit builds no HTTP client.
async fn mint(
    command: &'static str,
    credential: &Credential,
    request: &IdTokenRequest,
    opts: &TokenOptions,
    env: &Env,
    log: Log,
) -> Result<IdToken> {
    let cache = if opts.no_cache {
        log.info(|| "token cache off (--no-cache / IDTOK_NO_CACHE)".into());
        None
    } else {
        TokenCache::open(env, log).map(|cache| {
            let key = cache::Key::new(command, &credential.identity(env), request);
            (cache, key)
        })
    };
    if let Some((cache, key)) = &cache
        && let Lookup::Hit(token) = cache.lookup(key, opts.min_ttl, SystemTime::now())
    {
        return Ok(token);
    }
    let token = mint_fresh(credential, request, opts, env, log).await?;
    if let Some((cache, key)) = &cache {
        cache.store(key, &token);
    }
    Ok(token)
}

async fn mint_fresh(
    credential: &Credential,
    request: &IdTokenRequest,
    opts: &TokenOptions,
    env: &Env,
    log: Log,
) -> Result<IdToken> {
    let http = Http::new(
        Duration::from_secs_f64(opts.timeout),
        log,
        env.ssl_cert_file.clone(),
    );
    let ctx = Context {
        http: &http,
        env,
        log,
    };
    credential.id_token(&ctx, request).await
}

fn print_token(token: &IdToken, opts: &TokenOptions) -> Result<()> {
    output::emit(output::render_token(token, opts.output, SystemTime::now()).as_bytes())
}
