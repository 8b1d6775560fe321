//! `idtok impersonate`: the caller's access token from the chain, then generateIdToken directly.

use httpmock::prelude::*;
use predicates::prelude::*;
use serde_json::{Value, json};

use crate::support::*;

const AUD: &str = "https://svc-xyz.a.run.app";
const MD_TOKEN: &str = "/computeMetadata/v1/instance/service-accounts/default/token";
const MD_EMAIL: &str = "/computeMetadata/v1/instance/service-accounts/default/email";

fn metadata_caller<'a>(
    server: &'a MockServer,
    email: &str,
) -> (httpmock::Mock<'a>, httpmock::Mock<'a>) {
    let token = server.mock(|when, then| {
        when.method(GET)
            .path(MD_TOKEN)
            .header("Metadata-Flavor", "Google");
        then.status(200).json_body(json!({
            "access_token": ACCESS_TOKEN,
            "expires_in": 3599,
            "token_type": "Bearer"
        }));
    });
    let email = email.to_string();
    let mail = server.mock(|when, then| {
        when.method(GET)
            .path(MD_EMAIL)
            .header("Metadata-Flavor", "Google");
        then.status(200).body(email);
    });
    (token, mail)
}

#[test]
fn service_account_key_caller_with_delegates_bare_and_prefixed() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let token_uri = server.url("/token");
    let key = env.write_json("key.json", &sa_key(&token_uri));
    let token = google_id_token(AUD, json!({"email": TARGET, "email_verified": true}));
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
        .env("CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS", server.base_url())
        .args(["impersonate", "--service-account", TARGET, "--audience", AUD, "--include-email"])
        .args([
            "--delegates",
            "a@proj.iam.gserviceaccount.com,projects/-/serviceAccounts/b@proj.iam.gserviceaccount.com",
        ])
        .arg("--credential-file-override")
        .arg(&key)
        .assert()
        .success();
    assert_eq!(out.get_output().stdout, format!("{token}\n").as_bytes());
    assert!(out.get_output().stderr.is_empty());
    token_mock.assert();
    iam_mock.assert();
    let claims = check_jwt_bearer(&token_bodies.one(), &token_uri);
    assert_eq!(
        claims["scope"],
        "https://www.googleapis.com/auth/cloud-platform"
    );
    assert_eq!(claims.as_object().unwrap().len(), 5, "{claims}");
    let body: Value = serde_json::from_str(&iam_bodies.one()).unwrap();
    assert_eq!(
        body,
        json!({
            "audience": AUD,
            "includeEmail": true,
            "delegates": [
                "projects/-/serviceAccounts/a@proj.iam.gserviceaccount.com",
                "projects/-/serviceAccounts/b@proj.iam.gserviceaccount.com",
            ],
        })
    );
}

#[test]
fn json_output_names_source_and_caller() {
    let env = TestEnv::new();
    let server = MockServer::start();
    env.adc(&user_login(&server.url("/token")));
    let user_id_token = google_id_token(USER_CLIENT_ID, json!({"email": "me@example.com"}));
    let token = google_id_token(AUD, json!({}));
    let token_bodies = Bodies::default();
    token_endpoint(
        &server,
        &token_bodies,
        json!({"access_token": ACCESS_TOKEN, "id_token": user_id_token}),
    );
    let iam_bodies = Bodies::default();
    let iam_mock = iam_endpoint(&server, TARGET, ACCESS_TOKEN, &iam_bodies, &token);
    let out = env
        .cmd()
        .env(
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS",
            server.base_url(),
        )
        .args([
            "impersonate",
            "--service-account",
            TARGET,
            "--audiences",
            AUD,
            "-o",
            "json",
        ])
        .assert()
        .success();
    iam_mock.assert();
    check_refresh(&token_bodies.one(), None);
    let body: Value = serde_json::from_str(&iam_bodies.one()).unwrap();
    assert_eq!(body, json!({"audience": AUD, "includeEmail": false}));
    let v: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["token"], token);
    assert_eq!(v["source"], "impersonated");
    assert_eq!(v["principal"], "me@example.com");
}

