//! The `executable` credential source of an `external_account` file ("pluggable auth"): a command that
//! prints the subject token as JSON. Run only when `GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1`, without
//! a shell (the command is split on whitespace, as google-auth does), with a timeout, and with the
//! documented `GOOGLE_EXTERNAL_ACCOUNT_*` variables in its environment. Its `output_file` is a cache the
//! executable writes; idtok only reads it.
//! <https://google.aip.dev/auth/4117#determining-the-subject-token-in-executable-sourced-credentials>

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::log::Log;
use crate::token::{Secret, redact};

pub const DEFAULT_TIMEOUT_MILLIS: u64 = 30_000;
pub const MIN_TIMEOUT_MILLIS: u64 = 5_000;
pub const MAX_TIMEOUT_MILLIS: u64 = 120_000;
/// The newest version of the executable response format idtok understands.
pub const SUPPORTED_VERSION: u64 = 1;
/// More output than this is not a token response.
const MAX_OUTPUT: u64 = 1 << 20;

const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";
const SAML2_TYPE: &str = "urn:ietf:params:oauth:token-type:saml2";

/// `credential_source.executable`.
#[derive(Debug, Clone)]
pub struct Executable {
    /// The command line as written in the file.
    pub command: String,
    pub timeout: Duration,
    pub output_file: Option<PathBuf>,
}

/// What the executable is told through its environment.
pub struct ExecContext<'a> {
    /// The credential file, named in errors.
    pub credential_file: &'a Path,
    pub audience: &'a str,
    pub subject_token_type: &'a str,
    pub impersonated_email: Option<&'a str>,
    pub allowed: bool,
    pub log: Log,
    /// What is left of the command's `--timeout`: the executable gets no longer, whatever `timeout_millis`
    /// says.
    pub remaining: Duration,
}

impl Executable {
    /// Parses `credential_source.executable`; `bad` turns a problem into the credential file's error.
    pub fn parse(value: &Value, bad: &dyn Fn(String) -> Error) -> Result<Executable> {
        let command = match value.get("command") {
            Some(Value::String(c)) if !c.trim().is_empty() => c.clone(),
            Some(Value::String(_)) | None => {
                return Err(bad(
                    "field `credential_source.executable.command` is missing".into(),
                ));
            }
            Some(_) => {
                return Err(bad(
                    "field `credential_source.executable.command` is not a string".into(),
                ));
            }
        };
        let millis = match value.get("timeout_millis") {
            None | Some(Value::Null) => DEFAULT_TIMEOUT_MILLIS,
            Some(v) => match v.as_u64() {
                Some(m) if (MIN_TIMEOUT_MILLIS..=MAX_TIMEOUT_MILLIS).contains(&m) => m,
                _ => {
                    return Err(bad(format!(
                        "field `credential_source.executable.timeout_millis` must be a number from {MIN_TIMEOUT_MILLIS} \
                         to {MAX_TIMEOUT_MILLIS} (5 to 120 seconds)"
                    )));
                }
            },
        };
        let output_file = match value.get("output_file") {
            None | Some(Value::Null) => None,
            Some(Value::String(p)) if !p.is_empty() => Some(PathBuf::from(p)),
            Some(_) => {
                return Err(bad(
                    "field `credential_source.executable.output_file` is not a file name".into(),
                ));
            }
        };
        Ok(Executable {
            command,
            timeout: Duration::from_millis(millis),
            output_file,
        })
    }

    /// The program, without its arguments: what messages name.
    pub fn program(&self) -> &str {
        self.command.split_whitespace().next().unwrap_or("")
    }

    /// The subject token: from an unexpired cached response in `output_file`, else by running the command.
    pub async fn subject_token(&self, ctx: &ExecContext<'_>) -> Result<Secret> {
        let fail = |problem: String, hint: Option<String>| Error::CredentialFile {
            path: ctx.credential_file.to_path_buf(),
            problem,
            hint,
        };
        if !ctx.allowed {
            return Err(fail(
                format!(
                    "the subject token comes from running the executable `{}` (credential_source.executable), \
                     and executables run only when GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1",
                    self.program()
                ),
                Some(
                    "if you trust this command, run with GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1 \
                     (the Google auth libraries require the same)"
                        .into(),
                ),
            ));
        }
        if let Some(path) = &self.output_file
            && let Some(token) = self.cached(path, ctx.log)
        {
            return Ok(token);
        }

        let output = self.run(ctx).await?;
        let text = if output.trim().is_empty() {
            // An executable may write its response only to the output file.
            match &self.output_file {
                Some(path) => crate::fsutil::read_regular_limited(path, MAX_OUTPUT)
                    .ok()
                    .flatten()
                    .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                    .unwrap_or_default(),
                None => String::new(),
            }
        } else {
            output
        };
        if text.trim().is_empty() {
            return Err(fail(
                format!("the executable `{}` printed nothing", self.program()),
                Some(
                    "it must print a JSON response: {\"version\": 1, \"success\": true, ...}"
                        .into(),
                ),
            ));
        }
        let response: Value = serde_json::from_str(&text).map_err(|_| {
            fail(
                format!(
                    "the executable `{}` printed something that is not JSON",
                    self.program()
                ),
                Some(
                    "it must print a JSON response: {\"version\": 1, \"success\": true, ...}"
                        .into(),
                ),
            )
        })?;
        parse_response(&response, self.output_file.is_some(), now_secs()).map_err(|problem| {
            fail(
                format!("the executable `{}`: {problem}", self.program()),
                None,
            )
        })
    }

