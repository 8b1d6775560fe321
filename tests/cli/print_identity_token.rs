//! `idtok print-identity-token` over every credential type, against stand-in token and IAM endpoints.

use httpmock::prelude::*;
use predicates::prelude::*;
use serde_json::{Value, json};

use crate::support::*;

fn assert_no_secrets(stderr: &[u8]) {
    let stderr = String::from_utf8_lossy(stderr);
    for secret in [
        USER_CLIENT_SECRET,
        USER_REFRESH_TOKEN,
        ACCESS_TOKEN,
        "MIIE",
        "PRIVATE KEY",
    ] {
        assert!(
            !stderr.contains(secret),
            "secret `{secret}` in stderr: {stderr}"
        );
    }
}

// ---- service account keys ----

#[test]
fn service_account_key_default_audience_is_gclouds_client_id() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let token_uri = server.url("/token");
    let key = env.write_json("key.json", &sa_key(&token_uri));
    let token = google_id_token(
        GCLOUD_AUD,
        json!({"email": SA_EMAIL, "email_verified": true}),
    );
    let bodies = Bodies::default();
    let mock = token_endpoint(&server, &bodies, json!({ "id_token": token }));
    let out = env
        .cmd()
        .arg("print-identity-token")
        .arg("--credential-file-override")
        .arg(&key)
        .assert()
        .success();
    assert_eq!(out.get_output().stdout, format!("{token}\n").as_bytes());
    assert!(out.get_output().stderr.is_empty());
    mock.assert();
    let claims = check_jwt_bearer(&bodies.one(), &token_uri);
    assert_eq!(claims["target_audience"], GCLOUD_AUD);
    assert_eq!(claims.as_object().unwrap().len(), 5, "{claims}");
}

#[test]
fn service_account_key_with_audience_and_json_output() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let token_uri = server.url("/token");
    let key = env.write_json("key.json", &sa_key(&token_uri));
    let aud = "https://svc-xyz.a.run.app";
    let token = google_id_token(aud, json!({"email": SA_EMAIL, "email_verified": true}));
    let bodies = Bodies::default();
    let mock = token_endpoint(&server, &bodies, json!({ "id_token": token }));
    let out = env
        .cmd()
        .env("GOOGLE_APPLICATION_CREDENTIALS", &key)
        .args(["print-identity-token", "--audiences", aud, "-o", "json"])
        .assert()
        .success();
    mock.assert();
    let claims = check_jwt_bearer(&bodies.one(), &token_uri);
    assert_eq!(claims["target_audience"], aud);
    let v: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["token"], token);
    assert_eq!(v["source"], "service_account");
    assert_eq!(v["principal"], SA_EMAIL);
    assert_eq!(v["audience"], aud);
    assert_eq!(v["email"], SA_EMAIL);
    assert_eq!(v["cached"], false);
}

#[test]
fn service_account_include_email_sends_nothing_more() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let token_uri = server.url("/token");
    let key = env.write_json("key.json", &sa_key(&token_uri));
    let token = google_id_token("aud", json!({"email": SA_EMAIL}));
    let bodies = Bodies::default();
    let mock = token_endpoint(&server, &bodies, json!({ "id_token": token }));
    env.cmd()
        .env("GOOGLE_APPLICATION_CREDENTIALS", &key)
        .args([
            "print-identity-token",
            "--audiences",
            "aud",
            "--include-email",
        ])
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    mock.assert();
    let claims = check_jwt_bearer(&bodies.one(), &token_uri);
    assert_eq!(claims["target_audience"], "aud");
    assert_eq!(claims.as_object().unwrap().len(), 5, "{claims}");
}

#[test]
fn token_format_needs_the_metadata_server() {
    let env = TestEnv::new();
    let key = env.write_json("key.json", &sa_key("http://127.0.0.1:9/token"));
    for args in [
        &["--token-format", "full"][..],
        &["--token-format", "standard"][..],
        &["--token-format", "full", "--include-license"][..],
    ] {
        env.cmd()
            .env("GOOGLE_APPLICATION_CREDENTIALS", &key)
            .arg("print-identity-token")
            .args(args)
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::contains(
                "Invalid account type for `--token-format` or `--include-license`. Requires a valid GCE service account.",
            ));
    }
}