#[test]
fn metadata_caller_uses_token_and_email_endpoints() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let caller = "vm@proj.iam.gserviceaccount.com";
    let (md_token, md_email) = metadata_caller(&server, caller);
    let token = google_id_token(AUD, json!({}));
    let iam_bodies = Bodies::default();
    let iam_mock = iam_endpoint(&server, TARGET, ACCESS_TOKEN, &iam_bodies, &token);
    let out = env
        .cmd()
        .env("GCE_METADATA_HOST", server.address().to_string())
        .env(
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS",
            server.base_url(),
        )
        .args([
            "impersonate",
            "--service-account",
            TARGET,
            "--audience",
            AUD,
            "-o",
            "json",
        ])
        .assert()
        .success();
    md_token.assert();
    md_email.assert();
    iam_mock.assert();
    let v: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["principal"], caller);
    assert_eq!(v["source"], "impersonated");
}

#[test]
fn metadata_caller_impersonating_itself_is_refused() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let (md_token, md_email) = metadata_caller(&server, TARGET);
    let iam = server.mock(|when, then| {
        when.path_includes("generateIdToken");
        then.status(500);
    });
    env.cmd()
        .env("GCE_METADATA_HOST", server.address().to_string())
        .env("CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS", server.base_url())
        .args(["impersonate", "--service-account", TARGET, "--audience", AUD])
        .assert()
        .code(3)
        .stdout("")
        .stderr(predicate::str::contains(format!(
            "idtok: error: refusing to impersonate {TARGET} with its own credentials: Google treats a service account that can mint tokens for itself as a security vulnerability"
        )))
        .stderr(predicate::str::contains(format!(
            "hint: the same token is available directly: `idtok print-identity-token --audiences {AUD}`"
        )));
    md_token.assert();
    md_email.assert();
    iam.assert_calls(0);
}

#[test]
fn metadata_caller_impersonating_itself_allowed_with_a_warning() {
    let env = TestEnv::new();
    let server = MockServer::start();
    metadata_caller(&server, TARGET);
    let token = google_id_token(AUD, json!({}));
    let iam_mock = iam_endpoint(&server, TARGET, ACCESS_TOKEN, &Bodies::default(), &token);
    env.cmd()
        .env("GCE_METADATA_HOST", server.address().to_string())
        .env(
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS",
            server.base_url(),
        )
        .args([
            "impersonate",
            "--service-account",
            TARGET,
            "--audience",
            AUD,
            "--allow-self-impersonation",
        ])
        .assert()
        .success()
        .stdout(format!("{token}\n"))
        .stderr(predicate::str::starts_with(format!(
            "idtok: warning: {TARGET} is impersonating itself"
        )));
    iam_mock.assert();
}

#[test]
fn forbidden_names_the_metadata_callers_principal() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let caller = "vm@proj.iam.gserviceaccount.com";
    metadata_caller(&server, caller);
    server.mock(|when, then| {
        when.path_includes("generateIdToken");
        then.status(403).json_body(json!({"error": {
            "code": 403,
            "message": "The caller does not have permission",
            "status": "PERMISSION_DENIED"
        }}));
    });
    env.cmd()
        .env("GCE_METADATA_HOST", server.address().to_string())
        .env("CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS", server.base_url())
        .args(["impersonate", "--service-account", TARGET, "--audience", AUD])
        .assert()
        .code(4)
        .stderr(predicate::str::contains(format!(
            "The caller does not have permission (permission iam.serviceAccounts.getOpenIdToken on {TARGET})"
        )))
        .stderr(predicate::str::contains(format!(
            "hint: the caller serviceAccount:{caller} needs roles/iam.serviceAccountOpenIdTokenCreator on {TARGET}"
        )));
}

#[test]
fn forbidden_with_delegates_names_the_last_delegate_and_the_chain() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let key = env.write_json("key.json", &sa_key(&server.url("/token")));
    access_token_endpoint(&server);
    server.mock(|when, then| {
        when.path_includes("generateIdToken");
        then.status(403)
            .json_body(json!({"error": {"code": 403, "message": "denied"}}));
    });
    let delegate = "d@proj.iam.gserviceaccount.com";
    env.cmd()
        .env("GOOGLE_APPLICATION_CREDENTIALS", &key)
        .env("CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS", server.base_url())
        .args(["impersonate", "--service-account", TARGET, "--audience", AUD, "--delegates", delegate])
        .assert()
        .code(4)
        .stderr(predicate::str::contains(format!(
            "hint: the caller serviceAccount:{delegate} needs roles/iam.serviceAccountOpenIdTokenCreator on {TARGET}"
        )))
        .stderr(predicate::str::contains(format!(
            "hint: with delegates, serviceAccount:{SA_EMAIL} needs roles/iam.serviceAccountTokenCreator on {delegate}"
        )));
}

