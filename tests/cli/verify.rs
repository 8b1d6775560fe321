//! `idtok decode --verify` against key sets from files and from httpmock servers standing in for Google.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use httpmock::HttpMockResponse;
use httpmock::prelude::*;
use predicates::prelude::*;
use serde_json::{Value, json};

use crate::support::*;

const CERTS: &str = "/oauth2/v3/certs";
const AUD: &str = "https://svc-xyz.a.run.app";
const SA: &str = "runner@proj.iam.gserviceaccount.com";

/// A Google-shaped token for AUD, signed by the test key, with `extra` claims.
fn token(extra: Value) -> String {
    google_id_token(AUD, extra)
}

/// An IAP-style ES256 assertion signed by the P-256 test key.
fn iap_token(extra: Value) -> String {
    let iat = now();
    let mut claims = json!({
        "iss": "https://cloud.google.com/iap",
        "aud": "/projects/42/apps/my-app",
        "sub": "accounts.google.com:1234",
        "email": "dev@example.com",
        "hd": "example.com",
        "iat": iat,
        "exp": iat + 600,
    });
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    sign_es256(
        &json!({"alg": "ES256", "kid": ES256_KID, "typ": "JWT"}),
        &claims,
    )
}

fn jwks_file(env: &TestEnv) -> String {
    env.write("keys/test.jwks.json", TEST_JWKS)
        .to_string_lossy()
        .into_owned()
}

/// `decode --verify --jwks <test key set> TOKEN ARGS...`
fn verify_offline(env: &TestEnv, token: &str, args: &[&str]) -> assert_cmd::Command {
    let mut cmd = env.cmd();
    cmd.args(["decode", "--verify", "--jwks", &jwks_file(env), token])
        .args(args);
    cmd
}

/// Serves `body` as the key set at CERTS, with `Cache-Control: max-age=...` when given. Key sets are
/// public: the request must carry no credentials.
fn serve_keys<'a>(server: &'a MockServer, body: &str, max_age: Option<u64>) -> httpmock::Mock<'a> {
    server.mock(|when, then| {
        when.method(GET)
            .path(CERTS)
            .header_missing("authorization")
            .header_missing("cookie");
        let then = then
            .status(200)
            .header("content-type", "application/json")
            .body(body);
        if let Some(max_age) = max_age {
            then.header(
                "cache-control",
                format!("public, max-age={max_age}, must-revalidate, no-transform"),
            );
        }
    })
}

fn verify_url(env: &TestEnv, url: &str, token: &str, args: &[&str]) -> assert_cmd::Command {
    let mut cmd = env.cmd();
    cmd.args(["decode", "--verify", "--jwks-url", url, token])
        .args(args);
    cmd
}

/// The failure contract: exit code, `idtok: error:` on stderr naming `expected`, empty stdout, no token.
fn assert_fails(cmd: &mut assert_cmd::Command, code: i32, expected: &str, token: &str) -> String {
    let out = cmd.assert().code(code).stdout("");
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    // `-v` lines may come first; the error is reported once.
    assert_eq!(
        stderr.matches("idtok: error: ").count(),
        1,
        "stderr: {stderr}"
    );
    assert!(
        stderr.starts_with("idtok: error: ") || stderr.contains("\nidtok: error: "),
        "stderr: {stderr}"
    );
    assert!(
        stderr.contains(expected),
        "expected {expected:?} in: {stderr}"
    );
    assert_no_token(&out.get_output().stderr, token);
    stderr
}

fn assert_check_fails(cmd: &mut assert_cmd::Command, check: &str, token: &str) -> String {
    assert_fails(
        cmd,
        6,
        &format!("idtok: error: verification failed: {check}: "),
        token,
    )
}

#[test]
fn a_good_rs256_token_passes_from_a_jwks_file() {
    let env = TestEnv::new();
    let t = token(json!({"email": SA, "email_verified": true}));
    let file = jwks_file(&env);
    let out = verify_offline(&env, &t, &["--audience", AUD, "--email", SA])
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(stdout.starts_with(&format!(
        "kind: Google ID token for service account {SA}\nheader:\n"
    )));
    assert!(
        stdout.ends_with(&format!(
            "signature: verified (RS256, key `test-kid-1` from {file}); checked iss, exp/nbf/iat, aud, email\n"
        )),
        "{stdout}"
    );
    assert!(out.get_output().stderr.is_empty());

    // --json and --claim print exactly what they print without --verify.
    let plain = env
        .cmd()
        .args(["decode", "--json", &t])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    verify_offline(&env, &t, &["--audience", AUD, "--json"])
        .assert()
        .success()
        .stdout(plain);
    verify_offline(&env, &t, &["--audience", AUD, "--claim", "email"])
        .assert()
        .success()
        .stdout(format!("{SA}\n"));
}

