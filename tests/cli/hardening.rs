//! Defects found in review: redirects that would carry a secret elsewhere, credential files without a size
//! bound, `--timeout` around a credential executable, far-future expiry times, and path characters in a
//! service account name.

use std::time::{Duration, Instant};

use httpmock::prelude::*;
use serde_json::{Value, json};

use crate::support::*;

/// A token endpoint that redirects to another origin must not get the grant re-sent there: a 307 keeps the
/// POST body (the signed assertion, or a refresh token and client secret), and the next origin may be plain
/// http on another machine.
#[test]
fn token_endpoint_redirect_to_another_origin_is_not_followed() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let elsewhere = MockServer::start();
    let token = google_id_token(GCLOUD_AUD, json!({}));
    let redirect = server.mock(|when, then| {
        when.method(POST).path("/token");
        then.status(307)
            .header("Location", elsewhere.url("/token"))
            .body("");
    });
    let stolen = elsewhere.mock(|when, then| {
        when.any_request();
        then.status(200).json_body(json!({ "id_token": token }));
    });
    let key = env.write_json("key.json", &sa_key(&server.url("/token")));
    let out = env
        .cmd()
        .args([
            "print-identity-token",
            "--no-cache",
            "--credential-file-override",
        ])
        .arg(&key)
        .assert()
        .code(5);
    let output = out.get_output();
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("idtok: error: "), "{stderr}");
    assert!(stderr.contains("307"), "{stderr}");
    assert!(stderr.contains(&elsewhere.url("/token")), "{stderr}");
    redirect.assert();
    assert_eq!(stolen.calls(), 0, "the grant was re-sent to another origin");
}

/// A redirect within the same origin (`/token` -> `/token/`) is still followed.
#[test]
fn token_endpoint_redirect_within_the_origin_is_followed() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let token = google_id_token(GCLOUD_AUD, json!({}));
    let redirect = server.mock(|when, then| {
        when.method(POST).path("/token");
        then.status(307).header("Location", "/token/").body("");
    });
    let target = server.mock(|when, then| {
        when.method(POST)
            .path("/token/")
            .form_urlencoded_tuple_exists("assertion");
        then.status(200).json_body(json!({ "id_token": token }));
    });
    let key = env.write_json("key.json", &sa_key(&server.url("/token")));
    env.cmd()
        .args([
            "print-identity-token",
            "--no-cache",
            "--credential-file-override",
        ])
        .arg(&key)
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    redirect.assert();
    target.assert();
}

/// A credential file is read with a bound: no credential is megabytes long, and `/dev/zero` or a huge file
/// must not be read into memory.
#[test]
fn oversized_credential_file_is_refused() {
    let env = TestEnv::new();
    let mut text = " ".repeat(2 << 20);
    text.push_str(&sa_key("http://127.0.0.1:9/token").to_string());
    let path = env.write("huge.json", text);
    let out = env
        .cmd()
        .args(["print-identity-token", "--no-cache"])
        .env("GOOGLE_APPLICATION_CREDENTIALS", &path)
        .timeout(Duration::from_secs(20))
        .assert()
        .code(3);
    let output = out.get_output();
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("huge.json"), "{stderr}");
    assert!(stderr.contains("larger than"), "{stderr}");
}

/// `--timeout` bounds the whole command, a credential executable included, even when the file's
/// `timeout_millis` is longer.
#[cfg(unix)]
#[test]
fn timeout_bounds_a_credential_executable() {
    let env = TestEnv::new();
    let file = json!({
        "type": "external_account",
        "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q",
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": "http://127.0.0.1:9/v1/token",
        "service_account_impersonation_url":
            format!("http://127.0.0.1:9/v1/projects/-/serviceAccounts/{TARGET}:generateAccessToken"),
        "credential_source": {"executable": {"command": "/bin/sleep 15", "timeout_millis": 60000}},
    });
    let path = env.write_json("wif.json", &file);
    let started = Instant::now();
    let out = env
        .cmd()
        .args(["print-identity-token", "--no-cache", "--timeout", "1"])
        .arg("--credential-file-override")
        .arg(&path)
        .env("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES", "1")
        .timeout(Duration::from_secs(30))
        .assert()
        .code(5);
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    let output = out.get_output();
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--timeout"), "{stderr}");
}

/// A token whose `exp` lies past the year 9999 (RFC 3339 has four-digit years) is printed, not a panic.
#[test]
fn json_output_survives_a_far_future_expiry() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let token = google_id_token("aud", json!({"exp": 999_999_999_999u64}));
    server.mock(|when, then| {
        when.path(IDENTITY);
        then.status(200).body(&token);
    });
    let out = metadata_cmd(&env, &server)
        .args(["--audience", "aud", "--no-cache", "-o", "json"])
        .assert()
        .success();
    let v: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["token"], token);
    assert!(v["expires_in"].as_i64().unwrap() > 900_000_000_000);
    // RFC 3339 cannot write the year 33658: the last second it can write stands in.
    assert_eq!(v["expires_at"], "9999-12-31T23:59:59Z");
}

/// `--service-account` is one path segment: a `?`, `#` or `/` in it is percent-encoded, never a way to
/// another metadata path or into the query.
#[test]
fn metadata_service_account_is_one_path_segment() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let token = google_id_token("aud", json!({}));
    let mock = server.mock(|when, then| {
        when.path_matches(
            r"^/computeMetadata/v1/instance/service-accounts/a%3Fb%23c%2F\.\.%2Fd@x/identity$",
        )
        .query_param("audience", "aud")
        .query_param("format", "standard");
        then.status(200).body(&token);
    });
    metadata_cmd(&env, &server)
        .args(["--audience", "aud", "--no-cache"])
        .args(["--service-account", "a?b#c/../d@x"])
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    mock.assert();
}

/// The target of generateIdToken is one path segment too: a `#` or `?` in `--service-account` must not cut
/// `:generateIdToken` off the path and send the access token to another IAM method.
#[test]
fn impersonation_target_is_one_path_segment() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let token = google_id_token("aud", json!({}));
    let grant = server.mock(|when, then| {
        when.method(POST).path("/token");
        then.status(200)
            .json_body(json!({"access_token": "ya29.caller", "expires_in": 3600}));
    });
    let iam = server.mock(|when, then| {
        when.method(POST)
            .path_matches(r"^/iam/v1/projects/-/serviceAccounts/t%23x%3Fy@p\.iam\.gserviceaccount\.com:generateIdToken$")
            .header("Authorization", "Bearer ya29.caller");
        then.status(200).json_body(json!({ "token": token }));
    });
    let key = env.write_json("key.json", &sa_key(&server.url("/token")));
    env.cmd()
        .env(
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS",
            server.url("/iam/"),
        )
        .args(["impersonate", "--no-cache", "--audience", "aud"])
        .args(["--service-account", "t#x?y@p.iam.gserviceaccount.com"])
        .arg("--credential-file-override")
        .arg(&key)
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    grant.assert();
    iam.assert();
}