#[test]
fn include_license_needs_full_format() {
    let env = TestEnv::new();
    env.cmd()
        .args(["print-identity-token", "--include-license"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "`--include-license` can only be specified when `--token-format=full`",
        ));
}

#[test]
fn plain_http_token_uri_to_another_host_is_refused_before_sending() {
    let env = TestEnv::new();
    let key = env.write_json("key.json", &sa_key("http://oauth2.example.com/token"));
    env.cmd()
        .env("GOOGLE_APPLICATION_CREDENTIALS", &key)
        .args(["print-identity-token", "-v"])
        .assert()
        .code(3)
        .stdout("")
        .stderr(predicate::str::contains(
            "refusing to send a signed assertion over plain http to http://oauth2.example.com/token",
        ))
        .stderr(predicate::str::contains("http://oauth2.example.com/token ->").not());
}

#[test]
fn invalid_grant_for_a_key_is_exit_4_with_a_hint() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let key = env.write_json("key.json", &sa_key(&server.url("/token")));
    let mock = server.mock(|when, then| {
        when.method(POST).path("/token");
        then.status(400).json_body(json!({
            "error": "invalid_grant",
            "error_description": "Invalid JWT Signature."
        }));
    });
    let out = env
        .cmd()
        .env("GOOGLE_APPLICATION_CREDENTIALS", &key)
        .args(["print-identity-token", "-vv"])
        .assert()
        .code(4)
        .stdout("")
        .stderr(predicate::str::contains(
            "invalid_grant: Invalid JWT Signature.",
        ))
        .stderr(predicate::str::contains(format!(
            "gcloud iam service-accounts keys list --iam-account {SA_EMAIL}"
        )));
    mock.assert_calls(1);
    assert_no_secrets(&out.get_output().stderr);
}

// ---- user logins ----

#[test]
fn user_login_sends_no_audience_and_prints_the_logins_id_token() {
    let env = TestEnv::new();
    let server = MockServer::start();
    env.adc(&user_login(&server.url("/token")));
    let token = google_id_token(
        USER_CLIENT_ID,
        json!({"email": "me@example.com", "email_verified": true}),
    );
    let bodies = Bodies::default();
    let mock = token_endpoint(
        &server,
        &bodies,
        json!({
            "access_token": ACCESS_TOKEN,
            "expires_in": 3599,
            "scope": "openid https://www.googleapis.com/auth/userinfo.email",
            "token_type": "Bearer",
            "id_token": token,
        }),
    );
    let out = env
        .cmd()
        .args(["print-identity-token", "-o", "json"])
        .assert()
        .success();
    mock.assert();
    check_refresh(&bodies.one(), None);
    let v: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["token"], token);
    assert_eq!(v["source"], "authorized_user");
    assert_eq!(v["principal"], "me@example.com");
    assert_eq!(v["audience"], USER_CLIENT_ID);
    assert_no_secrets(&out.get_output().stderr);
}

#[test]
fn user_login_with_audience_sends_audience() {
    let env = TestEnv::new();
    let server = MockServer::start();
    env.adc(&user_login(&server.url("/token")));
    let iap = "1234-abc.apps.googleusercontent.com";
    let token = google_id_token(iap, json!({"email": "me@example.com"}));
    let bodies = Bodies::default();
    let mock = token_endpoint(
        &server,
        &bodies,
        json!({"access_token": ACCESS_TOKEN, "id_token": token}),
    );
    env.cmd()
        .args(["print-identity-token", "--audiences", iap])
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    mock.assert();
    check_refresh(&bodies.one(), Some(iap));
}

