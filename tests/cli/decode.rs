//! `idtok decode` without `--verify`: input forms, the view for people, `--json`, `--claim`, malformed input.

use std::time::{Duration, UNIX_EPOCH};

use httpmock::prelude::*;
use predicates::prelude::*;
use serde_json::{Value, json};

use crate::support::*;

fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

/// The exact `--json` output for a token.
fn expected_json(token: &str) -> String {
    let (header, payload) = jwt_parts(token);
    format!("{}\n", json!({"header": header, "payload": payload}))
}

/// A failure: the exit code, `idtok: error:` and `expected` on stderr, nothing on stdout, no token on stderr.
fn assert_fails(cmd: &mut assert_cmd::Command, code: i32, expected: &str, token: &str) -> String {
    let out = cmd.assert().code(code).stdout("");
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.starts_with("idtok: error: "), "stderr: {stderr}");
    assert!(
        stderr.contains(expected),
        "expected {expected:?} in: {stderr}"
    );
    if !token.is_empty() {
        assert_no_token(&out.get_output().stderr, token);
    }
    stderr
}

#[test]
fn shows_header_claims_times_and_kind_for_people() {
    let env = TestEnv::new();
    let iat = now() - 150;
    let exp = now() + 41 * 60 + 30;
    let sa = "runner@proj.iam.gserviceaccount.com";
    let token = google_id_token(
        "https://svc-xyz.a.run.app",
        json!({"iat": iat, "exp": exp, "email": sa, "email_verified": true}),
    );
    let (header, payload) = jwt_parts(&token);
    let expected = format!(
        "kind: Google ID token for service account {sa}\nheader:\n{:#}\nclaims:\n{:#}\n\
         iat: {} (issued 2m ago)\nexp: {} (expires in 41m)\nsignature: not verified (add --verify)\n",
        header,
        payload,
        rfc3339(iat),
        rfc3339(exp)
    );
    let out = env.cmd().args(["decode", &token]).assert().success();
    assert_eq!(String::from_utf8_lossy(&out.get_output().stdout), expected);
    assert!(out.get_output().stderr.is_empty());
}

#[test]
fn every_input_form_gives_the_same_token() {
    let env = TestEnv::new();
    let token = google_id_token("aud", json!({}));
    let expected = expected_json(&token);
    let args = [
        token.clone(),
        format!("  {token}\n"),
        format!("Bearer {token}"),
        format!("bearer   {token}"),
        format!("Authorization: Bearer {token}"),
        format!("authorization: bearer {token}"),
        format!("\"{token}\""),
        format!("'{token}'"),
        format!("\"Authorization: Bearer {token}\""),
        format!(" 'Bearer {token}' \n"),
        format!("X-Serverless-Authorization: Bearer {token}"),
    ];
    for arg in &args {
        env.cmd()
            .args(["decode", "--json", arg])
            .assert()
            .success()
            .stdout(expected.clone());
    }
    let stdins = [
        format!("{token}\n"),
        token.clone(),
        format!("Authorization: Bearer {token}\r\n"),
        format!("  \"Bearer {token}\"  \n\n"),
        format!("Host: svc\r\nAuthorization: Bearer {token}\r\nAccept: */*\r\n"),
    ];
    for stdin in &stdins {
        // Absent TOKEN and `-` both read stdin.
        env.cmd()
            .args(["decode", "--json"])
            .write_stdin(stdin.clone())
            .assert()
            .success()
            .stdout(expected.clone());
        env.cmd()
            .args(["decode", "--json", "-"])
            .write_stdin(stdin.clone())
            .assert()
            .success()
            .stdout(expected.clone());
    }
}

#[test]
fn json_is_exactly_header_and_payload() {
    let env = TestEnv::new();
    let token = google_id_token(
        "https://svc",
        json!({"email": "a@b.iam.gserviceaccount.com", "nested": {"x": [1, 2]}}),
    );
    let out = env
        .cmd()
        .args(["decode", "--json", &token])
        .assert()
        .success();
    let stdout = out.get_output().stdout.clone();
    assert_eq!(stdout, expected_json(&token).as_bytes());
    let v: Value = serde_json::from_slice(&stdout).unwrap();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["header", "payload"]);
    assert_eq!(v["header"]["kid"], TEST_KID);
    assert_eq!(v["payload"]["nested"]["x"][1], 2);
    assert!(out.get_output().stderr.is_empty());
}

