//! Everything a token command does is bounded: a FIFO nobody writes to reads as empty at once, a pipe that
//! never finishes gives up at the deadline, other files that are not regular files are refused up front,
//! and `--timeout` is one deadline for the whole command.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use crate::support::*;

/// The longest any of these commands may run before the test calls it hung.
const HUNG: Duration = Duration::from_secs(15);

/// A FIFO that nobody ever writes to: opening it for reading blocks until a writer comes.
#[cfg(unix)]
fn fifo(env: &TestEnv, name: &str) -> PathBuf {
    let path = env.path().join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    let status = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .expect("mkfifo");
    assert!(status.success());
    path
}

/// Runs a token command expected to refuse `file` with exit 3, and returns stderr.
fn refused_as_not_regular(mut cmd: assert_cmd::Command, file: &Path) -> String {
    let out = cmd.timeout(HUNG).assert();
    let output = out.get_output();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(3), "stderr: {stderr}");
    assert!(output.stdout.is_empty());
    assert!(stderr.starts_with("idtok: error: "), "{stderr}");
    assert!(stderr.contains(&file.display().to_string()), "{stderr}");
    assert!(stderr.contains("not a regular file"), "{stderr}");
    stderr
}

/// Runs a token command whose credential file is a FIFO nobody writes to: it reads as empty at once (exit 3
/// naming the file), rather than waiting for a writer.
fn empty_pipe_is_refused(mut cmd: assert_cmd::Command, file: &Path) -> String {
    let out = cmd.timeout(HUNG).assert();
    let output = out.get_output();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(3), "stderr: {stderr}");
    assert!(output.stdout.is_empty());
    assert!(stderr.starts_with("idtok: error: "), "{stderr}");
    assert!(stderr.contains(&file.display().to_string()), "{stderr}");
    assert!(stderr.contains("the file is empty"), "{stderr}");
    stderr
}

#[cfg(unix)]
#[test]
fn a_fifo_as_google_application_credentials_is_not_waited_on() {
    let env = TestEnv::new();
    let path = fifo(&env, "creds.json");
    let mut cmd = env.cmd();
    cmd.args(["print-identity-token", "--no-cache"])
        .env("GOOGLE_APPLICATION_CREDENTIALS", &path);
    let stderr = empty_pipe_is_refused(cmd, &path);
    assert!(
        stderr.contains("GOOGLE_APPLICATION_CREDENTIALS"),
        "{stderr}"
    );
}

#[cfg(unix)]
#[test]
fn a_fifo_as_credential_file_override_is_not_waited_on() {
    let env = TestEnv::new();
    let path = fifo(&env, "creds.json");
    let mut cmd = env.cmd();
    cmd.args(["impersonate", "--no-cache", "--audience", "a"])
        .args(["--service-account", "t@p.iam.gserviceaccount.com"])
        .arg("--credential-file-override")
        .arg(&path);
    empty_pipe_is_refused(cmd, &path);
}

#[cfg(unix)]
#[test]
fn a_fifo_as_the_application_default_credentials_is_not_waited_on() {
    let env = TestEnv::new();
    let path = fifo(&env, "gcloud/application_default_credentials.json");
    let mut cmd = env.cmd();
    cmd.args(["print-identity-token", "--no-cache"]);
    empty_pipe_is_refused(cmd, &path);
}

#[cfg(unix)]
#[test]
fn a_key_piped_in_as_the_credential_file_is_read() {
    // `--credential-file-override <(vault read ...)` or `/dev/stdin`: the key never touches the disk.
    let env = TestEnv::new();
    let server = httpmock::MockServer::start();
    let token = google_id_token("https://svc", json!({"email": SA_EMAIL}));
    let mock = server.mock(|when, then| {
        when.method(httpmock::Method::POST).path("/token");
        then.status(200).json_body(json!({ "id_token": token }));
    });
    let key = sa_key(&server.url("/token")).to_string();
    env.cmd()
        .args([
            "print-identity-token",
            "--no-cache",
            "--audiences",
            "https://svc",
        ])
        .args(["--credential-file-override", "/dev/stdin"])
        .write_stdin(key)
        .timeout(HUNG)
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    mock.assert();
}