#[test]
fn user_login_whose_audience_is_ignored_is_not_printed() {
    let env = TestEnv::new();
    let server = MockServer::start();
    env.adc(&user_login(&server.url("/token")));
    let token = google_id_token(USER_CLIENT_ID, json!({}));
    let bodies = Bodies::default();
    let mock = token_endpoint(
        &server,
        &bodies,
        json!({"access_token": ACCESS_TOKEN, "id_token": token}),
    );
    let out = env
        .cmd()
        .args(["print-identity-token", "--audiences", "https://svc.example"])
        .assert()
        .code(3)
        .stdout("")
        .stderr(predicate::str::contains(
            "the token endpoint ignored audience=https://svc.example",
        ))
        .stderr(predicate::str::contains("--impersonate-service-account SA"));
    mock.assert();
    assert_no_token(&out.get_output().stderr, &token);
}

#[test]
fn user_login_refusing_an_audience_hints_at_impersonation() {
    let env = TestEnv::new();
    let server = MockServer::start();
    env.adc(&user_login(&server.url("/token")));
    let mock = server.mock(|when, then| {
        when.method(POST).path("/token");
        then.status(400).json_body(json!({
            "error": "invalid_request",
            "error_description": "Invalid audience"
        }));
    });
    env.cmd()
        .args(["print-identity-token", "--audiences", "https://svc.example"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("invalid_request: Invalid audience"))
        .stderr(predicate::str::contains(
            "hint: for any other audience, impersonate a service account: `idtok print-identity-token --impersonate-service-account SA --audiences AUD`",
        ));
    mock.assert();
}

#[test]
fn revoked_login_is_exit_4_with_login_hint() {
    let env = TestEnv::new();
    let server = MockServer::start();
    env.adc(&user_login(&server.url("/token")));
    let mock = server.mock(|when, then| {
        when.method(POST).path("/token");
        then.status(400).json_body(json!({
            "error": "invalid_grant",
            "error_description": "Token has been expired or revoked."
        }));
    });
    let out = env
        .cmd()
        .args(["print-identity-token", "-vv"])
        .assert()
        .code(4)
        .stdout("")
        .stderr(predicate::str::contains(
            "invalid_grant: Token has been expired or revoked.",
        ))
        .stderr(predicate::str::contains(
            "hint: the refresh token has expired or was revoked; log in again: `gcloud auth application-default login`",
        ));
    mock.assert();
    assert_no_secrets(&out.get_output().stderr);
}

#[test]
fn reauthentication_is_explained() {
    let env = TestEnv::new();
    let server = MockServer::start();
    env.adc(&user_login(&server.url("/token")));
    server.mock(|when, then| {
        when.method(POST).path("/token");
        then.status(400).json_body(json!({
            "error": "invalid_grant",
            "error_description": "reauth related error (invalid_rapt)",
            "error_subtype": "invalid_rapt"
        }));
    });
    env.cmd()
        .arg("print-identity-token")
        .assert()
        .code(4)
        .stderr(predicate::str::contains("(invalid_rapt)"))
        .stderr(predicate::str::contains(
            "sign in again (reauthentication); log in again: `gcloud auth application-default login`",
        ));
}

#[test]
fn invalid_client_is_exit_4() {
    let env = TestEnv::new();
    let server = MockServer::start();
    env.adc(&user_login(&server.url("/token")));
    server.mock(|when, then| {
        when.method(POST).path("/token");
        then.status(401).json_body(json!({
            "error": "invalid_client",
            "error_description": "The OAuth client was not found."
        }));
    });
    env.cmd()
        .arg("print-identity-token")
        .assert()
        .code(4)
        .stderr(predicate::str::contains(
            "invalid_client: The OAuth client was not found.",
        ))
        .stderr(predicate::str::contains(format!(
            "the OAuth client {USER_CLIENT_ID}"
        )));
}

#[test]
fn user_login_without_openid_scope_is_explained() {
    let env = TestEnv::new();
    let server = MockServer::start();
    env.adc(&user_login(&server.url("/token")));
    let bodies = Bodies::default();
    token_endpoint(
        &server,
        &bodies,
        json!({"access_token": ACCESS_TOKEN, "expires_in": 3599}),
    );
    env.cmd()
        .arg("print-identity-token")
        .assert()
        .code(3)
        .stdout("")
        .stderr(predicate::str::contains("without the `openid` scope"));
}

// ---- impersonation ----

#[test]
fn impersonated_service_account_file_with_delegates() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let token_uri = server.url("/token");
    let delegate = "middle@proj.iam.gserviceaccount.com";
    let file = env.write_json(
        "imp.json",
        &impersonated_file(
            sa_key(&token_uri),
            "https://iamcredentials.googleapis.com",
            TARGET,
            &[delegate],
        ),
    );
    let token = google_id_token("https://svc.example", json!({}));
    let token_bodies = Bodies::default();
    let iam_bodies = Bodies::default();
    let token_mock = token_endpoint(
        &server,
        &token_bodies,
        json!({"access_token": ACCESS_TOKEN, "expires_in": 3599, "token_type": "Bearer"}),
    );
    let iam_mock = iam_endpoint(&server, TARGET, ACCESS_TOKEN, &iam_bodies, &token);
    let out = env
        .cmd()
        .env("GOOGLE_APPLICATION_CREDENTIALS", &file)
        .env(
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS",
            server.base_url(),
        )
        .args([
            "print-identity-token",
            "--audiences",
            "https://svc.example",
            "-o",
            "json",
        ])
        .assert()
        .success();
    token_mock.assert();
    iam_mock.assert();
    let claims = check_jwt_bearer(&token_bodies.one(), &token_uri);
    assert_eq!(
        claims["scope"],
        "https://www.googleapis.com/auth/cloud-platform"
    );
    assert!(claims.get("target_audience").is_none());
    let body: Value = serde_json::from_str(&iam_bodies.one()).unwrap();
    assert_eq!(
        body,
        json!({
            "audience": "https://svc.example",
            "includeEmail": false,
            "delegates": [format!("projects/-/serviceAccounts/{delegate}")],
        })
    );
    let v: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["token"], token);
    assert_eq!(v["source"], "impersonated");
    assert_eq!(v["principal"], SA_EMAIL);
    assert_no_secrets(&out.get_output().stderr);
}