#[test]
fn claims_are_printed_one_per_line() {
    let env = TestEnv::new();
    let token = google_id_token(
        "https://svc",
        json!({"email": "a@b.iam.gserviceaccount.com", "exp": 2000000000, "google": {"compute_engine": {"zone": "z"}},
               "list": ["x", 1]}),
    );
    env.cmd()
        .args(["decode", &token, "--claim", "email"])
        .assert()
        .success()
        .stdout("a@b.iam.gserviceaccount.com\n");
    env.cmd()
        .args(["decode", &token, "--claim", "exp"])
        .assert()
        .success()
        .stdout("2000000000\n");
    env.cmd()
        .args([
            "decode", &token, "--claim", "google", "--claim", "aud", "--claim", "list",
        ])
        .assert()
        .success()
        .stdout("{\"compute_engine\":{\"zone\":\"z\"}}\nhttps://svc\n[\"x\",1]\n");
    // A JSON pointer reaches nested claims.
    env.cmd()
        .args(["decode", &token, "--claim", "/google/compute_engine/zone"])
        .assert()
        .success()
        .stdout("z\n");
}

#[test]
fn a_missing_claim_is_exit_6_and_prints_nothing() {
    let env = TestEnv::new();
    let token = google_id_token("https://svc", json!({}));
    // `aud` exists, `email` does not: nothing at all is printed.
    let stderr = assert_fails(
        env.cmd()
            .args(["decode", &token, "--claim", "aud", "--claim", "email"]),
        6,
        "no claim `email`",
        &token,
    );
    assert!(!stderr.contains("`aud`"), "{stderr}");
}

#[test]
fn json_and_claim_do_not_go_together() {
    let env = TestEnv::new();
    let token = google_id_token("a", json!({}));
    env.cmd()
        .args(["decode", "--json", "--claim", "aud", &token])
        .assert()
        .code(2)
        .stdout("");
}