#[cfg(unix)]
#[test]
fn a_pipe_whose_writer_never_finishes_ends_within_the_timeout() {
    let env = TestEnv::new();
    let mut child = env
        .std_cmd()
        .args(["print-identity-token", "--no-cache", "--timeout", "1"])
        .args(["--credential-file-override", "/dev/stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Hold the pipe open without writing; the command must give up on its own.
    let stdin = child.stdin.take();
    let started = std::time::Instant::now();
    let output = loop {
        if let Some(_status) = child.try_wait().unwrap() {
            break child.wait_with_output().unwrap();
        }
        assert!(started.elapsed() < HUNG, "idtok hung on a silent pipe");
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(stdin);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(output.stdout.is_empty());
    assert!(
        stderr.contains("nothing more was written to it within --timeout"),
        "{stderr}"
    );
}

#[cfg(unix)]
#[test]
fn a_fifo_as_the_gcloud_configuration_is_refused_not_waited_on() {
    let env = TestEnv::new();
    let path = fifo(&env, "gcloud/configurations/config_default");
    let mut cmd = env.cmd();
    cmd.args(["print-identity-token", "--no-cache"]);
    refused_as_not_regular(cmd, &path);
}

#[cfg(unix)]
#[test]
fn a_fifo_as_credentials_db_is_refused_not_waited_on() {
    let env = TestEnv::new();
    let path = fifo(&env, "gcloud/credentials.db");
    let mut cmd = env.cmd();
    cmd.args(["print-identity-token", "--no-cache", "me@example.com"]);
    refused_as_not_regular(cmd, &path);
}

#[cfg(unix)]
#[test]
fn a_fifo_as_the_subject_token_file_is_refused_not_waited_on() {
    let env = TestEnv::new();
    let token_file = fifo(&env, "subject-token");
    let file = env.write_json(
        "wif.json",
        &json!({
            "type": "external_account",
            "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q",
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": "http://127.0.0.1:9/v1/token",
            "service_account_impersonation_url":
                format!("http://127.0.0.1:9/v1/projects/-/serviceAccounts/{TARGET}:generateAccessToken"),
            "credential_source": {"file": token_file},
        }),
    );
    let mut cmd = env.cmd();
    cmd.args(["print-identity-token", "--no-cache", "--timeout", "2"])
        .arg("--credential-file-override")
        .arg(&file);
    let stderr = refused_as_not_regular(cmd, &token_file);
    assert!(stderr.contains("credential_source.file"), "{stderr}");
}

/// A directory or a device is no credential file either; said as such, not as invalid JSON.
#[cfg(unix)]
#[test]
fn a_directory_is_refused_and_dev_null_reads_as_empty() {
    let env = TestEnv::new();
    let dir = env.path().join("home");
    let mut cmd = env.cmd();
    cmd.args(["print-identity-token", "--no-cache"])
        .env("GOOGLE_APPLICATION_CREDENTIALS", &dir);
    let stderr = refused_as_not_regular(cmd, &dir);
    assert!(stderr.contains("a directory"), "{stderr}");
    let null = Path::new("/dev/null");
    let mut cmd = env.cmd();
    cmd.args(["print-identity-token", "--no-cache"])
        .env("GOOGLE_APPLICATION_CREDENTIALS", null);
    empty_pipe_is_refused(cmd, null);
}

/// `SSL_CERT_FILE` is read when the first HTTPS-capable client is built, inside the command's deadline: a
/// FIFO there is refused too.
#[cfg(unix)]
#[test]
fn a_fifo_as_ssl_cert_file_is_refused_not_waited_on() {
    let env = TestEnv::new();
    let certs = fifo(&env, "ca.pem");
    let key = env.write_json("key.json", &sa_key("http://127.0.0.1:9/token"));
    let mut cmd = env.cmd();
    cmd.args(["print-identity-token", "--no-cache"])
        .env("SSL_CERT_FILE", &certs)
        .env("GOOGLE_APPLICATION_CREDENTIALS", &key);
    let stderr = refused_as_not_regular(cmd, &certs);
    assert!(stderr.contains("SSL_CERT_FILE"), "{stderr}");
}

/// A value that is not UTF-8, with a recognisable text part that must never be echoed.
#[cfg(unix)]
fn not_utf8() -> std::ffi::OsString {
    use std::os::unix::ffi::OsStringExt;
    std::ffi::OsString::from_vec(b"hidden-value-\xff:80".to_vec())
}

/// Checks exit 3 naming `var` and not echoing its value; returns stderr.
fn refused_variable(out: assert_cmd::assert::Assert, var: &str) -> String {
    let output = out.get_output();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(3), "stderr: {stderr}");
    assert!(output.stdout.is_empty());
    assert!(stderr.starts_with("idtok: error: "), "{stderr}");
    assert!(stderr.contains(var), "{stderr}");
    assert!(stderr.contains("not valid UTF-8"), "{stderr}");
    assert!(!stderr.contains("hidden-value"), "{stderr}");
    stderr
}

/// A `GCE_METADATA_IP` that cannot be read is an error, not the default `169.254.169.254`: the command
/// stops before it sends anything, even to the metadata server it was given.
#[cfg(unix)]
#[test]
fn a_non_utf8_metadata_ip_is_exit_3_naming_the_variable() {
    let env = TestEnv::new();
    let server = httpmock::MockServer::start();
    let token = google_id_token("a", json!({}));
    let mock = server.mock(|when, then| {
        when.any_request();
        then.status(200).body(&token);
    });
    let out = env
        .cmd()
        .env("GCE_METADATA_HOST", server.address().to_string())
        .env("GCE_METADATA_IP", not_utf8())
        .args(["metadata", "--audience", "a", "--no-cache"])
        .timeout(HUNG)
        .assert();
    refused_variable(out, "GCE_METADATA_IP");
    assert_eq!(mock.calls(), 0);
}

/// A `GCE_METADATA_HOST` that cannot be read must not quietly become `metadata.google.internal` (run in a
/// network namespace, so that the old behaviour's name lookup cannot leave the machine).
#[cfg(unix)]
#[test]
fn a_non_utf8_metadata_host_is_exit_3_not_the_default_server() {
    let env = TestEnv::new();
    let Some(mut cmd) = env.cmd_in_private_network("") else {
        return;
    };
    let out = cmd
        .env("GCE_METADATA_HOST", not_utf8())
        .args(["metadata", "--audience", "a", "--no-cache"])
        .timeout(HUNG)
        .assert();
    refused_variable(out, "GCE_METADATA_HOST");
}

/// The same for every text variable of the credential chain, such as the IAM endpoint override.
#[cfg(unix)]
#[test]
fn a_non_utf8_endpoint_override_is_exit_3_before_any_request() {
    let env = TestEnv::new();
    let server = httpmock::MockServer::start();
    // A final refusal: even without the fix, nothing goes past the token endpoint to a default IAM host.
    let any = server.mock(|when, then| {
        when.any_request();
        then.status(400)
            .json_body(json!({"error": "invalid_grant"}));
    });
    let key = env.write_json("key.json", &sa_key(&server.url("/token")));
    let out = env
        .cmd()
        .env("CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS", not_utf8())
        .args(["impersonate", "--no-cache", "--audience", "a"])
        .args(["--service-account", TARGET])
        .arg("--credential-file-override")
        .arg(&key)
        .timeout(HUNG)
        .assert();
    refused_variable(out, "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS");
    assert_eq!(any.calls(), 0);
}

/// `--timeout` starts with the command, not with its first request: time spent waiting for gcloud to let
/// go of `credentials.db` counts. Here the database stays locked for 1.5 s, longer than `--timeout 0.5`
/// (but shorter than the 2 s idtok would otherwise wait for gcloud): the command gives up on the lock
/// instead of reading it late and then taking a fresh half second for the network.
#[test]
fn time_waiting_for_a_locked_credentials_db_counts_against_the_timeout() {
    let env = TestEnv::new();
    let server = httpmock::MockServer::start();
    let token = google_id_token(GCLOUD_AUD, json!({}));
    let grant = server.mock(|when, then| {
        when.method(httpmock::Method::POST).path("/token");
        then.status(200).json_body(json!({ "id_token": token }));
    });
    let db = env.credentials_db(&[("me@example.com", &sa_key(&server.url("/token")))]);
    let lock = rusqlite::Connection::open(&db).unwrap();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        lock.execute_batch("COMMIT").unwrap();
    });
    let out = env
        .cmd()
        .args(["print-identity-token", "--no-cache", "--timeout", "0.5"])
        .arg("me@example.com")
        .timeout(HUNG)
        .assert();
    release.join().unwrap();
    let output = out.get_output();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "stderr: {stderr}");
    assert!(output.stdout.is_empty());
    assert!(stderr.contains("credentials.db"), "{stderr}");
    assert!(stderr.contains("locked"), "{stderr}");
    assert_eq!(grant.calls(), 0);
}