#[test]
fn impersonated_file_uses_its_own_iam_endpoint_without_override() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let file = env.write_json(
        "imp.json",
        &impersonated_file(
            user_login(&server.url("/token")),
            &server.base_url(),
            TARGET,
            &[],
        ),
    );
    let token = google_id_token(GCLOUD_AUD, json!({"email": TARGET}));
    let token_bodies = Bodies::default();
    let iam_bodies = Bodies::default();
    token_endpoint(
        &server,
        &token_bodies,
        json!({"access_token": ACCESS_TOKEN}),
    );
    let iam_mock = iam_endpoint(&server, TARGET, ACCESS_TOKEN, &iam_bodies, &token);
    env.cmd()
        .env("GOOGLE_APPLICATION_CREDENTIALS", &file)
        .args(["print-identity-token", "--include-email"])
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    iam_mock.assert();
    check_refresh(&token_bodies.one(), None);
    let body: Value = serde_json::from_str(&iam_bodies.one()).unwrap();
    assert_eq!(body, json!({"audience": GCLOUD_AUD, "includeEmail": true}));
}

#[test]
fn impersonate_service_account_chain_last_is_target() {
    let env = TestEnv::new();
    let server = MockServer::start();
    env.adc(&user_login(&server.url("/token")));
    let token = google_id_token("aud", json!({}));
    let token_bodies = Bodies::default();
    let iam_bodies = Bodies::default();
    token_endpoint(
        &server,
        &token_bodies,
        json!({"access_token": ACCESS_TOKEN}),
    );
    let iam_mock = iam_endpoint(&server, TARGET, ACCESS_TOKEN, &iam_bodies, &token);
    env.cmd()
        .env("CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS", server.url("/"))
        .args([
            "print-identity-token",
            "--audiences",
            "aud",
            "--impersonate-service-account",
            &format!("a@proj.iam.gserviceaccount.com,projects/-/serviceAccounts/b@proj.iam.gserviceaccount.com,{TARGET}"),
        ])
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    iam_mock.assert();
    check_refresh(&token_bodies.one(), None);
    let body: Value = serde_json::from_str(&iam_bodies.one()).unwrap();
    assert_eq!(
        body,
        json!({
            "audience": "aud",
            "includeEmail": false,
            "delegates": [
                "projects/-/serviceAccounts/a@proj.iam.gserviceaccount.com",
                "projects/-/serviceAccounts/b@proj.iam.gserviceaccount.com",
            ],
        })
    );
}