    /// A successful, unexpired response in the output file, if there is one; anything else means running
    /// the executable (as google-auth does).
    fn cached(&self, path: &Path, log: Log) -> Option<Secret> {
        let bytes = crate::fsutil::read_regular_limited(path, MAX_OUTPUT).ok()??;
        let response: Value = serde_json::from_slice(&bytes).ok()?;
        // A cached response without an expiry is never trusted (google-auth treats it as expired).
        response.get("expiration_time").and_then(Value::as_i64)?;
        match parse_response(&response, true, now_secs()) {
            Ok(token) => {
                log.info(|| {
                    format!(
                        "subject token from the executable's cached response in {} (not running it)",
                        path.display()
                    )
                });
                Some(token)
            }
            Err(problem) => {
                log.info(|| format!("not using {}: {problem}", path.display()));
                None
            }
        }
    }

    /// Runs the command and returns what it printed on stdout, within the timeout.
    async fn run(&self, ctx: &ExecContext<'_>) -> Result<String> {
        let fail = |problem: String| Error::CredentialFile {
            path: ctx.credential_file.to_path_buf(),
            problem,
            hint: None,
        };
        let mut words = self.command.split_whitespace();
        let program = words.next().unwrap_or("");
        let mut command = Command::new(program);
        command
            .args(words)
            .env("GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE", ctx.audience)
            .env("GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE", ctx.subject_token_type)
            .env("GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(email) = ctx.impersonated_email {
            command.env("GOOGLE_EXTERNAL_ACCOUNT_IMPERSONATED_EMAIL", email);
        }
        if let Some(path) = &self.output_file {
            command.env("GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE", path);
        }
        ctx.log.info(|| {
            format!(
                "running the credential executable `{program}` (timeout {} ms)",
                self.timeout.as_millis()
            )
        });
        let started = Instant::now();
        let limit = self.timeout.min(ctx.remaining);
        let mut child = command
            .spawn()
            .map_err(|e| fail(format!("cannot run the executable `{program}`: {e}")))?;
        let stdout = collect(child.stdout.take());
        let stderr = collect(child.stderr.take());
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if started.elapsed() >= limit => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let (which, hint) = if limit < self.timeout {
                        (
                            "the command's deadline (--timeout)",
                            "raise the deadline with --timeout SECS (or IDTOK_TIMEOUT)",
                        )
                    } else {
                        (
                            "timeout_millis",
                            "raise credential_source.executable.timeout_millis (at most 120000)",
                        )
                    };
                    return Err(Error::Unreachable {
                        endpoint: "credential executable",
                        url: program.to_string(),
                        reason: format!(
                            "killed after {} ms without an answer ({which})",
                            limit.as_millis()
                        ),
                        hints: vec![format!("{hint}, or check why the command hangs")],
                    });
                }
                Ok(None) => tokio::time::sleep(Duration::from_millis(10)).await,
                Err(e) => {
                    return Err(fail(format!(
                        "cannot wait for the executable `{program}`: {e}"
                    )));
                }
            }
        };
        // The pipes close when the command exits, unless it left a process behind that holds them.
        let grace = Duration::from_millis(500);
        let stdout = stdout.recv_timeout(grace).unwrap_or_default();
        let stderr = stderr.recv_timeout(grace).unwrap_or_default();
        ctx.log.info(|| {
            format!(
                "the executable `{program}` exited with {status} after {} ms",
                started.elapsed().as_millis()
            )
        });
        if !status.success() {
            let said = last_line(&stderr).or_else(|| last_line(&stdout));
            return Err(fail(format!(
                "the executable `{program}` failed ({status}){}",
                said.map(|s| format!(": {s}")).unwrap_or_default()
            )));
        }
        Ok(stdout)
    }
}

/// Reads a pipe to its end on a thread; the text arrives on the channel.
fn collect<R: Read + Send + 'static>(pipe: Option<R>) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    if let Some(pipe) = pipe {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.take(MAX_OUTPUT).read_to_end(&mut bytes);
            let _ = tx.send(String::from_utf8_lossy(&bytes).into_owned());
        });
    }
    rx
}