#[test]
fn malformed_tokens_name_the_part_at_fault() {
    let env = TestEnv::new();
    let header = b64(r#"{"alg":"RS256","typ":"JWT"}"#);
    let payload = b64(r#"{"aud":"a"}"#);
    let cases = [
        (format!("{header}.{payload}"), "has 2"),
        (format!("{header}.{payload}.c2ln.eHg"), "has 4"),
        (
            format!("{header}!.{payload}.c2ln"),
            "the header is not valid base64url",
        ),
        (
            format!("{header}.{}.c2ln", b64("not json")),
            "the payload is not valid JSON",
        ),
        (
            format!("{header}.{}.c2ln", b64("[1,2]")),
            "the payload is not a JSON object",
        ),
        (
            format!("{}.{payload}.c2ln", b64("\"RS256\"")),
            "the header is not a JSON object",
        ),
        (
            format!("{header}.{payload}.@@@"),
            "the signature is not valid base64url",
        ),
    ];
    for (token, expected) in &cases {
        assert_fails(env.cmd().args(["decode", token]), 6, expected, token);
        // The same through stdin, and with --json / --claim.
        assert_fails(
            env.cmd()
                .args(["decode", "--json"])
                .write_stdin(token.clone()),
            6,
            expected,
            token,
        );
    }
}

#[test]
fn empty_input_is_exit_6() {
    let env = TestEnv::new();
    assert_fails(
        env.cmd().arg("decode").write_stdin("  \n"),
        6,
        "the input is empty",
        "",
    );
    assert_fails(env.cmd().args(["decode", "Bearer "]), 6, "empty", "");
}

#[test]
fn an_access_token_is_not_a_jwt() {
    let env = TestEnv::new();
    let access = "ya29.a0AfB_byC1234567890abcdefghijklmnopqrstuvwxyz";
    for input in [
        access.to_string(),
        format!("Authorization: Bearer {access}"),
    ] {
        let stderr = assert_fails(
            env.cmd().args(["decode", &input]),
            6,
            "access token",
            access,
        );
        assert!(stderr.contains("not a JWT"), "{stderr}");
        assert!(stderr.contains("opaque"), "{stderr}");
        assert!(!stderr.contains("1234567890"), "{stderr}");
    }
}

#[test]
fn oversized_stdin_is_refused() {
    let env = TestEnv::new();
    let token = google_id_token("a", json!({}));
    let huge = format!("{token}{}", "A".repeat(70 * 1024));
    assert_fails(
        env.cmd().arg("decode").write_stdin(huge.clone()),
        6,
        "larger than 65536 bytes",
        &token,
    );
    // Just under the cap is read (and then rejected as malformed, not as too large).
    let big = format!("{}.e30.c2ln", "A".repeat(64 * 1024 - 20));
    let stderr = assert_fails(env.cmd().arg("decode").write_stdin(big), 6, "header", "");
    assert!(!stderr.contains("larger than"), "{stderr}");
}

#[test]
fn relative_times_in_the_past_and_future() {
    let env = TestEnv::new();
    let t = now();
    let token = google_id_token(
        "a",
        json!({"iat": t - 4 * 3600 - 100, "exp": t - 3 * 3600 - 100, "nbf": t - 4 * 3600 - 100}),
    );
    env.cmd()
        .args(["decode", &token])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "exp: {} (expired 3h 1m ago)\n",
            rfc3339(t - 3 * 3600 - 100)
        )))
        .stdout(predicate::str::contains("(issued 4h 1m ago)\n"))
        .stdout(predicate::str::contains("nbf: "))
        .stdout(predicate::str::contains("(valid since 4h 1m ago)\n"));

    let token = google_id_token(
        "a",
        json!({"iat": t + 600, "nbf": t + 600, "exp": t + 2 * 86_400 + 3 * 3600 + 100}),
    );
    env.cmd()
        .args(["decode", &token])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "iat: {} (issued 10m in the future: clock skew?)\n",
            rfc3339(t + 600)
        )))
        .stdout(predicate::str::contains("(not valid yet: valid in 10m)\n"))
        .stdout(predicate::str::contains("(expires in 2days 3h)\n"));
}

#[test]
fn odd_time_claims_do_not_break_the_view() {
    let env = TestEnv::new();
    let token = google_id_token(
        "a",
        json!({"iat": "yesterday", "exp": 999_999_999_999u64, "nbf": -5}),
    );
    env.cmd()
        .args(["decode", &token])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "iat: \"yesterday\" (not a number of seconds since 1970)\n",
        ))
        .stdout(predicate::str::contains(
            "exp: 999999999999 (after the year 9999)",
        ))
        .stdout(predicate::str::contains("nbf: -5 (not a number"));
}

fn kind_line(env: &TestEnv, token: &str) -> Option<String> {
    let out = env.cmd().args(["decode", token]).assert().success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    stdout
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("kind: "))
        .map(str::to_string)
}