#[test]
fn a_good_rs256_token_passes_from_a_jwks_url() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let mock = serve_keys(&server, TEST_JWKS, None);
    let t = token(json!({}));
    let out = verify_url(&env, &server.url(CERTS), &t, &["--audience", AUD, "-v"])
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        stderr.contains(&format!(
            "verified: RS256 signature by key `test-kid-1` from {}",
            server.url(CERTS)
        )),
        "{stderr}"
    );
    assert!(stderr.contains("plain http"), "{stderr}");
    assert_no_token(&out.get_output().stderr, &t);
    mock.assert();
}

#[test]
fn the_key_set_url_comes_from_idtok_jwks_url() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let mock = serve_keys(&server, TEST_JWKS, None);
    let t = token(json!({}));
    env.cmd()
        .env("IDTOK_JWKS_URL", server.url(CERTS))
        .args([
            "decode",
            "--verify",
            "--audience",
            AUD,
            "--claim",
            "aud",
            &t,
        ])
        .assert()
        .success()
        .stdout(format!("{AUD}\n"));
    mock.assert();
}

#[test]
fn a_good_es256_iap_assertion_passes() {
    let env = TestEnv::new();
    let t = iap_token(json!({}));
    let file = env.write("iap.jwks.json", ES256_JWKS);
    env.cmd()
        .args(["decode", "--verify", "--jwks"])
        .arg(&file)
        .args([
            "--audience",
            "/projects/42/apps/my-app",
            "--claim",
            "email",
            &t,
        ])
        .assert()
        .success()
        .stdout("dev@example.com\n");
    // Through a URL too.
    let server = MockServer::start();
    let mock = serve_keys(&server, ES256_JWKS, None);
    verify_url(
        &env,
        &server.url(CERTS),
        &t,
        &["--audience", "/projects/42/apps/my-app"],
    )
    .assert()
    .success()
    .stdout(predicate::str::contains(
        "signature: verified (ES256, key `es-kid-1` from",
    ));
    mock.assert();
    // An IAP assertion is not a Google ID token: the accounts.google.com issuers do not apply to it.
    let wrong = iap_token(json!({"iss": "https://accounts.google.com"}));
    assert_check_fails(
        env.cmd()
            .args(["decode", "--verify", "--jwks"])
            .arg(&file)
            .arg(&wrong),
        "issuer",
        &wrong,
    );
}

#[test]
fn a_tampered_token_fails_the_signature_check() {
    let env = TestEnv::new();
    let t = token(json!({"email": "a@example.com"}));
    let parts: Vec<&str> = t.split('.').collect();
    let (_, mut payload) = jwt_parts(&t);
    payload["email"] = json!("admin@example.com");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(payload.to_string().as_bytes()),
        parts[2]
    );
    let stderr = assert_check_fails(
        &mut verify_offline(&env, &tampered, &[]),
        "signature",
        &tampered,
    );
    assert!(stderr.contains("key `test-kid-1`"), "{stderr}");

    // Signed by another key under the test key's kid.
    let forged = sign_rs256(
        OTHER_KEY,
        &json!({"alg": "RS256", "kid": TEST_KID, "typ": "JWT"}),
        &jwt_parts(&t).1,
    );
    assert_check_fails(
        &mut verify_offline(&env, &forged, &[]),
        "signature",
        &forged,
    );
}

#[test]
fn alg_none_is_always_refused() {
    let env = TestEnv::new();
    let (_, payload) = jwt_parts(&token(json!({})));
    for alg in ["none", "None", "NONE"] {
        let unsigned = format!(
            "{}.{}.",
            b64(json!({"alg": alg, "kid": TEST_KID}).to_string().as_bytes()),
            b64(payload.to_string().as_bytes())
        );
        let stderr = assert_check_fails(
            &mut verify_offline(&env, &unsigned, &[]),
            "algorithm",
            &unsigned,
        );
        assert!(stderr.contains("unsigned"), "{stderr}");
    }
}

#[test]
fn hs256_signed_with_the_public_key_is_refused() {
    // The classic forgery: HMAC with the RSA public key (which anyone has) as the secret.
    let env = TestEnv::new();
    let (_, payload) = jwt_parts(&token(json!({})));
    let jwks: Value = serde_json::from_str(TEST_JWKS).unwrap();
    for secret in [
        TEST_JWKS.as_bytes().to_vec(),
        URL_SAFE_NO_PAD
            .decode(jwks["keys"][0]["n"].as_str().unwrap())
            .unwrap(),
    ] {
        for alg in ["HS256", "HS384", "HS512"] {
            let signing_input = format!(
                "{}.{}",
                b64(json!({"alg": alg, "kid": TEST_KID}).to_string().as_bytes()),
                b64(payload.to_string().as_bytes())
            );
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
            let sig = ring::hmac::sign(&key, signing_input.as_bytes());
            let forged = format!("{signing_input}.{}", b64(sig.as_ref()));
            let stderr = assert_check_fails(
                &mut verify_offline(&env, &forged, &[]),
                "algorithm",
                &forged,
            );
            assert!(stderr.contains("HMAC"), "{stderr}");
        }
    }
    // Other algorithms, even ones a key set might list, are refused too, and so are the accepted ones
    // spelt in another case (RFC 7518 names are case-sensitive).
    for alg in [
        "RS512", "PS256", "ES384", "EdDSA", "rs256", "Rs256", "es256", "RS256 ",
    ] {
        let t = format!(
            "{}.{}.c2ln",
            b64(json!({"alg": alg, "kid": TEST_KID}).to_string().as_bytes()),
            b64(payload.to_string().as_bytes())
        );
        assert_check_fails(&mut verify_offline(&env, &t, &[]), "algorithm", &t);
    }
}

