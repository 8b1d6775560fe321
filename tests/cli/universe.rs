//! Universe domains: `universe_domain` in credential files and GOOGLE_CLOUD_UNIVERSE_DOMAIN choose the IAM
//! and STS hosts, and a service account key outside googleapis.com mints through IAM with a self-signed JWT.
//!
//! Hosts in a made-up universe (`example.invalid`) are never contacted: HTTPS_PROXY points at a closed
//! loopback port, so the request dies on 127.0.0.1 and only its URL (shown by `-v`) is checked.

use httpmock::prelude::*;
use predicates::prelude::*;
use serde_json::{Value, json};

use crate::support::*;

const UNIVERSE: &str = "example.invalid";
const AUD: &str = "https://svc.example.invalid";
/// A loopback port nothing listens on: every https request goes to this "proxy" and is refused there.
const DEAD_PROXY: &str = "http://127.0.0.1:9";
const FED_SA: &str = "fed@proj.iam.gserviceaccount.com";
const PROVIDER: &str =
    "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q";

fn universe_key(token_uri: &str, universe: Option<&str>) -> Value {
    let mut key = sa_key(token_uri);
    match universe {
        Some(u) => key["universe_domain"] = json!(u),
        None => {
            key.as_object_mut().unwrap().remove("universe_domain");
        }
    }
    key
}

/// Checks a self-signed JWT: signed by the test key with its kid, `iss` = `sub` = the email, the scope, no
/// `aud`, an hour of life.
fn assert_self_signed(jwt: &str, scope: &str) {
    let (header, claims) = verify_with_test_key(jwt);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], SA_KEY_ID);
    assert_eq!(claims["iss"], SA_EMAIL);
    assert_eq!(claims["sub"], SA_EMAIL);
    assert_eq!(claims["scope"], scope);
    assert!(claims.get("aud").is_none(), "{claims}");
    assert!(claims.get("target_audience").is_none(), "{claims}");
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        3600
    );
}

#[test]
fn key_outside_googleapis_mints_through_iam_with_a_self_signed_jwt() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let token_endpoint = server.mock(|when, then| {
        when.path("/token");
        then.status(500);
    });
    let token = google_id_token(AUD, json!({"email": SA_EMAIL, "email_verified": true}));
    let authorization = Bodies::default();
    let matcher = authorization.bearer_matcher();
    let iam = server.mock(|when, then| {
        when.method(POST)
            .path(generate_id_token_path(SA_EMAIL))
            // Keys always carry the email, as google-auth asks here too.
            .json_body(json!({"audience": AUD, "includeEmail": true}))
            .is_true(matcher);
        then.status(200).json_body(json!({ "token": token }));
    });
    let file = env.write_json(
        "key.json",
        &universe_key(&server.url("/token"), Some(UNIVERSE)),
    );
    let out = env
        .cmd()
        .env(
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS",
            server.base_url(),
        )
        .args(["print-identity-token", "--credential-file-override"])
        .arg(&file)
        .args(["--audiences", AUD, "-o", "json"])
        .assert()
        .success();
    let v: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["token"], token.as_str());
    assert_eq!(v["source"], "service_account");
    assert_eq!(v["principal"], SA_EMAIL);
    iam.assert();
    token_endpoint.assert_calls(0);
    assert_self_signed(&authorization.one(), "https://www.googleapis.com/auth/iam");
}

#[test]
fn key_outside_googleapis_goes_to_the_iam_host_of_its_universe() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let token_endpoint = server.mock(|when, then| {
        when.path("/token");
        then.status(500);
    });
    let file = env.write_json(
        "key.json",
        &universe_key(&server.url("/token"), Some(UNIVERSE)),
    );
    let out = env
        .cmd()
        .env("HTTPS_PROXY", DEAD_PROXY)
        .args(["print-identity-token", "-v", "--timeout", "1"])
        .arg("--credential-file-override")
        .arg(&file)
        .args(["--audiences", AUD])
        .assert()
        .code(5)
        .stdout("")
        .stderr(predicate::str::contains(format!(
            "POST https://iamcredentials.{UNIVERSE}/v1/projects/-/serviceAccounts/{SA_EMAIL}:generateIdToken"
        )));
    let stderr = String::from_utf8_lossy(&out.get_output().stderr);
    assert!(
        !stderr.contains("iamcredentials.googleapis.com")
            && !stderr.contains("oauth2.googleapis.com"),
        "{stderr}"
    );
    token_endpoint.assert_calls(0);
}