/// Every network step of an `external_account` credential (the subject-token URL, AWS IMDS, the STS
/// exchange) runs inside the one deadline: a server that accepts and never answers ends in exit 5 within
/// `--timeout`, whichever step it stands in for.
#[test]
fn a_hanging_federation_step_ends_within_the_timeout() {
    use crate::faults::{Behaviour, RawServer, assert_fails_within};
    let hang = RawServer::start(Behaviour::Hang);
    let url = |path: &str| format!("http://{}{path}", hang.host());
    let base = |source: serde_json::Value, token_url: String| {
        json!({
            "type": "external_account",
            "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q",
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": token_url,
            "service_account_impersonation_url":
                format!("http://127.0.0.1:9/v1/projects/-/serviceAccounts/{TARGET}:generateAccessToken"),
            "credential_source": source,
        })
    };
    let env = TestEnv::new();
    let subject = env.write("subject", "eyJ.subject.sig");
    let cases = [
        (
            "subject token URL",
            base(
                json!({"url": url("/token")}),
                "http://127.0.0.1:9/v1/token".into(),
            ),
        ),
        ("STS", base(json!({"file": subject}), url("/v1/token"))),
        (
            "AWS",
            base(
                json!({
                    "environment_id": "aws1",
                    "region_url": url("/latest/meta-data/placement/availability-zone"),
                    "url": url("/latest/meta-data/iam/security-credentials"),
                    "regional_cred_verification_url":
                        "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
                    "imdsv2_session_token_url": url("/latest/api/token"),
                }),
                "http://127.0.0.1:9/v1/token".into(),
            ),
        ),
    ];
    for (step, file) in cases {
        let path = env.write_json("wif.json", &file);
        let mut cmd = env.cmd();
        cmd.args(["print-identity-token", "--no-cache", "--timeout", "1"])
            .arg("--credential-file-override")
            .arg(&path);
        let stderr = assert_fails_within(cmd, 5, Duration::from_millis(2500));
        assert!(stderr.contains("--timeout"), "{step}: {stderr}");
        assert!(stderr.contains(&hang.host()), "{step}: {stderr}");
    }
}