#[test]
fn impersonation_from_the_environment_variable() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let key = env.write_json("key.json", &sa_key(&server.url("/token")));
    let token = google_id_token(GCLOUD_AUD, json!({}));
    let iam_bodies = Bodies::default();
    access_token_endpoint(&server);
    let iam_mock = iam_endpoint(&server, TARGET, ACCESS_TOKEN, &iam_bodies, &token);
    env.cmd()
        .env("GOOGLE_APPLICATION_CREDENTIALS", &key)
        .env(
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS",
            server.base_url(),
        )
        .env("CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT", TARGET)
        .args(["print-identity-token"])
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    iam_mock.assert();
    let body: Value = serde_json::from_str(&iam_bodies.one()).unwrap();
    assert_eq!(body, json!({"audience": GCLOUD_AUD, "includeEmail": false}));
}

#[test]
fn token_format_with_impersonation_is_a_usage_error() {
    let env = TestEnv::new();
    env.cmd()
        .env("GCE_METADATA_HOST", "127.0.0.1:9")
        .args([
            "print-identity-token",
            "--impersonate-service-account",
            TARGET,
            "--token-format",
            "full",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "Invalid account type for `--token-format`",
        ));
}

#[test]
fn self_impersonation_is_refused_before_anything_is_sent() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let key = env.write_json("key.json", &sa_key(&server.url("/token")));
    let any = server.mock(|when, then| {
        when.any_request();
        then.status(500);
    });
    env.cmd()
        .env("GOOGLE_APPLICATION_CREDENTIALS", &key)
        .env("CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS", server.base_url())
        .args([
            "print-identity-token",
            "--audiences",
            "https://svc.example",
            "--impersonate-service-account",
            SA_EMAIL,
        ])
        .assert()
        .code(3)
        .stdout("")
        .stderr(predicate::str::contains(format!(
            "refusing to impersonate {SA_EMAIL} with its own credentials"
        )))
        .stderr(predicate::str::contains(
            "hint: the same token is available directly: `idtok print-identity-token --audiences https://svc.example`",
        ))
        .stderr(predicate::str::contains("--allow-self-impersonation"));
    any.assert_calls(0);
}

#[test]
fn self_impersonation_allowed_warns() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let key = env.write_json("key.json", &sa_key(&server.url("/token")));
    let token = google_id_token("aud", json!({}));
    access_token_endpoint(&server);
    let iam_mock = iam_endpoint(&server, SA_EMAIL, ACCESS_TOKEN, &Bodies::default(), &token);
    env.cmd()
        .env("GOOGLE_APPLICATION_CREDENTIALS", &key)
        .env(
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS",
            server.base_url(),
        )
        .args([
            "print-identity-token",
            "--audiences",
            "aud",
            "--impersonate-service-account",
            SA_EMAIL,
            "--allow-self-impersonation",
        ])
        .assert()
        .success()
        .stdout(format!("{token}\n"))
        .stderr(predicate::str::contains(format!(
            "idtok: warning: {SA_EMAIL} is impersonating itself (--allow-self-impersonation)"
        )));
    iam_mock.assert();
}