#[test]
fn impersonated_file_as_caller_becomes_one_delegation_chain() {
    // The file impersonates `middle`; impersonating TARGET from it calls generateIdToken once, with
    // `middle` as the last delegate, never generateAccessToken.
    let env = TestEnv::new();
    let server = MockServer::start();
    let middle = "middle@proj.iam.gserviceaccount.com";
    let file = env.write_json(
        "imp.json",
        &impersonated_file(
            sa_key(&server.url("/token")),
            &server.base_url(),
            middle,
            &[],
        ),
    );
    access_token_endpoint(&server);
    let token = google_id_token(AUD, json!({}));
    let iam_bodies = Bodies::default();
    let iam_mock = iam_endpoint(&server, TARGET, ACCESS_TOKEN, &iam_bodies, &token);
    let access = server.mock(|when, then| {
        when.path_includes("generateAccessToken");
        then.status(500);
    });
    env.cmd()
        .env("GOOGLE_APPLICATION_CREDENTIALS", &file)
        .args([
            "impersonate",
            "--service-account",
            TARGET,
            "--audience",
            AUD,
        ])
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    iam_mock.assert();
    access.assert_calls(0);
    let body: Value = serde_json::from_str(&iam_bodies.one()).unwrap();
    assert_eq!(
        body,
        json!({
            "audience": AUD,
            "includeEmail": false,
            "delegates": [format!("projects/-/serviceAccounts/{middle}")],
        })
    );
}

#[test]
fn plain_http_iam_endpoint_is_refused_before_anything_is_sent() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let key = env.write_json("key.json", &sa_key(&server.url("/token")));
    let any = server.mock(|when, then| {
        when.any_request();
        then.status(500);
    });
    env.cmd()
        .env("GOOGLE_APPLICATION_CREDENTIALS", &key)
        .env("CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS", "http://iam.example.com/")
        .args(["impersonate", "--service-account", TARGET, "--audience", AUD])
        .assert()
        .code(3)
        .stderr(predicate::str::contains(
            "refusing to send an access token over plain http to http://iam.example.com/v1/projects/-/serviceAccounts/",
        ));
    any.assert_calls(0);
}

#[test]
fn unknown_target_is_exit_4() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let key = env.write_json("key.json", &sa_key(&server.url("/token")));
    access_token_endpoint(&server);
    server.mock(|when, then| {
        when.path_includes("generateIdToken");
        then.status(404).json_body(
            json!({"error": {"code": 404, "message": "Not found; Gaia id not found for email x"}}),
        );
    });
    env.cmd()
        .env("GOOGLE_APPLICATION_CREDENTIALS", &key)
        .env(
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS",
            server.base_url(),
        )
        .args([
            "impersonate",
            "--service-account",
            TARGET,
            "--audience",
            AUD,
        ])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("Gaia id not found"))
        .stderr(predicate::str::contains(format!(
            "check the service account's email: {TARGET}"
        )));
}

#[test]
fn no_credentials_at_all_is_exit_3_with_hints() {
    let env = TestEnv::new();
    // In a private network namespace: metadata.google.internal fails to resolve without a DNS query.
    let Some(mut cmd) = env.cmd_in_private_network("") else {
        return;
    };
    cmd.args([
        "impersonate",
        "--service-account",
        TARGET,
        "--audience",
        AUD,
    ])
    .assert()
    .code(3)
    .stdout("")
    .stderr(predicate::str::contains(
        "idtok: error: no credentials found",
    ))
    .stderr(predicate::str::contains("gcloud auth login"))
    .stderr(predicate::str::contains(
        "gcloud auth application-default login",
    ))
    .stderr(predicate::str::contains("GOOGLE_APPLICATION_CREDENTIALS"));
}