/// Runs `cmd` (bounded by HUNG) in the background and returns once `first` has received a request.
fn run_until_first_request(
    mut cmd: assert_cmd::Command,
    first: &httpmock::Mock,
) -> std::thread::JoinHandle<std::process::Output> {
    cmd.timeout(HUNG);
    let run = std::thread::spawn(move || cmd.output().unwrap());
    let waiting = std::time::Instant::now();
    while first.calls() == 0 {
        assert!(waiting.elapsed() < HUNG, "no request arrived");
        std::thread::sleep(Duration::from_millis(5));
    }
    run
}

/// Replaces the `failing` identity endpoint with one that serves `token`, then checks that the run
/// recovered: exit 0, exactly the token on stdout, one request to the new endpoint. Returns stderr.
fn recover_and_finish(
    server: &httpmock::MockServer,
    mut failing: httpmock::Mock,
    token: &str,
    run: std::thread::JoinHandle<std::process::Output>,
) -> String {
    failing.delete();
    let ok = server.mock(|when, then| {
        when.path(IDENTITY);
        then.status(200).body(token);
    });
    let output = run.join().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(0), "stderr: {stderr}");
    assert_eq!(output.stdout, format!("{token}\n").as_bytes());
    ok.assert();
    stderr
}

/// A 429 with `Retry-After: 1` is retried after the second the server asked for, not after the first
/// 100 ms backoff step. Checked by the requests the server received at a point in time (a lower bound
/// only: a loaded machine can only make the retry later).
#[test]
fn retry_after_on_429_is_honoured() {
    let env = TestEnv::new();
    let server = httpmock::MockServer::start();
    let token = google_id_token("a", json!({}));
    let limited = server.mock(|when, then| {
        when.path(IDENTITY);
        then.status(429)
            .header("Retry-After", "1")
            .body("rate limited");
    });
    let mut cmd = metadata_cmd(&env, &server);
    cmd.args(["--audience", "a", "--no-cache", "--timeout", "10", "-v"]);
    let run = run_until_first_request(cmd, &limited);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(limited.calls(), 1, "retried before Retry-After said");
    let stderr = recover_and_finish(&server, limited, &token, run);
    assert!(stderr.contains("Retry-After"), "{stderr}");
}

/// A `Retry-After` longer than what is left of `--timeout` is not waited out (the command could only fail
/// at its deadline): the exponential backoff applies, so a recovery within the deadline is still taken.
#[test]
fn retry_after_beyond_the_deadline_falls_back_to_backoff() {
    let env = TestEnv::new();
    let server = httpmock::MockServer::start();
    let token = google_id_token("a", json!({}));
    let limited = server.mock(|when, then| {
        when.path(IDENTITY);
        then.status(503)
            .header("Retry-After", "3600")
            .body("unavailable");
    });
    let mut cmd = metadata_cmd(&env, &server);
    cmd.args(["--audience", "a", "--no-cache", "--timeout", "10"]);
    let run = run_until_first_request(cmd, &limited);
    recover_and_finish(&server, limited, &token, run);
}