#[test]
fn environment_universe_applies_to_a_key_that_names_none() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let token_endpoint = server.mock(|when, then| {
        when.path("/token");
        then.status(500);
    });
    let file = env.write_json("key.json", &universe_key(&server.url("/token"), None));
    env.cmd()
        .env("HTTPS_PROXY", DEAD_PROXY)
        .env("GOOGLE_CLOUD_UNIVERSE_DOMAIN", UNIVERSE)
        .args(["print-identity-token", "-v", "--timeout", "1"])
        .arg("--credential-file-override")
        .arg(&file)
        .args(["--audiences", AUD])
        .assert()
        .code(5)
        .stderr(predicate::str::contains(format!(
            "POST https://iamcredentials.{UNIVERSE}/v1/projects/-/serviceAccounts/{SA_EMAIL}:generateIdToken"
        )));
    token_endpoint.assert_calls(0);
}

#[test]
fn key_that_names_googleapis_ignores_the_environment_universe() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let token = google_id_token(AUD, json!({"email": SA_EMAIL}));
    let grant = server.mock(|when, then| {
        when.method(POST).path("/token");
        then.status(200).json_body(json!({ "id_token": token }));
    });
    let file = env.write_json(
        "key.json",
        &universe_key(&server.url("/token"), Some("googleapis.com")),
    );
    env.cmd()
        .env("GOOGLE_CLOUD_UNIVERSE_DOMAIN", UNIVERSE)
        .args(["print-identity-token", "--credential-file-override"])
        .arg(&file)
        .args(["--audiences", AUD])
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    grant.assert();
}

#[test]
fn impersonation_from_a_universe_key_uses_a_self_signed_access_token() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let token = google_id_token(AUD, json!({"email": TARGET}));
    let authorization = Bodies::default();
    let matcher = authorization.bearer_matcher();
    let iam = server.mock(|when, then| {
        when.method(POST)
            .path(generate_id_token_path(TARGET))
            .is_true(matcher);
        then.status(200).json_body(json!({ "token": token }));
    });
    let file = env.write_json(
        "key.json",
        &universe_key(&server.url("/token"), Some(UNIVERSE)),
    );
    env.cmd()
        .env(
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS",
            server.base_url(),
        )
        .args(["impersonate", "--credential-file-override"])
        .arg(&file)
        .args(["--service-account", TARGET, "--audience", AUD])
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    iam.assert();
    assert_self_signed(
        &authorization.one(),
        "https://www.googleapis.com/auth/cloud-platform",
    );
}

/// An external_account file in a universe, with its subject token in a file and no token_url.
fn federated_in_universe(env: &TestEnv, universe: Option<&str>) -> std::path::PathBuf {
    let subject = env.write("oidc.jwt", "eyJ.subject.sig");
    let mut cfg = json!({
        "type": "external_account",
        "audience": PROVIDER,
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "service_account_impersonation_url": format!(
            "https://iamcredentials.{UNIVERSE}/v1/projects/-/serviceAccounts/{FED_SA}:generateAccessToken"
        ),
        "credential_source": {"file": subject},
    });
    if let Some(u) = universe {
        cfg["universe_domain"] = json!(u);
    }
    env.write_json("wif.json", &cfg)
}

#[test]
fn federation_without_token_url_uses_the_sts_host_of_the_files_universe() {
    let env = TestEnv::new();
    let file = federated_in_universe(&env, Some(UNIVERSE));
    env.cmd()
        .env("HTTPS_PROXY", DEAD_PROXY)
        .args(["print-identity-token", "-v", "--timeout", "1"])
        .arg("--credential-file-override")
        .arg(&file)
        .args(["--audiences", AUD])
        .assert()
        .code(5)
        .stderr(predicate::str::contains(format!(
            "POST https://sts.{UNIVERSE}/v1/token"
        )));
}