#[test]
fn a_key_of_the_wrong_type_is_refused() {
    // An ES256 token whose kid names an RSA key (and the other way round) must not verify.
    let env = TestEnv::new();
    let t = sign_es256(
        &json!({"alg": "ES256", "kid": TEST_KID}),
        &jwt_parts(&token(json!({}))).1,
    );
    let stderr = assert_check_fails(&mut verify_offline(&env, &t, &[]), "key", &t);
    assert!(
        stderr.contains("is an RSA key, but the token says ES256"),
        "{stderr}"
    );
    // The other way round: an RS256 token whose kid names IAP's P-256 key.
    let jwks = env.write("keys/es.jwks.json", ES256_JWKS);
    let t = sign_rs256(
        TEST_KEY,
        &json!({"alg": "RS256", "kid": ES256_KID}),
        &jwt_parts(&iap_token(json!({}))).1,
    );
    let stderr = assert_check_fails(
        env.cmd()
            .args(["decode", "--verify", "--jwks"])
            .arg(&jwks)
            .arg(&t),
        "key",
        &t,
    );
    assert!(
        stderr.contains("is a P-256 (EC) key, but the token says RS256"),
        "{stderr}"
    );
}

#[test]
fn an_unknown_kid_is_fetched_again_once_then_fails() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let mock = serve_keys(&server, TEST_JWKS, None);
    let t = sign_rs256(
        TEST_KEY,
        &json!({"alg": "RS256", "kid": "rotated-kid-9", "typ": "JWT"}),
        &jwt_parts(&token(json!({}))).1,
    );
    let stderr = assert_check_fails(
        &mut verify_url(&env, &server.url(CERTS), &t, &["-v"]),
        "key",
        &t,
    );
    assert!(stderr.contains("no key `rotated-kid-9`"), "{stderr}");
    assert!(stderr.contains("fetching the key set again"), "{stderr}");
    assert!(stderr.contains("hint: "), "{stderr}");
    assert_eq!(mock.calls(), 2, "the first fetch and one refetch");
}

#[test]
fn an_unknown_kid_in_a_file_is_not_fetched() {
    let env = TestEnv::new();
    let t = sign_rs256(
        TEST_KEY,
        &json!({"alg": "RS256", "kid": "nope", "typ": "JWT"}),
        &jwt_parts(&token(json!({}))).1,
    );
    assert_check_fails(&mut verify_offline(&env, &t, &[]), "key", &t);
}

#[test]
fn key_rotation_within_one_run() {
    // The first answer is the old set; the token is signed with a new key, which the second answer has.
    let env = TestEnv::new();
    let server = MockServer::start();
    let served = Arc::new(AtomicUsize::new(0));
    let mock = server.mock(|when, then| {
        when.method(GET).path(CERTS);
        let served = served.clone();
        then.respond_with(move |_| {
            let body = if served.fetch_add(1, Ordering::SeqCst) == 0 {
                TEST_JWKS
            } else {
                OTHER_JWKS
            };
            HttpMockResponse::builder().status(200).body(body).build()
        });
    });
    let t = sign_rs256(
        OTHER_KEY,
        &json!({"alg": "RS256", "kid": "other-kid-2", "typ": "JWT"}),
        &jwt_parts(&token(json!({}))).1,
    );
    verify_url(
        &env,
        &server.url(CERTS),
        &t,
        &["--audience", AUD, "--claim", "aud"],
    )
    .assert()
    .success()
    .stdout(format!("{AUD}\n"));
    assert_eq!(mock.calls(), 2);
}

