//! `idtok metadata` against a stand-in metadata server.

use std::time::{Duration, Instant};

use httpmock::prelude::*;
use predicates::prelude::*;
use serde_json::{Value, json};

use crate::support::*;

#[test]
fn prints_exactly_the_token_and_a_newline() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let token = google_id_token("https://svc-xyz.a.run.app", json!({}));
    let mock = server.mock(|when, then| {
        when.method(GET)
            .path(IDENTITY)
            .header("Metadata-Flavor", "Google")
            .query_param("audience", "https://svc-xyz.a.run.app")
            .query_param("format", "standard")
            .query_param_missing("licenses");
        then.status(200).body(&token);
    });
    let out = metadata_cmd(&env, &server)
        .args(["--audience", "https://svc-xyz.a.run.app"])
        .assert()
        .success();
    assert_eq!(out.get_output().stdout, format!("{token}\n").as_bytes());
    assert!(out.get_output().stderr.is_empty());
    mock.assert();
}

#[test]
fn audience_is_url_encoded() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let aud = "https://x.example/a path?b=c&d=e#f";
    let token = google_id_token(aud, json!({}));
    let mock = server.mock(|when, then| {
        // httpmock decodes query values: the whole audience arriving as one value proves it was encoded.
        when.path(IDENTITY)
            .query_param("audience", aud)
            .query_param("format", "standard");
        then.status(200).body(&token);
    });
    metadata_cmd(&env, &server)
        .args(["--audiences", aud])
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    mock.assert();
}

#[test]
fn full_format_with_licenses_and_named_service_account() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let sa = "runner@proj.iam.gserviceaccount.com";
    let token = google_id_token("aud", json!({"email": sa, "email_verified": true}));
    let mock = server.mock(|when, then| {
        when.path(format!(
            "/computeMetadata/v1/instance/service-accounts/{sa}/identity"
        ))
        .query_param("format", "full")
        .query_param("licenses", "TRUE");
        then.status(200).body(&token);
    });
    metadata_cmd(&env, &server)
        .args([
            "--audience",
            "aud",
            "--token-format",
            "full",
            "--include-license",
            "--service-account",
            sa,
        ])
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    mock.assert();
}

#[test]
fn include_license_needs_full_format() {
    let env = TestEnv::new();
    env.cmd()
        .args(["metadata", "--audience", "a", "--include-license"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(
            predicate::str::contains("--include-license")
                .and(predicate::str::contains("--token-format=full")),
        );
}

#[test]
fn audience_is_required() {
    let env = TestEnv::new();
    env.cmd()
        .arg("metadata")
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("--audience"));
}

#[test]
fn gce_metadata_root_is_used_when_host_is_not_set() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let token = google_id_token("a", json!({}));
    let mock = server.mock(|when, then| {
        when.path(IDENTITY);
        then.status(200).body(&token);
    });
    env.cmd()
        .env("GCE_METADATA_ROOT", server.address().to_string())
        .args(["metadata", "--audience", "a"])
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    mock.assert();
}

#[test]
fn gce_metadata_host_wins_over_root() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let token = google_id_token("a", json!({}));
    let mock = server.mock(|when, then| {
        when.path(IDENTITY);
        then.status(200).body(&token);
    });
    env.cmd()
        .env("GCE_METADATA_HOST", server.address().to_string())
        .env("GCE_METADATA_ROOT", "127.0.0.1:9")
        .args(["metadata", "--audience", "a"])
        .assert()
        .success();
    mock.assert();
}

// The next three tests need names that do not resolve. They run the binary in a private network namespace
// (loopback only), so that the lookup fails there and no DNS query leaves the machine.

#[test]
fn falls_back_to_gce_metadata_ip_when_the_name_does_not_resolve() {
    // metadata.google.internal does not resolve off Google Cloud; GCE_METADATA_IP then gets one try.
    let env = TestEnv::new();
    let token = google_id_token("https://svc", json!({}));
    let prelude = one_shot_server_prelude(env.path(), 8089, &token);
    let Some(mut cmd) = env.cmd_in_private_network(&prelude) else {
        return;
    };
    cmd.env("GCE_METADATA_IP", "127.0.0.1:8089")
        .args(["metadata", "--audience", "https://svc"])
        .timeout(Duration::from_secs(20))
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    let request = std::fs::read_to_string(env.path().join("request.txt")).unwrap();
    assert!(
        request.starts_with(
            "GET /computeMetadata/v1/instance/service-accounts/default/identity?audience=https%3A%2F%2Fsvc&format=standard HTTP/1.1\r\n"
        ),
        "{request}"
    );
    assert!(
        request
            .to_ascii_lowercase()
            .contains("\r\nmetadata-flavor: google\r\n"),
        "{request}"
    );
}