#[test]
fn names_the_kind_of_token() {
    let env = TestEnv::new();
    let sa = "runner@proj.iam.gserviceaccount.com";

    let token = google_id_token("https://svc", json!({"email": sa, "email_verified": true}));
    assert_eq!(
        kind_line(&env, &token).unwrap(),
        format!("Google ID token for service account {sa}")
    );

    // A service account without email: azp is its numeric unique id.
    let token = google_id_token("https://svc", json!({}));
    assert_eq!(
        kind_line(&env, &token).unwrap(),
        "Google ID token for a service account (no email claim: mint it with --include-email)"
    );

    let client = "1234-abc.apps.googleusercontent.com";
    let token = google_id_token(
        client,
        json!({"azp": client, "email": "dev@example.com", "email_verified": true}),
    );
    assert_eq!(
        kind_line(&env, &token).unwrap(),
        format!("Google ID token for user dev@example.com, issued to OAuth client {client}")
    );
    let token = google_id_token(
        "32555940559.apps.googleusercontent.com",
        json!({"azp": "32555940559.apps.googleusercontent.com", "email": "dev@example.com"}),
    );
    assert!(kind_line(&env, &token).unwrap().ends_with("(gcloud's)"));

    let token = google_id_token(
        "https://svc",
        json!({"email": sa, "email_verified": true, "google": {"compute_engine": {
            "project_id": "proj", "project_number": 42, "zone": "europe-west1-b",
            "instance_id": "77", "instance_name": "vm-1"}}}),
    );
    assert_eq!(
        kind_line(&env, &token).unwrap(),
        format!(
            "Google ID token from the metadata server of Compute Engine instance vm-1 (project proj, zone \
             europe-west1-b), for service account {sa}"
        )
    );

    let iat = now();
    let iap = sign_es256(
        &json!({"alg": "ES256", "kid": ES256_KID, "typ": "JWT"}),
        &json!({"iss": "https://cloud.google.com/iap", "aud": "/projects/42/apps/my-app",
                "sub": "accounts.google.com:1234", "email": "dev@example.com", "iat": iat, "exp": iat + 600}),
    );
    assert_eq!(
        kind_line(&env, &iap).unwrap(),
        "IAP assertion (Identity-Aware Proxy's signed x-goog-iap-jwt-assertion header) for dev@example.com"
    );

    let self_signed = sign_rs256(
        TEST_KEY,
        &json!({"alg": "RS256", "kid": "abc", "typ": "JWT"}),
        &json!({"iss": sa, "sub": sa, "aud": "https://pubsub.googleapis.com/", "iat": iat, "exp": iat + 3600}),
    );
    assert!(
        kind_line(&env, &self_signed)
            .unwrap()
            .starts_with(&format!("self-signed service-account JWT by {sa}")),
    );

    let other = sign_rs256(
        TEST_KEY,
        &json!({"alg": "RS256"}),
        &json!({"iss": "https://token.actions.githubusercontent.com", "sub": "repo:a/b"}),
    );
    assert_eq!(kind_line(&env, &other), None);
}

#[test]
fn never_touches_the_network_without_verify() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let mock = server.mock(|when, then| {
        when.any_request();
        then.status(200).body(TEST_JWKS);
    });
    let token = google_id_token("a", json!({}));
    env.cmd()
        .env("IDTOK_JWKS_URL", server.url("/certs"))
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .args(["decode", &token, "-v"])
        .assert()
        .success();
    assert_eq!(mock.calls(), 0);
}

#[test]
fn verify_options_need_verify() {
    let env = TestEnv::new();
    let token = google_id_token("a", json!({}));
    for flag in [
        ["--audience", "a"],
        ["--email", "e"],
        ["--issuer", "i"],
        ["--jwks", "f"],
    ] {
        env.cmd()
            .args(["decode", &token])
            .args(flag)
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::contains("--verify"));
    }
}

#[test]
fn verbose_never_shows_the_token() {
    let env = TestEnv::new();
    let token = google_id_token("a", json!({}));
    let out = env
        .cmd()
        .args(["decode", "-vv", "--json"])
        .write_stdin(token.clone())
        .assert()
        .success()
        .stdout(expected_json(&token));
    assert_no_token(&out.get_output().stderr, &token);
}

#[test]
fn control_characters_in_claims_are_escaped_in_the_view_for_people() {
    let env = TestEnv::new();
    let email = "me@example.com\u{1b}]0;pwned\u{7}";
    let client = "123-abc.apps.googleusercontent.com";
    let token = google_id_token(client, json!({ "email": email, "azp": client }));
    let out = env.cmd().args(["decode", &token]).assert().success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        !stdout.contains('\u{1b}') && !stdout.contains('\u{7}'),
        "{stdout:?}"
    );
    assert!(
        stdout.contains(
            "kind: Google ID token for user me@example.com\\u{1b}]0;pwned\\u{7}, issued to"
        ),
        "{stdout}"
    );
}