#[test]
fn key_rotation_past_the_disk_cache() {
    // A cached set without the token's kid is fetched again, bypassing the cache, and the cache replaced.
    let env = TestEnv::new();
    let server = MockServer::start();
    let mut old = server.mock(|when, then| {
        when.method(GET).path(CERTS);
        then.status(200)
            .header("cache-control", "public, max-age=3600")
            .body(TEST_JWKS);
    });
    let url = server.url(CERTS);
    let first = token(json!({}));
    verify_url(&env, &url, &first, &["--audience", AUD])
        .assert()
        .success();
    assert_eq!(old.calls(), 1);
    old.delete();
    let new = server.mock(|when, then| {
        when.method(GET).path(CERTS);
        then.status(200)
            .header("cache-control", "public, max-age=3600")
            .body(OTHER_JWKS);
    });
    let rotated = sign_rs256(
        OTHER_KEY,
        &json!({"alg": "RS256", "kid": "other-kid-2", "typ": "JWT"}),
        &jwt_parts(&first).1,
    );
    verify_url(&env, &url, &rotated, &["--audience", AUD])
        .assert()
        .success();
    assert_eq!(new.calls(), 1);
    // The new set is what is cached now.
    verify_url(&env, &url, &rotated, &["--audience", AUD])
        .assert()
        .success();
    assert_eq!(new.calls(), 1);
}

#[test]
fn key_sets_are_cached_while_max_age_allows() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let mock = serve_keys(&server, TEST_JWKS, Some(3600));
    let url = server.url(CERTS);
    let t = token(json!({}));
    verify_url(&env, &url, &t, &["--audience", AUD])
        .assert()
        .success();
    let out = verify_url(&env, &url, &t, &["--audience", AUD, "-v"])
        .assert()
        .success();
    assert_eq!(mock.calls(), 1, "the second run must not fetch");
    let stderr = String::from_utf8_lossy(&out.get_output().stderr);
    assert!(stderr.contains("using the cached key set"), "{stderr}");
    assert!(stderr.contains("(cached)"), "{stderr}");

    let path = cache_file(&env, &url);
    let entry: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(entry["url"], url);
    assert_eq!(entry["body"], TEST_JWKS);
    let expires = entry["expires_at"].as_u64().unwrap();
    assert!(
        (now() + 3590..=now() + 3600).contains(&expires),
        "{expires}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}

fn cache_file(env: &TestEnv, url: &str) -> std::path::PathBuf {
    let digest = ring::digest::digest(&ring::digest::SHA256, url.as_bytes());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    env.cache().join("jwks").join(format!("{hex}.json"))
}

#[test]
fn key_sets_without_max_age_are_not_cached() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let mock = serve_keys(&server, TEST_JWKS, None);
    let url = server.url(CERTS);
    let t = token(json!({}));
    verify_url(&env, &url, &t, &["--audience", AUD])
        .assert()
        .success();
    verify_url(&env, &url, &t, &["--audience", AUD])
        .assert()
        .success();
    assert_eq!(mock.calls(), 2);
    assert!(!cache_file(&env, &url).exists());
}

#[test]
fn age_counts_against_max_age() {
    let env = TestEnv::new();
    let server = MockServer::start();
    // max-age minus Age leaves one second.
    let mock = server.mock(|when, then| {
        when.method(GET).path(CERTS);
        then.status(200)
            .header("cache-control", "max-age=3600")
            .header("age", "3599")
            .body(TEST_JWKS);
    });
    let url = server.url(CERTS);
    let t = token(json!({}));
    verify_url(&env, &url, &t, &["--audience", AUD])
        .assert()
        .success();
    std::thread::sleep(Duration::from_millis(2100));
    verify_url(&env, &url, &t, &["--audience", AUD])
        .assert()
        .success();
    assert_eq!(mock.calls(), 2, "the stale entry must be fetched again");
}

#[test]
fn a_corrupt_cache_entry_is_ignored_and_replaced() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let mock = serve_keys(&server, TEST_JWKS, Some(3600));
    let url = server.url(CERTS);
    let path = cache_file(&env, &url);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, "{\"url\": \"torn").unwrap();
    let t = token(json!({}));
    verify_url(&env, &url, &t, &["--audience", AUD])
        .assert()
        .success();
    assert_eq!(mock.calls(), 1);
    let entry: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(entry["body"], TEST_JWKS);
    // A well-formed entry whose body is not a key set is ignored too.
    let garbage = json!({"url": url, "expires_at": now() + 3600, "body": "[]"});
    std::fs::write(&path, garbage.to_string()).unwrap();
    verify_url(&env, &url, &t, &["--audience", AUD])
        .assert()
        .success();
    assert_eq!(mock.calls(), 2);
}

#[test]
fn a_5xx_storm_on_the_key_set_is_exit_5() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let mock = server.mock(|when, then| {
        when.method(GET).path(CERTS);
        then.status(500).body("backend error");
    });
    let t = token(json!({}));
    let started = Instant::now();
    assert_fails(
        &mut verify_url(&env, &server.url(CERTS), &t, &["--timeout", "1"]),
        5,
        &format!("key set failed ({}): HTTP 500", server.url(CERTS)),
        &t,
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(mock.calls() >= 2, "expected retries, saw {}", mock.calls());
}