#[test]
fn off_google_cloud_fails_fast_with_a_hint() {
    let env = TestEnv::new();
    let Some(mut cmd) = env.cmd_in_private_network("") else {
        return;
    };
    let started = Instant::now();
    cmd.args(["metadata", "--audience", "a"])
        .timeout(Duration::from_secs(20))
        .assert()
        .code(5)
        .stdout("")
        .stderr(predicate::str::starts_with(
            "idtok: error: metadata server unreachable",
        ))
        .stderr(predicate::str::contains("hint: not on Google Cloud?"));
    // SPEC 2.1: off Google Cloud, fail fast rather than wait out the 30 s default deadline. The bound is
    // generous so that a loaded machine does not fail the test; bench/run.sh is where speed is measured.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn unresolvable_metadata_host_fails_fast_with_exit_5() {
    let env = TestEnv::new();
    let Some(mut cmd) = env.cmd_in_private_network("") else {
        return;
    };
    let started = Instant::now();
    cmd.env("GCE_METADATA_HOST", "no-such-host.invalid")
        .args(["metadata", "--audience", "a", "--timeout", "20"])
        .timeout(Duration::from_secs(20))
        .assert()
        .code(5)
        .stdout("")
        .stderr(predicate::str::contains("does not resolve"))
        .stderr(predicate::str::contains("hint: GCE_METADATA_HOST"));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn retries_503_then_succeeds() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let token = google_id_token("a", json!({}));
    let mut failing = server.mock(|when, then| {
        when.path(IDENTITY);
        then.status(503).body("busy");
    });
    // Swap the 503 for a 200 once the first request has been answered.
    let handle = std::thread::spawn({
        let cmd = metadata_cmd(&env, &server);
        move || {
            let mut cmd = cmd;
            cmd.args(["--audience", "a", "-v"]).output().unwrap()
        }
    });
    let waited = Instant::now();
    while failing.calls() == 0 && waited.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    failing.delete();
    let ok = server.mock(|when, then| {
        when.path(IDENTITY);
        then.status(200).body(&token);
    });
    let output = handle.join().unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.stdout, format!("{token}\n").as_bytes());
    assert!(String::from_utf8_lossy(&output.stderr).contains("retrying"));
    ok.assert();
}

#[test]
fn a_5xx_storm_ends_in_exit_5_within_the_deadline() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let mock = server.mock(|when, then| {
        when.path(IDENTITY);
        then.status(500).body("internal");
    });
    let started = Instant::now();
    metadata_cmd(&env, &server)
        .args(["--audience", "a", "--timeout", "1"])
        .assert()
        .code(5)
        .stdout("")
        .stderr(predicate::str::contains("HTTP 500"));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        mock.calls() >= 2,
        "expected retries, saw {} calls",
        mock.calls()
    );
}

#[test]
fn a_hanging_server_gives_exit_5_within_the_deadline() {
    let env = TestEnv::new();
    let server = MockServer::start();
    server.mock(|when, then| {
        when.path(IDENTITY);
        then.status(200).body("x").delay(Duration::from_secs(10));
    });
    let started = Instant::now();
    metadata_cmd(&env, &server)
        .args(["--audience", "a", "--timeout", "1"])
        .assert()
        .code(5)
        .stdout("")
        .stderr(predicate::str::contains("--timeout"));
    let took = started.elapsed();
    assert!(took < Duration::from_millis(2500), "took {took:?}");
}

#[test]
fn not_found_names_the_service_account() {
    let env = TestEnv::new();
    let server = MockServer::start();
    server.mock(|when, then| {
        when.path("/computeMetadata/v1/instance/service-accounts/ghost@p.iam.gserviceaccount.com/identity");
        then.status(404).body("not found");
    });
    metadata_cmd(&env, &server)
        .args([
            "--audience",
            "a",
            "--service-account",
            "ghost@p.iam.gserviceaccount.com",
        ])
        .assert()
        .code(4)
        .stdout("")
        .stderr(predicate::str::contains(
            "no service account `ghost@p.iam.gserviceaccount.com`",
        ));
}

#[test]
fn forbidden_mentions_concealment() {
    let env = TestEnv::new();
    let server = MockServer::start();
    server.mock(|when, then| {
        when.path(IDENTITY);
        then.status(403).body("forbidden");
    });
    metadata_cmd(&env, &server)
        .args(["--audience", "a"])
        .assert()
        .code(4)
        .stdout("")
        .stderr(predicate::str::contains("concealed"));
}