#[test]
fn federation_without_token_url_uses_the_sts_host_of_the_environment_universe() {
    let env = TestEnv::new();
    let file = federated_in_universe(&env, None);
    env.cmd()
        .env("HTTPS_PROXY", DEAD_PROXY)
        .env("GOOGLE_CLOUD_UNIVERSE_DOMAIN", UNIVERSE)
        .args(["print-identity-token", "-v", "--timeout", "1"])
        .arg("--credential-file-override")
        .arg(&file)
        .args(["--audiences", AUD])
        .assert()
        .code(5)
        .stderr(predicate::str::contains(format!(
            "POST https://sts.{UNIVERSE}/v1/token"
        )));
}

#[test]
fn federated_impersonation_calls_the_iam_host_of_the_files_universe() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let subject = env.write("oidc.jwt", "eyJ.subject.sig");
    let sts = server.mock(|when, then| {
        when.method(POST).path("/v1/token");
        then.status(200)
            .json_body(json!({"access_token": "ya29.federated", "expires_in": 3600}));
    });
    let access = server.mock(|when, then| {
        when.method(POST)
            .path(format!(
                "/v1/projects/-/serviceAccounts/{FED_SA}:generateAccessToken"
            ))
            .header("authorization", "Bearer ya29.federated");
        then.status(200)
            .json_body(json!({"accessToken": "ya29.fed-sa", "expireTime": "2099-01-01T00:00:00Z"}));
    });
    let file = env.write_json(
        "wif.json",
        &json!({
            "type": "external_account",
            "audience": PROVIDER,
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": server.url("/v1/token"),
            "service_account_impersonation_url":
                server.url(format!("/v1/projects/-/serviceAccounts/{FED_SA}:generateAccessToken")),
            "credential_source": {"file": subject},
            "universe_domain": UNIVERSE,
        }),
    );
    env.cmd()
        .env("HTTPS_PROXY", DEAD_PROXY)
        .args(["impersonate", "-v", "--timeout", "2"])
        .arg("--credential-file-override")
        .arg(&file)
        .args(["--service-account", TARGET, "--audience", AUD])
        .assert()
        .code(5)
        .stderr(predicate::str::contains(format!(
            "POST https://iamcredentials.{UNIVERSE}/v1/projects/-/serviceAccounts/{TARGET}:generateIdToken"
        )));
    sts.assert();
    access.assert();
}

/// The token cache key covers the endpoint that mints: a key outside googleapis.com that minted through one
/// IAM Credentials endpoint does not get that token back when CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS
/// names another, and a key that minted at its token_uri does not when GOOGLE_CLOUD_UNIVERSE_DOMAIN moves it
/// to IAM.
#[test]
fn the_cache_key_covers_the_iam_endpoint_and_universe_of_a_key() {
    let env = TestEnv::new();
    let oauth = MockServer::start();
    let (first, second) = (MockServer::start(), MockServer::start());
    let token = google_id_token(AUD, json!({"email": SA_EMAIL}));
    let token_endpoint = oauth.mock(|when, then| {
        when.method(POST).path("/token");
        then.status(200).json_body(json!({ "id_token": token }));
    });
    fn iam<'a>(server: &'a MockServer, token: &str) -> httpmock::Mock<'a> {
        server.mock(|when, then| {
            when.method(POST).path(format!(
                "/v1/projects/-/serviceAccounts/{SA_EMAIL}:generateIdToken"
            ));
            then.status(200).json_body(json!({ "token": token }));
        })
    }
    let (first_iam, second_iam) = (iam(&first, &token), iam(&second, &token));
    let file = env.write_json("key.json", &universe_key(&oauth.url("/token"), None));
    let run = |universe: Option<&str>, iam: &MockServer| {
        let mut cmd = env.cmd();
        if let Some(universe) = universe {
            cmd.env("GOOGLE_CLOUD_UNIVERSE_DOMAIN", universe);
        }
        cmd.env(
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS",
            iam.base_url(),
        )
        .args(["print-identity-token", "--credential-file-override"])
        .arg(&file)
        .args(["--audiences", AUD])
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    };
    run(None, &first);
    run(None, &first);
    assert_eq!(token_endpoint.calls(), 1, "the second run is a cache hit");
    run(Some(UNIVERSE), &first);
    assert_eq!(first_iam.calls(), 1, "another universe mints through IAM");
    run(Some(UNIVERSE), &first);
    assert_eq!(first_iam.calls(), 1, "and that token is cached");
    run(Some(UNIVERSE), &second);
    assert_eq!(second_iam.calls(), 1, "another IAM endpoint is another key");
    assert_eq!(token_endpoint.calls(), 1);
}