#[test]
fn a_key_set_that_is_not_a_jwks_is_exit_5() {
    let env = TestEnv::new();
    let t = token(json!({}));
    for body in [
        "<html>captive portal</html>",
        "{\"abc\": \"-----BEGIN CERTIFICATE-----\\n\"}",
        "{\"keys\": 5}",
    ] {
        let server = MockServer::start();
        server.mock(|when, then| {
            when.method(GET).path(CERTS);
            then.status(200).body(body);
        });
        let stderr = assert_fails(
            &mut verify_url(&env, &server.url(CERTS), &t, &[]),
            5,
            &format!("key set failed ({}): not a JWK set", server.url(CERTS)),
            &t,
        );
        assert!(!stderr.contains("captive"), "{stderr}");
    }
}

#[test]
fn a_missing_key_set_is_exit_5() {
    let env = TestEnv::new();
    let server = MockServer::start();
    server.mock(|when, then| {
        when.method(GET).path(CERTS);
        then.status(404).body("Not Found");
    });
    let t = token(json!({}));
    assert_fails(
        &mut verify_url(&env, &server.url(CERTS), &t, &[]),
        5,
        "HTTP 404",
        &t,
    );
}

#[test]
fn an_unreachable_key_set_is_exit_5() {
    let env = TestEnv::new();
    let t = token(json!({}));
    assert_fails(
        &mut verify_url(&env, "http://127.0.0.1:9/certs", &t, &["--timeout", "1"]),
        5,
        "key set unreachable (http://127.0.0.1:9/certs)",
        &t,
    );
}

#[test]
fn a_bad_jwks_file_is_exit_3_naming_the_file() {
    let env = TestEnv::new();
    let t = token(json!({}));
    let bad = env.write("bad.json", "{not json");
    let missing = env.path().join("missing.json");
    for (path, expected) in [(bad, "not a JWK set"), (missing, "no such file")] {
        let stderr = assert_fails(
            env.cmd()
                .args(["decode", "--verify", "--jwks"])
                .arg(&path)
                .arg(&t),
            3,
            expected,
            &t,
        );
        assert!(stderr.contains(&path.display().to_string()), "{stderr}");
    }
}

#[test]
fn default_key_sets_follow_the_algorithm() {
    // Without --jwks-url, RS256 goes to Google's certs and ES256 to IAP's keys. An HTTPS proxy on
    // loopback shows where the request was headed without anything leaving this machine.
    let env = TestEnv::new();
    for (t, host, url) in [
        (
            token(json!({})),
            "www.googleapis.com:443",
            "https://www.googleapis.com/oauth2/v3/certs",
        ),
        (
            iap_token(json!({})),
            "www.gstatic.com:443",
            "https://www.gstatic.com/iap/verify/public_key-jwk",
        ),
    ] {
        let proxy = FakeProxy::start();
        assert_fails(
            env.cmd()
                .env("HTTPS_PROXY", proxy.url())
                // An empty variable counts as unset.
                .env("IDTOK_JWKS_URL", "")
                .args(["decode", "--verify", "--timeout", "1", &t]),
            5,
            &format!("key set unreachable ({url})"),
            &t,
        );
        let heads = proxy.stop();
        assert!(!heads.is_empty());
        for head in heads {
            assert!(
                head.starts_with(&format!("CONNECT {host} HTTP/1.1")),
                "{head}"
            );
        }
    }
}

/// An HTTP proxy on loopback that records the request heads it gets and refuses every tunnel.
struct FakeProxy {
    addr: String,
    stop: Arc<AtomicBool>,
    heads: Arc<Mutex<Vec<String>>>,
    thread: std::thread::JoinHandle<()>,
}