#[test]
fn a_200_that_is_not_a_jwt_is_an_error_and_not_printed() {
    let env = TestEnv::new();
    let server = MockServer::start();
    server.mock(|when, then| {
        when.path(IDENTITY);
        then.status(200).body("<html>captive portal</html>");
    });
    metadata_cmd(&env, &server)
        .args(["--audience", "a"])
        .assert()
        .code(5)
        .stdout("")
        .stderr(predicate::str::contains("not an ID token"))
        .stderr(predicate::str::contains("captive").not());
}

#[test]
fn a_dead_http_proxy_does_not_break_the_metadata_call() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let token = google_id_token("a", json!({}));
    let mock = server.mock(|when, then| {
        when.path(IDENTITY);
        then.status(200).body(&token);
    });
    metadata_cmd(&env, &server)
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .env("http_proxy", "http://127.0.0.1:9")
        .env("ALL_PROXY", "http://127.0.0.1:9")
        .args(["--audience", "a"])
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    mock.assert();
}

#[test]
fn header_output() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let token = google_id_token("a", json!({}));
    server.mock(|when, then| {
        when.path(IDENTITY);
        then.status(200).body(&token);
    });
    metadata_cmd(&env, &server)
        .args(["--audience", "a", "-o", "header"])
        .assert()
        .success()
        .stdout(format!("Authorization: Bearer {token}\n"));
}

#[test]
fn json_output_reads_expiry_from_the_token() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let iat = now() - 600;
    let token = google_id_token(
        "https://svc",
        json!({"iat": iat, "exp": iat + 1800, "email": "sa@p.iam.gserviceaccount.com", "sub": "42"}),
    );
    server.mock(|when, then| {
        when.path(IDENTITY);
        then.status(200).body(&token);
    });
    let out = metadata_cmd(&env, &server)
        .env("IDTOK_OUTPUT", "json")
        .args(["--audience", "https://svc"])
        .assert()
        .success();
    let stdout = &out.get_output().stdout;
    assert_eq!(
        stdout.iter().filter(|b| **b == b'\n').count(),
        1,
        "one line of JSON"
    );
    let v: Value = serde_json::from_slice(stdout).unwrap();
    assert_eq!(v["token"], token);
    assert_eq!(v["audience"], "https://svc");
    assert_eq!(v["email"], "sa@p.iam.gserviceaccount.com");
    assert_eq!(v["subject"], "42");
    assert_eq!(v["source"], "metadata");
    assert_eq!(v["cached"], false);
    let expires_in = v["expires_in"].as_i64().unwrap();
    assert!(
        (1190..=1200).contains(&expires_in),
        "expires_in {expires_in}"
    );
    let exp = humantime::parse_rfc3339(v["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(
        exp.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
        iat + 1800
    );
    let issued = humantime::parse_rfc3339(v["issued_at"].as_str().unwrap()).unwrap();
    assert_eq!(
        issued
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
        iat
    );
}

#[test]
fn verbose_traces_requests_but_never_the_token() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let token = google_id_token("a", json!({}));
    server.mock(|when, then| {
        when.path(IDENTITY);
        then.status(200).body(&token);
    });
    let out = metadata_cmd(&env, &server)
        .args(["--audience", "a", "-vv"])
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("GET http://"), "{stderr}");
    assert!(stderr.contains("-> 200"), "{stderr}");
    assert!(stderr.contains("Metadata-Flavor: Google"), "{stderr}");
    assert_no_token(&out.get_output().stderr, &token);
}

#[test]
fn a_closed_stdout_is_not_an_error() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let token = google_id_token("a", json!({}));
    server.mock(|when, then| {
        when.path(IDENTITY);
        then.status(200).body(&token);
    });
    let mut child = env
        .std_cmd()
        .env("GCE_METADATA_HOST", server.address().to_string())
        .args(["metadata", "--audience", "a"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away before the token is written
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.stderr.is_empty(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_metadata_host_with_a_scheme_is_a_configuration_error() {
    let env = TestEnv::new();
    env.cmd()
        .env("GCE_METADATA_HOST", "http://127.0.0.1:9")
        .args(["metadata", "--audience", "a"])
        .assert()
        .code(3)
        .stdout("")
        .stderr(predicate::str::contains("is not a host[:port]"))
        .stderr(predicate::str::contains("hint: set it to host[:port]"));
}