#[test]
fn forbidden_generate_id_token_names_permission_role_target_and_caller() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let key = env.write_json("key.json", &sa_key(&server.url("/token")));
    access_token_endpoint(&server);
    let iam = server.mock(|when, then| {
        when.method(POST)
            .path(generate_id_token_path(TARGET));
        then.status(403).json_body(json!({"error": {
            "code": 403,
            "message": "Permission 'iam.serviceAccounts.getOpenIdToken' denied on resource (or it may not exist).",
            "status": "PERMISSION_DENIED",
            "details": [{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "IAM_PERMISSION_DENIED",
                "domain": "iam.googleapis.com",
                "metadata": {"permission": "iam.serviceAccounts.getOpenIdToken"}
            }]
        }}));
    });
    let out = env
        .cmd()
        .env("GOOGLE_APPLICATION_CREDENTIALS", &key)
        .env("CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS", server.base_url())
        .args(["print-identity-token", "--impersonate-service-account", TARGET])
        .assert()
        .code(4)
        .stdout("")
        .stderr(predicate::str::contains("iam.serviceAccounts.getOpenIdToken"))
        .stderr(predicate::str::contains(format!(
            "hint: the caller serviceAccount:{SA_EMAIL} needs roles/iam.serviceAccountOpenIdTokenCreator on {TARGET}"
        )))
        .stderr(predicate::str::contains(format!(
            "gcloud iam service-accounts add-iam-policy-binding {TARGET} --member=serviceAccount:{SA_EMAIL} --role=roles/iam.serviceAccountOpenIdTokenCreator"
        )));
    iam.assert();
    assert_no_secrets(&out.get_output().stderr);
}

// ---- the metadata server through the chain ----

#[test]
fn metadata_server_with_token_format_and_license() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let token = google_id_token(GCLOUD_AUD, json!({"email": SA_EMAIL}));
    let mock = server.mock(|when, then| {
        when.method(GET)
            .path(IDENTITY)
            .header("Metadata-Flavor", "Google")
            .query_param("audience", GCLOUD_AUD)
            .query_param("format", "full")
            .query_param("licenses", "TRUE");
        then.status(200).body(&token);
    });
    let out = env
        .cmd()
        .env("GCE_METADATA_HOST", server.address().to_string())
        .args([
            "print-identity-token",
            "--token-format",
            "full",
            "--include-license",
            "-o",
            "json",
        ])
        .assert()
        .success();
    mock.assert();
    let v: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["source"], "metadata");
    assert_eq!(v["principal"], SA_EMAIL);
}

#[test]
fn metadata_server_include_email_means_full_format() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let token = google_id_token("aud", json!({"email": SA_EMAIL}));
    let mock = server.mock(|when, then| {
        when.path(IDENTITY)
            .query_param("audience", "aud")
            .query_param("format", "full")
            .query_param_missing("licenses");
        then.status(200).body(&token);
    });
    env.cmd()
        .env("GCE_METADATA_HOST", server.address().to_string())
        .args([
            "print-identity-token",
            "--audiences",
            "aud",
            "--include-email",
        ])
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    mock.assert();
}

#[test]
fn very_verbose_shows_requests_but_no_secret() {
    let env = TestEnv::new();
    let server = MockServer::start();
    env.adc(&user_login(&server.url("/token")));
    let user_token = google_id_token(USER_CLIENT_ID, json!({"email": "me@example.com"}));
    let token = google_id_token("aud", json!({}));
    token_endpoint(
        &server,
        &Bodies::default(),
        json!({"access_token": ACCESS_TOKEN, "id_token": user_token}),
    );
    iam_endpoint(&server, TARGET, ACCESS_TOKEN, &Bodies::default(), &token);
    let out = env
        .cmd()
        .env(
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS",
            server.base_url(),
        )
        .args(["print-identity-token", "--audiences", "aud", "-vv"])
        .args(["--impersonate-service-account", TARGET])
        .assert()
        .success()
        .stdout(format!("{token}\n"))
        .stderr(predicate::str::contains(format!(
            "POST {} -> 200",
            server.url("/token")
        )))
        .stderr(predicate::str::contains(format!(
            "POST {}/v1/projects/-/serviceAccounts/{TARGET}:generateIdToken -> 200",
            server.base_url()
        )))
        .stderr(predicate::str::contains("Authorization: Bearer y… ("));
    let stderr = &out.get_output().stderr;
    assert_no_secrets(stderr);
    assert_no_token(stderr, &token);
    assert_no_token(stderr, &user_token);
}