/// The last non-empty line, cut short, with anything that looks like a token redacted.
fn last_line(text: &str) -> Option<String> {
    let line = text.lines().rev().map(str::trim).find(|l| !l.is_empty())?;
    if line.contains("eyJ") || line.contains("ya29.") {
        return Some(redact(line));
    }
    Some(line.chars().take(200).collect())
}

/// Now in epoch seconds, signed like the response's `expiration_time`.
fn now_secs() -> i64 {
    i64::try_from(crate::token::unix_secs(SystemTime::now())).unwrap_or(i64::MAX)
}

/// The subject token of an executable response, or what is wrong with the response (never its token).
pub fn parse_response(response: &Value, has_output_file: bool, now: i64) -> Result<Secret, String> {
    if !response.is_object() {
        return Err("the response is not a JSON object".into());
    }
    let version = response
        .get("version")
        .ok_or("the response has no `version`")?
        .as_u64()
        .ok_or("the response's `version` is not a number")?;
    if version > SUPPORTED_VERSION {
        return Err(format!(
            "the response has version {version}; idtok supports version {SUPPORTED_VERSION}"
        ));
    }
    let success = response
        .get("success")
        .ok_or("the response has no `success`")?
        .as_bool()
        .ok_or("the response's `success` is not true or false")?;
    if !success {
        let code = response.get("code").and_then(Value::as_str);
        let message = response.get("message").and_then(Value::as_str);
        return Err(match (code, message) {
            (Some(code), Some(message)) => {
                format!("it reported failure: code {code}: {message}")
            }
            _ => "it reported failure without the required `code` and `message`".into(),
        });
    }
    match response.get("expiration_time") {
        Some(Value::Number(n)) => {
            let expires = n
                .as_i64()
                .ok_or("the response's `expiration_time` is not a number")?;
            if expires < now {
                return Err(format!(
                    "the token it returned is expired (expiration_time {expires} is {}s in the past)",
                    now - expires
                ));
            }
        }
        None | Some(Value::Null) if has_output_file => {
            return Err(
                "the response has no `expiration_time`, which is required when the credential has an output_file"
                    .into(),
            );
        }
        None | Some(Value::Null) => {}
        Some(_) => return Err("the response's `expiration_time` is not a number".into()),
    }
    let token_type = response
        .get("token_type")
        .and_then(Value::as_str)
        .ok_or("the response has no `token_type`")?;
    let field = match token_type {
        JWT_TYPE | ID_TOKEN_TYPE => "id_token",
        SAML2_TYPE => "saml_response",
        other => {
            return Err(format!(
                "the response has the unsupported token_type `{other}`"
            ));
        }
    };
    match response.get(field).and_then(Value::as_str) {
        Some(token) if !token.is_empty() => Ok(Secret::new(token)),
        _ => Err(format!("the response has no `{field}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn responses() {
        let ok = json!({"version": 1, "success": true, "token_type": JWT_TYPE, "id_token": "t",
                        "expiration_time": 200});
        assert_eq!(parse_response(&ok, true, 100).unwrap().expose(), "t");
        assert!(
            parse_response(&ok, true, 300)
                .unwrap_err()
                .contains("expired")
        );
        let saml =
            json!({"version": 1, "success": true, "token_type": SAML2_TYPE, "saml_response": "s"});
        assert_eq!(parse_response(&saml, false, 0).unwrap().expose(), "s");
        assert!(
            parse_response(&saml, true, 0)
                .unwrap_err()
                .contains("expiration_time")
        );
        let failed = json!({"version": 1, "success": false, "code": "401", "message": "Caller not authorized."});
        assert_eq!(
            parse_response(&failed, false, 0).unwrap_err(),
            "it reported failure: code 401: Caller not authorized."
        );
        let v2 = json!({"version": 2, "success": true});
        assert!(
            parse_response(&v2, false, 0)
                .unwrap_err()
                .contains("version 2")
        );
        let odd = json!({"version": 1, "success": true, "token_type": "x"});
        assert!(
            parse_response(&odd, false, 0)
                .unwrap_err()
                .contains("unsupported token_type")
        );
    }

    #[test]
    fn timeouts_are_bounded() {
        let bad = |p: String| Error::Bug(p);
        let parse = |v: Value| Executable::parse(&v, &bad);
        assert_eq!(
            parse(json!({"command": "x"})).unwrap().timeout,
            Duration::from_millis(30_000)
        );
        assert!(parse(json!({"command": "x", "timeout_millis": 4999})).is_err());
        assert!(parse(json!({"command": "x", "timeout_millis": 120_001})).is_err());
        assert!(parse(json!({"command": " "})).is_err());
    }
}
