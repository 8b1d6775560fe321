//! Everything a token command does is bounded: local files that are not regular files (a FIFO nobody writes
//! to would block forever) are refused up front, and `--timeout` is one deadline for the whole command.

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

#[cfg(unix)]
#[test]
fn a_fifo_as_google_application_credentials_is_refused_not_waited_on() {
    let env = TestEnv::new();
    let path = fifo(&env, "creds.json");
    let mut cmd = env.cmd();
    cmd.args(["print-identity-token", "--no-cache"])
        .env("GOOGLE_APPLICATION_CREDENTIALS", &path);
    let stderr = refused_as_not_regular(cmd, &path);
    assert!(
        stderr.contains("GOOGLE_APPLICATION_CREDENTIALS"),
        "{stderr}"
    );
}

#[cfg(unix)]
#[test]
fn a_fifo_as_credential_file_override_is_refused_not_waited_on() {
    let env = TestEnv::new();
    let path = fifo(&env, "creds.json");
    let mut cmd = env.cmd();
    cmd.args(["impersonate", "--no-cache", "--audience", "a"])
        .args(["--service-account", "t@p.iam.gserviceaccount.com"])
        .arg("--credential-file-override")
        .arg(&path);
    refused_as_not_regular(cmd, &path);
}

#[cfg(unix)]
#[test]
fn a_fifo_as_the_application_default_credentials_is_refused_not_waited_on() {
    let env = TestEnv::new();
    let path = fifo(&env, "gcloud/application_default_credentials.json");
    let mut cmd = env.cmd();
    cmd.args(["print-identity-token", "--no-cache"]);
    refused_as_not_regular(cmd, &path);
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
fn a_directory_or_device_as_credential_file_is_refused() {
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
    let stderr = refused_as_not_regular(cmd, null);
    assert!(stderr.contains("a device"), "{stderr}");
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
