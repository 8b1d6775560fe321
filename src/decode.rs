//! `idtok decode`: read a token, show it for people or scripts.

use crate::cli::DecodeArgs;
use crate::error::{Error, Result};
use crate::log::Log;
use crate::settings::Env;

pub async fn run(_args: DecodeArgs, _env: &Env, _log: Log) -> Result<()> {
    Err(Error::Bug("decode is not implemented yet".into()))
}