impl FakeProxy {
    fn start() -> FakeProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let thread = std::thread::spawn({
            let (stop, heads) = (stop.clone(), heads.clone());
            move || {
                let started = Instant::now();
                while !stop.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(20) {
                    match listener.accept() {
                        Ok((mut conn, _)) => {
                            conn.set_nonblocking(false).unwrap();
                            conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                            let mut head = Vec::new();
                            let mut byte = [0u8; 1];
                            while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                                match conn.read(&mut byte) {
                                    Ok(1) => head.push(byte[0]),
                                    _ => break,
                                }
                            }
                            heads
                                .lock()
                                .unwrap()
                                .push(String::from_utf8_lossy(&head).into_owned());
                            let _ = conn.write_all(
                                b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                            );
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            }
        });
        FakeProxy {
            addr,
            stop,
            heads,
            thread,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn stop(self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap();
        self.heads.lock().unwrap().clone()
    }
}

#[test]
fn an_expired_token_fails() {
    let env = TestEnv::new();
    let t = now();
    let expired = token(json!({"iat": t - 4 * 3600 - 100, "exp": t - 3 * 3600 - 100}));
    let stderr = assert_check_fails(&mut verify_offline(&env, &expired, &[]), "expiry", &expired);
    assert!(stderr.contains("expired 3h 1m ago"), "{stderr}");
    assert!(stderr.contains("--clock-skew"), "{stderr}");
    // Within the clock skew it passes; with no skew allowed it does not.
    let just = token(json!({"iat": t - 3600, "exp": t - 20}));
    verify_offline(&env, &just, &["--audience", AUD])
        .assert()
        .success();
    assert_check_fails(
        &mut verify_offline(&env, &just, &["--clock-skew", "0"]),
        "expiry",
        &just,
    );
}

#[test]
fn a_token_without_exp_fails() {
    let env = TestEnv::new();
    let (_, mut claims) = jwt_parts(&token(json!({})));
    claims.as_object_mut().unwrap().remove("exp");
    let t = sign_rs256(TEST_KEY, &json!({"alg": "RS256", "kid": TEST_KID}), &claims);
    assert_check_fails(&mut verify_offline(&env, &t, &[]), "expiry", &t);
}

#[test]
fn a_token_not_yet_valid_fails() {
    let env = TestEnv::new();
    let t = token(json!({"nbf": now() + 600}));
    let stderr = assert_check_fails(&mut verify_offline(&env, &t, &[]), "not-before", &t);
    assert!(stderr.contains("10m from now"), "{stderr}");
    let soon = token(json!({"nbf": now() + 30}));
    verify_offline(&env, &soon, &["--audience", AUD])
        .assert()
        .success();
}

#[test]
fn a_token_issued_in_the_future_fails_beyond_the_skew() {
    let env = TestEnv::new();
    let t = token(json!({"iat": now() + 600, "exp": now() + 3600}));
    let stderr = assert_check_fails(&mut verify_offline(&env, &t, &[]), "issued-at", &t);
    assert!(stderr.contains("in the future"), "{stderr}");
    assert!(
        stderr.contains("hint: check this machine's clock"),
        "{stderr}"
    );
    let slightly = token(json!({"iat": now() + 30}));
    verify_offline(&env, &slightly, &["--audience", AUD])
        .assert()
        .success();
    assert_check_fails(
        &mut verify_offline(&env, &slightly, &["--clock-skew", "0"]),
        "issued-at",
        &slightly,
    );
    verify_offline(&env, &t, &["--clock-skew", "900", "--audience", AUD])
        .assert()
        .success();
}

#[test]
fn the_issuer_must_be_google_or_the_one_given() {
    let env = TestEnv::new();
    let evil = token(json!({"iss": "https://evil.example"}));
    let stderr = assert_check_fails(&mut verify_offline(&env, &evil, &[]), "issuer", &evil);
    assert!(stderr.contains("iss is `https://evil.example`"), "{stderr}");
    verify_offline(
        &env,
        &evil,
        &["--issuer", "https://evil.example", "--audience", AUD],
    )
    .assert()
    .success();
    let bare = token(json!({"iss": "accounts.google.com"}));
    verify_offline(&env, &bare, &["--audience", AUD])
        .assert()
        .success();
    // --issuer replaces Google's issuers.
    let google = token(json!({}));
    assert_check_fails(
        &mut verify_offline(&env, &google, &["--issuer", "https://other"]),
        "issuer",
        &google,
    );
    // IAP's issuer is for ES256 assertions only, Google's for RS256 tokens only.
    let iap_as_google = token(json!({"iss": "https://cloud.google.com/iap"}));
    assert_check_fails(
        &mut verify_offline(&env, &iap_as_google, &["--audience", AUD]),
        "issuer",
        &iap_as_google,
    );
    let jwks = env.write("keys/es.jwks.json", ES256_JWKS);
    for iss in ["https://accounts.google.com", "accounts.google.com"] {
        let google_as_iap = iap_token(json!({ "iss": iss }));
        let stderr = assert_check_fails(
            env.cmd()
                .args(["decode", "--verify", "--jwks"])
                .arg(&jwks)
                .arg(&google_as_iap),
            "issuer",
            &google_as_iap,
        );
        assert!(
            stderr.contains("expected `https://cloud.google.com/iap`"),
            "{stderr}"
        );
    }
}

#[test]
fn the_audience_must_match() {
    let env = TestEnv::new();
    let t = token(json!({}));
    let stderr = assert_check_fails(
        &mut verify_offline(&env, &t, &["--audience", "https://other.a.run.app"]),
        "audience",
        &t,
    );
    assert!(
        stderr.contains(&format!(
            "aud is `{AUD}`, expected `https://other.a.run.app`"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: the audience must be exactly"),
        "{stderr}"
    );
    // An array aud passes when it holds the audience.
    let many = token(json!({"aud": ["https://a", AUD]}));
    verify_offline(&env, &many, &["--audiences", AUD])
        .assert()
        .success();
    assert_check_fails(
        &mut verify_offline(&env, &many, &["--audience", "https://b"]),
        "audience",
        &many,
    );
}

#[test]
fn the_email_must_match_and_be_verified() {
    let env = TestEnv::new();
    let t = token(json!({"email": SA, "email_verified": true}));
    let stderr = assert_check_fails(
        &mut verify_offline(&env, &t, &["--email", "other@proj.iam.gserviceaccount.com"]),
        "email",
        &t,
    );
    assert!(stderr.contains(&format!("email is `{SA}`")), "{stderr}");
    let unverified = token(json!({"email": SA, "email_verified": false}));
    let stderr = assert_check_fails(
        &mut verify_offline(&env, &unverified, &["--email", SA]),
        "email",
        &unverified,
    );
    assert!(stderr.contains("email_verified is not true"), "{stderr}");
    let without = token(json!({}));
    assert_check_fails(
        &mut verify_offline(&env, &without, &["--email", SA]),
        "email",
        &without,
    );
    verify_offline(&env, &t, &["--email", SA, "--audience", AUD])
        .assert()
        .success();
    // Google once sent email_verified as the string "true" (its tokeninfo endpoint still does), and
    // Google's Java client reads the string too: "true" passes, any other string does not.
    let string = token(json!({"email": SA, "email_verified": "true"}));
    verify_offline(&env, &string, &["--email", SA, "--audience", AUD])
        .assert()
        .success();
    for not_true in [json!("false"), json!("yes"), json!(1), json!(null)] {
        let t = token(json!({"email": SA, "email_verified": not_true}));
        let stderr = assert_check_fails(
            &mut verify_offline(&env, &t, &["--email", SA, "--audience", AUD]),
            "email",
            &t,
        );
        assert!(stderr.contains("email_verified is not true"), "{stderr}");
    }
}

#[test]
fn time_claims_must_be_numbers_and_huge_ones_do_not_overflow() {
    let env = TestEnv::new();
    let t = now();
    for (claims, check) in [
        (json!({"exp": (t + 600).to_string()}), "expiry"),
        (json!({"exp": -1}), "expiry"),
        (json!({"exp": [t + 600]}), "expiry"),
        (json!({"nbf": (t - 10).to_string()}), "not-before"),
        (json!({"iat": true}), "issued-at"),
    ] {
        let bad = token(claims);
        let stderr = assert_check_fails(
            &mut verify_offline(&env, &bad, &["--audience", AUD]),
            check,
            &bad,
        );
        assert!(
            stderr.contains("is not a number of seconds since 1970"),
            "{stderr}"
        );
    }
    // A fractional or far-future exp is a time like any other; nbf and iat far in the future are not
    // forgiven by any skew short of u64::MAX, which must not overflow either.
    for exp in [json!(t as f64 + 600.5), json!(u64::MAX), json!(1e300)] {
        let ok = token(json!({ "exp": exp }));
        verify_offline(&env, &ok, &["--audience", AUD])
            .assert()
            .success();
    }
    let future = token(json!({"nbf": u64::MAX}));
    assert_check_fails(
        &mut verify_offline(&env, &future, &["--audience", AUD]),
        "not-before",
        &future,
    );
    let skewed = token(json!({"exp": t - 7200, "iat": t - 10800}));
    verify_offline(
        &env,
        &skewed,
        &["--audience", AUD, "--clock-skew", &u64::MAX.to_string()],
    )
    .assert()
    .success();
}

#[test]
fn checks_run_in_order_and_name_the_first_failure() {
    // Expired, wrong issuer, wrong audience and wrong email at once: the issuer is reported.
    let env = TestEnv::new();
    let t = token(json!({"iss": "https://evil.example", "exp": now() - 7200, "email": "x@y"}));
    assert_check_fails(
        &mut verify_offline(&env, &t, &["--audience", "z", "--email", SA]),
        "issuer",
        &t,
    );
}

#[test]
fn without_audience_a_warning_is_printed() {
    let env = TestEnv::new();
    let t = token(json!({}));
    let out = verify_offline(&env, &t, &[]).assert().success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        stderr.starts_with("idtok: warning: no --audience given: any token Google signed"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        stdout.ends_with("checked iss, exp/nbf/iat (aud not checked: no --audience)\n"),
        "{stdout}"
    );
    // No warning when the audience is checked.
    verify_offline(&env, &t, &["--audience", AUD])
        .assert()
        .success()
        .stderr("");
}

#[test]
fn a_self_signed_service_account_jwt_gets_a_pointer_to_its_keys() {
    let env = TestEnv::new();
    let iat = now();
    let t = sign_rs256(
        TEST_KEY,
        &json!({"alg": "RS256", "kid": TEST_KID}),
        &json!({"iss": SA, "sub": SA, "aud": "https://pubsub.googleapis.com/", "iat": iat, "exp": iat + 3600}),
    );
    let stderr = assert_check_fails(&mut verify_offline(&env, &t, &[]), "issuer", &t);
    assert!(
        stderr.contains(&format!(
            "--issuer {SA} --jwks-url https://www.googleapis.com/service_accounts/v1/jwk/{SA}"
        )),
        "{stderr}"
    );
    verify_offline(
        &env,
        &t,
        &[
            "--issuer",
            SA,
            "--audience",
            "https://pubsub.googleapis.com/",
        ],
    )
    .assert()
    .success();
}

/// A shared cache directory (`IDTOK_CACHE_DIR=/tmp/shared`) that others can write to: whoever got there first
/// could have planted a key set of their own, so nothing in it is trusted, and a token signed with the
/// planted key does not verify.
#[cfg(unix)]
#[test]
fn a_key_set_planted_in_a_cache_directory_others_can_write_is_not_trusted() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    let server = MockServer::start();
    let mock = serve_keys(&server, TEST_JWKS, Some(3600));
    let url = server.url(CERTS);
    let shared = env.path().join("shared");
    std::fs::create_dir_all(shared.join("jwks")).unwrap();
    let planted = json!({"url": url, "expires_at": now() + 3600, "body": OTHER_JWKS});
    let digest = ring::digest::digest(&ring::digest::SHA256, url.as_bytes());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let entry = shared.join("jwks").join(format!("{hex}.json"));
    std::fs::write(&entry, planted.to_string()).unwrap();
    std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(shared.join("jwks"), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let forged = sign_rs256(
        OTHER_KEY,
        &json!({"alg": "RS256", "kid": "other-kid-2", "typ": "JWT"}),
        &json!({"iss": "https://accounts.google.com", "aud": AUD, "sub": "1", "iat": now(), "exp": now() + 600}),
    );
    let mut cmd = verify_url(&env, &url, &forged, &["--audience", AUD]);
    cmd.env("IDTOK_CACHE_DIR", &shared);
    let stderr = assert_check_fails(&mut cmd, "key", &forged);
    assert!(
        stderr.contains("warning: not using the cache directory")
            && stderr.contains("writable by others"),
        "{stderr}"
    );
    // The real key set was fetched, and nothing was written into the untrusted directory.
    assert_eq!(
        mock.calls(),
        2,
        "one fetch, one refetch for the unknown kid"
    );
    let entry: Value = serde_json::from_slice(&std::fs::read(&entry).unwrap()).unwrap();
    assert_eq!(entry["body"], OTHER_JWKS);
}

/// A cached key set that others can write to (mode 0666 in a directory they can enter) is not trusted, as a
/// token cache entry is not: whoever rewrote it could have put in a key of their own.
#[cfg(unix)]
#[test]
fn a_cached_key_set_others_can_write_is_not_trusted() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    let server = MockServer::start();
    let mock = serve_keys(&server, TEST_JWKS, Some(3600));
    let url = server.url(CERTS);
    let entry = cache_file(&env, &url);
    std::fs::create_dir_all(entry.parent().unwrap()).unwrap();
    let planted = json!({"url": url, "expires_at": now() + 3600, "body": OTHER_JWKS});
    std::fs::write(&entry, planted.to_string()).unwrap();
    std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o666)).unwrap();
    for dir in [entry.parent().unwrap(), &env.cache()] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let forged = sign_rs256(
        OTHER_KEY,
        &json!({"alg": "RS256", "kid": "other-kid-2", "typ": "JWT"}),
        &json!({"iss": "https://accounts.google.com", "aud": AUD, "sub": "1", "iat": now(), "exp": now() + 600}),
    );
    let mut cmd = verify_url(&env, &url, &forged, &["--audience", AUD, "-v"]);
    let stderr = assert_check_fails(&mut cmd, "key", &forged);
    assert!(stderr.contains("mode 666 is not private"), "{stderr}");
    assert!(mock.calls() >= 1, "the real key set must be fetched");
    let entry_mode = std::fs::metadata(&entry).unwrap().permissions().mode() & 0o777;
    assert_eq!(entry_mode, 0o600, "the replacement is private");
}

#[test]
fn control_characters_from_the_token_never_reach_the_terminal() {
    // A hostile `iss` with an escape sequence and a carriage return must be shown escaped, not obeyed.
    let env = TestEnv::new();
    let evil = token(json!({"iss": "https://evil.example\u{1b}[2J\rok"}));
    let stderr = assert_check_fails(&mut verify_offline(&env, &evil, &[]), "issuer", &evil);
    assert!(
        !stderr.contains('\u{1b}') && !stderr.contains('\r'),
        "{stderr:?}"
    );
    assert!(
        stderr.contains("iss is `https://evil.example\\u{1b}[2J\\rok`"),
        "{stderr}"
    );
}
