//! `external_account` credentials (workload identity federation) against stand-ins for STS, IAM
//! Credentials, a CI system's token URL and the AWS metadata server, all on loopback.

use std::time::{Duration, Instant};

use httpmock::Mock;
use httpmock::prelude::*;
use predicates::prelude::*;
use serde_json::{Value, json};

use crate::support::*;

const SA: &str = "wif-runner@proj.iam.gserviceaccount.com";
const PROVIDER: &str =
    "//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/ci/providers/repo";
const WORKFORCE: &str = "//iam.googleapis.com/locations/global/workforcePools/staff/providers/okta";
const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
const AWS_TYPE: &str = "urn:ietf:params:aws:token-type:aws4_request";
const FEDERATED: &str = "ya29.d.federated-access-token-from-sts";
const AUD: &str = "https://svc-xyz.a.run.app";
const SUBJECT: &str = "eyJ.ci-oidc-subject-token.sig";

/// An external_account file whose endpoints are the stand-in server.
fn config(server: &MockServer, source: Value) -> Value {
    json!({
        "type": "external_account",
        "audience": PROVIDER,
        "subject_token_type": JWT_TYPE,
        "token_url": server.url("/v1/token"),
        "service_account_impersonation_url":
            server.url(format!("/v1/projects/-/serviceAccounts/{SA}:generateAccessToken")),
        "credential_source": source,
    })
}

/// An external_account config whose subject token (SUBJECT) is in the file `oidc.jwt`.
fn file_source(env: &TestEnv, server: &MockServer) -> Value {
    let token_file = env.write("oidc.jwt", SUBJECT);
    config(server, json!({"file": token_file}))
}

fn write_config(env: &TestEnv, config: &Value) -> String {
    env.write("wif.json", config.to_string())
        .to_string_lossy()
        .into_owned()
}

/// The STS exchange with exactly the six fields of a workload identity exchange.
fn sts_mock<'a>(server: &'a MockServer, subject: &str, subject_type: &str) -> Mock<'a> {
    let subject = subject.to_string();
    let subject_type = subject_type.to_string();
    server.mock(move |when, then| {
        when.method(POST)
            .path("/v1/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .header_missing("authorization")
            .form_urlencoded_tuple(
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            )
            .form_urlencoded_tuple("audience", PROVIDER)
            .form_urlencoded_tuple("scope", "https://www.googleapis.com/auth/cloud-platform")
            .form_urlencoded_tuple(
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            )
            .form_urlencoded_tuple("subject_token", subject)
            .form_urlencoded_tuple("subject_token_type", subject_type)
            .form_urlencoded_tuple_count(".*", ".*", 6);
        then.status(200).json_body(json!({
            "access_token": FEDERATED,
            "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "token_type": "Bearer",
            "expires_in": 3599,
        }));
    })
}

/// generateIdToken on the file's service account, called with the federated token.
fn iam_mock<'a>(server: &'a MockServer, include_email: bool, token: &str) -> Mock<'a> {
    let token = token.to_string();
    server.mock(move |when, then| {
        when.method(POST)
            .path(generate_id_token_path(SA))
            .header("authorization", format!("Bearer {FEDERATED}"))
            .json_body(json!({"audience": AUD, "includeEmail": include_email}));
        then.status(200).json_body(json!({ "token": token }));
    })
}

fn sa_token() -> String {
    google_id_token(AUD, json!({"email": SA, "email_verified": true}))
}

fn print_identity_token(env: &TestEnv, file: &str) -> assert_cmd::Command {
    let mut cmd = env.cmd();
    cmd.args([
        "print-identity-token",
        "--credential-file-override",
        file,
        "--audiences",
        AUD,
    ]);
    cmd
}

// ---- file and url sources, the STS exchange and generateIdToken ----

#[test]
fn file_text_source_is_exchanged_and_minted_for_the_service_account() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let token_file = env.write("oidc.jwt", format!("{SUBJECT}\n"));
    let file = write_config(&env, &config(&server, json!({"file": token_file})));
    let token = sa_token();
    let sts = sts_mock(&server, SUBJECT, JWT_TYPE);
    let iam = iam_mock(&server, false, &token);

    let out = print_identity_token(&env, &file)
        .args(["--no-cache"])
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    assert_no_token(&out.get_output().stderr, &token);
    sts.assert();
    iam.assert();
}

#[test]
fn json_output_names_the_source_and_the_service_account() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let token_file = env.write("oidc.json", json!({"id_token": SUBJECT}).to_string());
    let file = write_config(
        &env,
        &config(
            &server,
            json!({"file": token_file, "format": {"type": "json", "subject_token_field_name": "id_token"}}),
        ),
    );
    let token = sa_token();
    let sts = sts_mock(&server, SUBJECT, JWT_TYPE);
    let iam = iam_mock(&server, true, &token);

    let out = print_identity_token(&env, &file)
        .args(["--include-email", "--no-cache", "-o", "json"])
        .assert()
        .success();
    let v: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["token"], token.as_str());
    assert_eq!(v["source"], "external_account");
    assert_eq!(v["principal"], SA);
    assert_eq!(v["email"], SA);
    sts.assert();
    iam.assert();
}

#[test]
fn url_source_sends_its_headers_and_reads_text() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let ci = server.mock(|when, then| {
        when.method(GET)
            .path("/oidc/token")
            .query_param("audience", "https://iam.googleapis.com/x")
            .header("authorization", "Bearer ci-request-token")
            .header("x-extra", "extra-secret-value");
        then.status(200).body(SUBJECT);
    });
    let file = write_config(
        &env,
        &config(
            &server,
            json!({
                "url": server.url("/oidc/token?audience=https://iam.googleapis.com/x"),
                "headers": {"Authorization": "Bearer ci-request-token", "X-Extra": "extra-secret-value"},
            }),
        ),
    );
    let token = sa_token();
    let sts = sts_mock(&server, SUBJECT, JWT_TYPE);
    let iam = iam_mock(&server, false, &token);

    let out = print_identity_token(&env, &file)
        .args(["--no-cache", "-vv"])
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    // The CI system's request token is a secret too.
    let stderr = String::from_utf8_lossy(&out.get_output().stderr);
    assert!(!stderr.contains("ci-request-token"), "{stderr}");
    // Any custom header may be a secret: -vv redacts every value it does not know to be safe.
    assert!(!stderr.contains("extra-secret-value"), "{stderr}");
    assert!(stderr.contains("X-Extra: extra-se… (18 bytes)"), "{stderr}");
    assert!(!stderr.contains(FEDERATED), "{stderr}");
    ci.assert();
    sts.assert();
    iam.assert();
}

#[test]
fn url_source_reads_a_json_field_like_github_actions() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let ci = server.mock(|when, then| {
        when.method(GET)
            .path("/_apis/distributedtask/hubs/build/plans/x/jobs/y/idtoken")
            .header("authorization", "Bearer gh-request-token");
        then.status(200)
            .json_body(json!({"count": 1, "value": SUBJECT}));
    });
    let file = write_config(
        &env,
        &config(
            &server,
            json!({
                "url": server.url("/_apis/distributedtask/hubs/build/plans/x/jobs/y/idtoken?api-version=2.0"),
                "headers": {"Authorization": "Bearer gh-request-token"},
                "format": {"type": "json", "subject_token_field_name": "value"},
            }),
        ),
    );
    let token = sa_token();
    let sts = sts_mock(&server, SUBJECT, JWT_TYPE);
    let iam = iam_mock(&server, false, &token);

    // As google-github-actions/auth leaves it: the file named by CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE.
    env.cmd()
        .env("CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE", &file)
        .env("GOOGLE_APPLICATION_CREDENTIALS", &file)
        .args(["print-identity-token", "--audiences", AUD, "--no-cache"])
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    ci.assert();
    sts.assert();
    iam.assert();
}

#[test]
fn url_source_failure_is_reported_with_its_status() {
    let env = TestEnv::new();
    let server = MockServer::start();
    server.mock(|when, then| {
        when.path("/oidc");
        then.status(403).body("token request not permitted");
    });
    let file = write_config(&env, &config(&server, json!({"url": server.url("/oidc")})));
    let sts = sts_mock(&server, SUBJECT, JWT_TYPE);
    print_identity_token(&env, &file)
        .assert()
        .code(4)
        .stdout("")
        .stderr(
            predicate::str::contains("HTTP 403").and(predicate::str::contains("subject token URL")),
        );
    sts.assert_calls(0);
}

#[test]
fn missing_subject_token_file_is_exit_3_naming_it() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let missing = env.path().join("not-written-yet.jwt");
    let file = write_config(&env, &config(&server, json!({"file": missing})));
    print_identity_token(&env, &file)
        .assert()
        .code(3)
        .stdout("")
        .stderr(
            predicate::str::contains("not-written-yet.jwt")
                .and(predicate::str::contains("does not exist")),
        );
}

#[test]
fn sts_refusal_is_exit_4_with_googles_description() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let file = write_config(&env, &file_source(&env, &server));
    server.mock(|when, then| {
        when.method(POST).path("/v1/token");
        then.status(400).json_body(json!({
            "error": "invalid_grant",
            "error_description": "The audience in ID Token [x] does not match the expected audience."
        }));
    });
    let iam = iam_mock(&server, false, "unused");
    let out = print_identity_token(&env, &file)
        .assert()
        .code(4)
        .stdout("")
        .stderr(
            predicate::str::contains("STS refused the request")
                .and(predicate::str::contains(
                    "invalid_grant: The audience in ID Token [x] does not match the expected audience.",
                ))
                .and(predicate::str::contains("hint:")),
        );
    assert_no_token(&out.get_output().stderr, SUBJECT);
    iam.assert_calls(0);
}

#[test]
fn iam_refusal_names_the_workload_identity_binding() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let file = write_config(&env, &file_source(&env, &server));
    let sts = sts_mock(&server, SUBJECT, JWT_TYPE);
    server.mock(|when, then| {
        when.method(POST).path(generate_id_token_path(SA));
        then.status(403).json_body(json!({"error": {"code": 403,
            "message": "Permission 'iam.serviceAccounts.getOpenIdToken' denied on resource (or it may not exist).",
            "status": "PERMISSION_DENIED"}}));
    });
    print_identity_token(&env, &file)
        .assert()
        .code(4)
        .stderr(
            predicate::str::contains("Permission 'iam.serviceAccounts.getOpenIdToken' denied")
                .and(predicate::str::contains("roles/iam.workloadIdentityUser"))
                .and(predicate::str::contains(
                    "principalSet://iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/ci/*",
                )),
        );
    sts.assert();
}

// ---- client authentication and workforce pools ----

#[test]
fn client_credentials_are_sent_as_http_basic() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let mut cfg = file_source(&env, &server);
    cfg["client_id"] = json!("my-client");
    cfg["client_secret"] = json!("my-secret");
    let file = write_config(&env, &cfg);
    let sts = server.mock(|when, then| {
        when.method(POST)
            .path("/v1/token")
            // base64("my-client:my-secret")
            .header("authorization", "Basic bXktY2xpZW50Om15LXNlY3JldA==")
            .form_urlencoded_tuple("subject_token", SUBJECT)
            .form_urlencoded_tuple_missing("client_secret")
            .form_urlencoded_tuple_count(".*", ".*", 6);
        then.status(200)
            .json_body(json!({"access_token": FEDERATED, "expires_in": 3600}));
    });
    let token = sa_token();
    let iam = iam_mock(&server, false, &token);
    let out = print_identity_token(&env, &file)
        .arg("-vv")
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    let stderr = String::from_utf8_lossy(&out.get_output().stderr);
    assert!(!stderr.contains("bXktY2xpZW50Om15LXNlY3JldA"), "{stderr}");
    sts.assert();
    iam.assert();
}

#[test]
fn workforce_pool_user_project_is_sent_as_options() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let mut cfg = file_source(&env, &server);
    cfg["audience"] = json!(WORKFORCE);
    cfg["workforce_pool_user_project"] = json!("998877");
    let file = write_config(&env, &cfg);
    let sts = server.mock(|when, then| {
        when.method(POST)
            .path("/v1/token")
            .form_urlencoded_tuple("audience", WORKFORCE)
            .form_urlencoded_tuple("options", r#"{"userProject":"998877"}"#)
            .form_urlencoded_tuple_count(".*", ".*", 7);
        then.status(200)
            .json_body(json!({"access_token": FEDERATED, "expires_in": 3600}));
    });
    let token = sa_token();
    let iam = iam_mock(&server, false, &token);
    print_identity_token(&env, &file)
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    sts.assert();
    iam.assert();
}

#[test]
fn workforce_user_project_on_a_workload_pool_is_refused() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let mut cfg = config(&server, json!({"file": "/nonexistent"}));
    cfg["workforce_pool_user_project"] = json!("998877");
    let file = write_config(&env, &cfg);
    print_identity_token(&env, &file).assert().code(3).stderr(
        predicate::str::contains("wif.json")
            .and(predicate::str::contains("workforce_pool_user_project"))
            .and(predicate::str::contains("998877").not()),
    );
}

// ---- errors that need no network ----

#[test]
fn without_a_service_account_there_is_no_id_token() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let mut cfg = file_source(&env, &server);
    cfg.as_object_mut()
        .unwrap()
        .remove("service_account_impersonation_url");
    let file = write_config(&env, &cfg);
    let sts = sts_mock(&server, SUBJECT, JWT_TYPE);
    print_identity_token(&env, &file)
        .assert()
        .code(3)
        .stdout("")
        .stderr(
            predicate::str::contains("service_account_impersonation_url")
                .and(predicate::str::contains("cannot obtain a Google-signed ID token"))
                .and(predicate::str::contains("roles/iam.workloadIdentityUser"))
                .and(predicate::str::contains("--service-account=SA"))
                .and(predicate::str::contains(
                    "principalSet://iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/ci/*",
                )),
        );
    sts.assert_calls(0);
}

#[test]
fn missing_and_invalid_fields_name_the_file_and_field_never_values() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let mut cfg = config(&server, json!({"file": "/t"}));
    cfg.as_object_mut().unwrap().remove("subject_token_type");
    let file = write_config(&env, &cfg);
    print_identity_token(&env, &file)
        .assert()
        .code(3)
        .stderr(predicate::str::contains(
            "wif.json: missing field `subject_token_type`",
        ));

    let mut cfg = config(&server, json!({"file": "/t", "format": {"type": "json"}}));
    cfg["client_secret"] = json!("very-secret-value");
    let file = write_config(&env, &cfg);
    print_identity_token(&env, &file).assert().code(3).stderr(
        predicate::str::contains("subject_token_field_name")
            .and(predicate::str::contains("very-secret-value").not()),
    );

    let cfg = config(
        &server,
        json!({"executable": {"command": "/bin/true", "timeout_millis": 1000}}),
    );
    let file = write_config(&env, &cfg);
    print_identity_token(&env, &file)
        .env("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES", "1")
        .assert()
        .code(3)
        .stderr(predicate::str::contains("timeout_millis").and(predicate::str::contains("5000")));
}

#[test]
fn plain_http_sts_off_loopback_is_refused() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let mut cfg = file_source(&env, &server);
    cfg["token_url"] = json!("http://sts.example.invalid/v1/token");
    let file = write_config(&env, &cfg);
    let out = print_identity_token(&env, &file)
        .assert()
        .code(3)
        .stderr(predicate::str::contains(
            "refusing to send a subject token over plain http to http://sts.example.invalid/v1/token",
        ));
    assert_no_token(&out.get_output().stderr, SUBJECT);
}

// ---- executable source ----

/// A shell script fixture, run as `/bin/sh SCRIPT ARGS` (never exec'd directly: a file just written may
/// still be open in a forked test process, and exec would fail with ETXTBSY).
fn script(env: &TestEnv, name: &str, body: &str) -> String {
    let path = env.write(name, format!("#!/bin/sh\n{body}\n"));
    format!("/bin/sh {}", path.display())
}

fn executable_response(token: &str, expires: u64) -> String {
    json!({
        "version": 1,
        "success": true,
        "token_type": JWT_TYPE,
        "id_token": token,
        "expiration_time": expires,
    })
    .to_string()
}

#[test]
fn executable_gets_the_documented_environment_and_its_token_is_used() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let seen = env.path().join("seen-env.txt");
    let args = env.path().join("seen-args.txt");
    let out_file = env.path().join("exe-cache.json");
    let command = script(
        &env,
        "exe.sh",
        &format!(
            "env | grep '^GOOGLE_EXTERNAL_ACCOUNT_' | sort > '{}'\nprintf '%s\\n' \"$@\" > '{}'\nprintf '%s' '{}'",
            seen.display(),
            args.display(),
            executable_response(SUBJECT, now() + 600)
        ),
    );
    let file = write_config(
        &env,
        &config(
            &server,
            json!({"executable": {
                "command": format!("{command} --flag=1   second"),
                "timeout_millis": 10000,
                "output_file": out_file,
            }}),
        ),
    );
    let token = sa_token();
    let sts = sts_mock(&server, SUBJECT, JWT_TYPE);
    let iam = iam_mock(&server, false, &token);
    print_identity_token(&env, &file)
        .env("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES", "1")
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    let seen = std::fs::read_to_string(seen).unwrap();
    assert_eq!(
        seen,
        format!(
            "GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1\n\
             GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE={PROVIDER}\n\
             GOOGLE_EXTERNAL_ACCOUNT_IMPERSONATED_EMAIL={SA}\n\
             GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE=0\n\
             GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE={}\n\
             GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE={JWT_TYPE}\n",
            out_file.display()
        )
    );
    // Split on whitespace, no shell: the arguments arrive as words.
    assert_eq!(std::fs::read_to_string(args).unwrap(), "--flag=1\nsecond\n");
    sts.assert();
    iam.assert();
}

#[test]
fn executable_is_not_run_without_the_opt_in() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let marker = env.path().join("ran");
    let command = script(&env, "exe.sh", &format!("touch '{}'", marker.display()));
    let file = write_config(
        &env,
        &config(&server, json!({"executable": {"command": command}})),
    );
    print_identity_token(&env, &file)
        .assert()
        .code(3)
        .stdout("")
        .stderr(
            predicate::str::contains("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1")
                .and(predicate::str::contains("wif.json")),
        );
    assert!(!marker.exists(), "the executable ran without the opt-in");
}

#[test]
fn executable_failures_are_explained() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let sts = sts_mock(&server, SUBJECT, JWT_TYPE);
    let cases = [
        (
            "echo 'cannot reach the identity provider' >&2\nexit 7",
            "cannot reach the identity provider",
        ),
        (
            r#"printf '%s' '{"version":1,"success":false,"code":"401","message":"Caller not authorized."}'"#,
            "code 401: Caller not authorized.",
        ),
        ("echo 'not json'", "not JSON"),
        (r#"printf '%s' '{"version":2,"success":true}'"#, "version 2"),
        (
            &format!("printf '%s' '{}'", executable_response(SUBJECT, now() - 60)),
            "expired",
        ),
    ];
    for (i, (body, expected)) in cases.iter().enumerate() {
        let command = script(&env, &format!("exe{i}.sh"), body);
        let file = write_config(
            &env,
            &config(&server, json!({"executable": {"command": command}})),
        );
        let out = print_identity_token(&env, &file)
            .env("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES", "1")
            .assert()
            .code(3)
            .stdout("")
            .stderr(predicate::str::contains(*expected));
        assert_no_token(&out.get_output().stderr, SUBJECT);
    }
    sts.assert_calls(0);
}

#[test]
fn slow_executable_is_killed_at_its_timeout() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let command = script(&env, "slow.sh", "exec sleep 60");
    let file = write_config(
        &env,
        &config(
            &server,
            json!({"executable": {"command": command, "timeout_millis": 5000}}),
        ),
    );
    let started = Instant::now();
    print_identity_token(&env, &file)
        .env("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES", "1")
        .timeout(Duration::from_secs(30))
        .assert()
        .code(5)
        .stdout("")
        .stderr(predicate::str::contains("killed after 5000 ms"));
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(5) && elapsed < Duration::from_secs(15),
        "{elapsed:?}"
    );
}

#[test]
fn unexpired_output_file_is_used_without_running_the_executable() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let marker = env.path().join("ran");
    let cached = env.write(
        "cache.json",
        executable_response("cached-subject", now() + 600),
    );
    let command = script(
        &env,
        "exe.sh",
        &format!(
            "touch '{}'\nprintf '%s' '{}'",
            marker.display(),
            executable_response(SUBJECT, now() + 600)
        ),
    );
    let file = write_config(
        &env,
        &config(
            &server,
            json!({"executable": {"command": command, "output_file": cached}}),
        ),
    );
    let token = sa_token();
    let sts = sts_mock(&server, "cached-subject", JWT_TYPE);
    let iam = iam_mock(&server, false, &token);
    print_identity_token(&env, &file)
        .env("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES", "1")
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    assert!(
        !marker.exists(),
        "the executable ran despite a valid cached response"
    );
    sts.assert();
    iam.assert();
}

#[test]
fn expired_output_file_runs_the_executable() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let marker = env.path().join("ran");
    let cached = env.write(
        "cache.json",
        executable_response("stale-subject", now() - 10),
    );
    let command = script(
        &env,
        "exe.sh",
        &format!(
            "touch '{}'\nprintf '%s' '{}'",
            marker.display(),
            executable_response(SUBJECT, now() + 600)
        ),
    );
    let file = write_config(
        &env,
        &config(
            &server,
            json!({"executable": {"command": command, "output_file": cached}}),
        ),
    );
    let token = sa_token();
    let sts = sts_mock(&server, SUBJECT, JWT_TYPE);
    let iam = iam_mock(&server, false, &token);
    print_identity_token(&env, &file)
        .env("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES", "1")
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    assert!(marker.exists());
    sts.assert();
    iam.assert();
}

// ---- aws source ----

fn aws_config(server: &MockServer) -> Value {
    let mut cfg = config(
        server,
        json!({
            "environment_id": "aws1",
            "region_url": server.url("/latest/meta-data/placement/availability-zone"),
            "url": server.url("/latest/meta-data/iam/security-credentials"),
            "regional_cred_verification_url":
                "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
            "imdsv2_session_token_url": server.url("/latest/api/token"),
        }),
    );
    cfg["subject_token_type"] = json!(AWS_TYPE);
    cfg
}

/// An STS stand-in that keeps the request bodies it received.
fn capturing_sts(server: &MockServer) -> (Mock<'_>, Bodies) {
    let bodies = Bodies::default();
    let matcher = bodies.matcher();
    let mock = server.mock(move |when, then| {
        when.method(POST)
            .path("/v1/token")
            .form_urlencoded_tuple("subject_token_type", AWS_TYPE)
            .form_urlencoded_tuple("audience", PROVIDER)
            .is_true(matcher);
        then.status(200)
            .json_body(json!({"access_token": FEDERATED, "expires_in": 3600}));
    });
    (mock, bodies)
}

/// The subject token of an aws source, decoded: the signed request as JSON.
fn decoded_aws_subject(body: &str) -> Value {
    let fields = form(body);
    // The token is the percent-encoded JSON; decode it as a form value would be.
    let decoded = form(&format!("t={}", form_value(&fields, "subject_token")));
    serde_json::from_str(form_value(&decoded, "t")).expect("subject token is URL-encoded JSON")
}

fn header<'a>(request: &'a Value, name: &str) -> &'a str {
    request["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["key"] == name)
        .unwrap_or_else(|| panic!("no header {name} in {request}"))["value"]
        .as_str()
        .unwrap()
}

fn assert_signed_request(request: &Value, region: &str, key_id: &str, session: &str) {
    let url =
        format!("https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15");
    assert_eq!(request["url"], url.as_str());
    assert_eq!(request["method"], "POST");
    let keys: Vec<&str> = request["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "Authorization",
            "host",
            "x-amz-date",
            "x-amz-security-token",
            "x-goog-cloud-target-resource"
        ]
    );
    assert_eq!(
        header(request, "host"),
        format!("sts.{region}.amazonaws.com")
    );
    assert_eq!(header(request, "x-goog-cloud-target-resource"), PROVIDER);
    assert_eq!(header(request, "x-amz-security-token"), session);
    let date = header(request, "x-amz-date");
    assert!(
        date.len() == 16 && date.as_bytes()[8] == b'T' && date.ends_with('Z'),
        "{date}"
    );
    let auth = header(request, "Authorization");
    let prefix = format!(
        "AWS4-HMAC-SHA256 Credential={key_id}/{}/{region}/sts/aws4_request, \
         SignedHeaders=host;x-amz-date;x-amz-security-token;x-goog-cloud-target-resource, Signature=",
        &date[..8]
    );
    assert!(auth.starts_with(&prefix), "{auth}");
    let signature = &auth[prefix.len()..];
    assert!(
        signature.len() == 64 && signature.bytes().all(|b| b.is_ascii_hexdigit()),
        "{auth}"
    );
}

#[test]
fn aws_with_environment_credentials_signs_get_caller_identity() {
    let env = TestEnv::new();
    let server = MockServer::start();
    // The metadata server must not be asked when the environment has everything.
    let imds = server.mock(|when, then| {
        when.path_prefix("/latest/");
        then.status(500);
    });
    let file = write_config(&env, &aws_config(&server));
    let (sts, bodies) = capturing_sts(&server);
    let token = sa_token();
    let iam = iam_mock(&server, false, &token);
    let out = print_identity_token(&env, &file)
        .env("AWS_REGION", "us-east-2")
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env(
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        )
        .env("AWS_SESSION_TOKEN", "env-session-token")
        .arg("-vv")
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    let stderr = String::from_utf8_lossy(&out.get_output().stderr);
    assert!(!stderr.contains("wJalrXUtnFEMI"), "{stderr}");
    sts.assert();
    iam.assert();
    imds.assert_calls(0);
    assert_signed_request(
        &decoded_aws_subject(&bodies.all()[0]),
        "us-east-2",
        "AKIDEXAMPLE",
        "env-session-token",
    );
}

#[test]
fn aws_with_imdsv2_reads_region_and_role_credentials() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let session = server.mock(|when, then| {
        when.method(PUT)
            .path("/latest/api/token")
            .header("x-aws-ec2-metadata-token-ttl-seconds", "300");
        then.status(200).body("imds-session-token");
    });
    let zone = server.mock(|when, then| {
        when.method(GET)
            .path("/latest/meta-data/placement/availability-zone")
            .header("x-aws-ec2-metadata-token", "imds-session-token");
        then.status(200).body("eu-west-3b");
    });
    let role = server.mock(|when, then| {
        when.method(GET)
            .path("/latest/meta-data/iam/security-credentials")
            .header("x-aws-ec2-metadata-token", "imds-session-token");
        then.status(200).body("ci-runner-role");
    });
    let creds = server.mock(|when, then| {
        when.method(GET)
            .path("/latest/meta-data/iam/security-credentials/ci-runner-role")
            .header("x-aws-ec2-metadata-token", "imds-session-token");
        then.status(200).json_body(json!({
            "Code": "Success",
            "Type": "AWS-HMAC",
            "AccessKeyId": "ASIAROLEEXAMPLE",
            "SecretAccessKey": "role-secret-key",
            "Token": "role-session-token",
            "Expiration": "2099-01-01T00:00:00Z",
        }));
    });
    let file = write_config(&env, &aws_config(&server));
    let (sts, bodies) = capturing_sts(&server);
    let token = sa_token();
    let iam = iam_mock(&server, false, &token);
    print_identity_token(&env, &file)
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    session.assert();
    zone.assert();
    role.assert();
    creds.assert();
    sts.assert();
    iam.assert();
    assert_signed_request(
        &decoded_aws_subject(&bodies.all()[0]),
        "eu-west-3",
        "ASIAROLEEXAMPLE",
        "role-session-token",
    );
}

// ---- impersonate and impersonation chains from federated credentials ----

#[test]
fn impersonate_starts_from_the_files_service_account() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let mut cfg = file_source(&env, &server);
    cfg["service_account_impersonation"] = json!({"token_lifetime_seconds": 1200});
    let file = write_config(&env, &cfg);
    let target = "backend-caller@proj.iam.gserviceaccount.com";
    let sts = sts_mock(&server, SUBJECT, JWT_TYPE);
    let access = server.mock(|when, then| {
        when.method(POST)
            .path(format!(
                "/v1/projects/-/serviceAccounts/{SA}:generateAccessToken"
            ))
            .header("authorization", format!("Bearer {FEDERATED}"))
            .json_body(json!({
                "scope": ["https://www.googleapis.com/auth/cloud-platform"],
                "lifetime": "1200s",
            }));
        then.status(200).json_body(json!({
            "accessToken": "ya29.c.service-account-access-token",
            "expireTime": "2099-01-01T00:00:00Z",
        }));
    });
    let token = google_id_token(AUD, json!({"email": target}));
    let iam = server.mock(|when, then| {
        when.method(POST)
            .path(generate_id_token_path(target))
            .header(
                "authorization",
                "Bearer ya29.c.service-account-access-token",
            )
            .json_body(json!({"audience": AUD, "includeEmail": true}));
        then.status(200).json_body(json!({ "token": token }));
    });
    env.cmd()
        .env(
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS",
            server.base_url(),
        )
        .args([
            "impersonate",
            "--credential-file-override",
            &file,
            "--service-account",
            target,
            "--audience",
            AUD,
            "--include-email",
        ])
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    sts.assert();
    access.assert();
    iam.assert();
}

#[test]
fn impersonating_the_files_own_service_account_is_self_impersonation() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let file = write_config(&env, &file_source(&env, &server));
    env.cmd()
        .args([
            "impersonate",
            "--credential-file-override",
            &file,
            "--service-account",
            SA,
            "--audience",
            AUD,
        ])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("refusing to impersonate"));
}

// ---- workforce users ----

fn workforce_user(server: &MockServer) -> Value {
    json!({
        "type": "external_account_authorized_user",
        "audience": WORKFORCE,
        "refresh_token": "workforce-refresh-token",
        "token_url": server.url("/v1/oauthtoken"),
        "token_info_url": server.url("/v1/introspect"),
        "client_id": "wf-client",
        "client_secret": "wf-secret",
        "revoke_url": server.url("/v1/revoke"),
        "universe_domain": "googleapis.com",
    })
}

#[test]
fn workforce_user_has_no_id_token_of_its_own() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let refresh = server.mock(|when, then| {
        when.path("/v1/oauthtoken");
        then.status(200)
            .json_body(json!({"access_token": "ya29.user", "expires_in": 3600}));
    });
    let file = write_config(&env, &workforce_user(&server));
    let out = print_identity_token(&env, &file)
        .assert()
        .code(3)
        .stdout("")
        .stderr(
            predicate::str::contains("external_account_authorized_user")
                .and(predicate::str::contains(
                    "cannot obtain a Google-signed ID token",
                ))
                .and(predicate::str::contains("--impersonate-service-account SA")),
        );
    let stderr = String::from_utf8_lossy(&out.get_output().stderr);
    assert!(!stderr.contains("workforce-refresh-token") && !stderr.contains("wf-secret"));
    refresh.assert_calls(0);
}

#[test]
fn workforce_user_can_impersonate_a_service_account() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let refresh = server.mock(|when, then| {
        when.method(POST)
            .path("/v1/oauthtoken")
            // base64("wf-client:wf-secret")
            .header("authorization", "Basic d2YtY2xpZW50OndmLXNlY3JldA==")
            .form_urlencoded_tuple("grant_type", "refresh_token")
            .form_urlencoded_tuple("refresh_token", "workforce-refresh-token")
            .form_urlencoded_tuple_count(".*", ".*", 2);
        then.status(200)
            .json_body(json!({"access_token": "ya29.workforce-user", "expires_in": 3600}));
    });
    let target = "deployer@proj.iam.gserviceaccount.com";
    let token = google_id_token(AUD, json!({"email": target}));
    let iam = server.mock(|when, then| {
        when.method(POST)
            .path(generate_id_token_path(target))
            .header("authorization", "Bearer ya29.workforce-user");
        then.status(200).json_body(json!({ "token": token }));
    });
    let file = write_config(&env, &workforce_user(&server));
    print_identity_token(&env, &file)
        .env(
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS",
            server.base_url(),
        )
        .args(["--impersonate-service-account", target])
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    refresh.assert();
    iam.assert();
}

#[test]
fn workforce_user_project_is_left_out_when_the_client_authenticates() {
    // google-auth: the client id already names the project, so `options` is not sent with client auth.
    let env = TestEnv::new();
    let server = MockServer::start();
    let mut cfg = file_source(&env, &server);
    cfg["audience"] = json!(WORKFORCE);
    cfg["workforce_pool_user_project"] = json!("998877");
    cfg["client_id"] = json!("my-client");
    cfg["client_secret"] = json!("my-secret");
    let file = write_config(&env, &cfg);
    let sts = server.mock(|when, then| {
        when.method(POST)
            .path("/v1/token")
            .header("authorization", "Basic bXktY2xpZW50Om15LXNlY3JldA==")
            .form_urlencoded_tuple("audience", WORKFORCE)
            .form_urlencoded_tuple_missing("options")
            .form_urlencoded_tuple_count(".*", ".*", 6);
        then.status(200)
            .json_body(json!({"access_token": FEDERATED, "expires_in": 3600}));
    });
    let token = sa_token();
    let iam = iam_mock(&server, false, &token);
    print_identity_token(&env, &file)
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    sts.assert();
    iam.assert();
}

#[test]
fn url_source_headers_are_never_sent_over_plain_http_off_loopback() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let file = write_config(
        &env,
        &config(
            &server,
            json!({
                "url": "http://tokens.example.invalid/oidc",
                "headers": {"Authorization": "Bearer ci-request-token"},
            }),
        ),
    );
    let sts = sts_mock(&server, SUBJECT, JWT_TYPE);
    let out = print_identity_token(&env, &file)
        .assert()
        .code(3)
        .stderr(predicate::str::contains(
            "refusing to send the headers of credential_source.url over plain http to http://tokens.example.invalid/oidc",
        ));
    let stderr = String::from_utf8_lossy(&out.get_output().stderr);
    assert!(!stderr.contains("ci-request-token"), "{stderr}");
    sts.assert_calls(0);
}

#[test]
fn gcloud_account_logged_in_with_a_cred_file_is_federated() {
    // `gcloud auth login --cred-file=wif.json` keeps the external_account JSON in credentials.db under the
    // service account's email.
    let env = TestEnv::new();
    let server = MockServer::start();
    env.credentials_db(&[(SA, &file_source(&env, &server))]);
    let token = sa_token();
    let sts = sts_mock(&server, SUBJECT, JWT_TYPE);
    let iam = iam_mock(&server, false, &token);
    env.cmd()
        .env("CLOUDSDK_CORE_ACCOUNT", SA)
        .args(["print-identity-token", "--audiences", AUD, "-o", "json"])
        .assert()
        .success()
        .stdout(predicate::str::contains(r#""source":"external_account""#));
    sts.assert();
    iam.assert();
}

/// The token cache key covers where generateIdToken is called: CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS
/// pointing elsewhere is a new token, not the one the other endpoint minted.
#[test]
fn the_cache_key_covers_the_iam_endpoint_override() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let other_iam = MockServer::start();
    let subject = env.write("subject.jwt", SUBJECT);
    let file = write_config(
        &env,
        &config(&server, json!({"file": subject.to_string_lossy()})),
    );
    let sts = sts_mock(&server, SUBJECT, JWT_TYPE);
    let token = sa_token();
    let iam = iam_mock(&server, false, &token);
    let other = iam_mock(&other_iam, false, &token);
    for _ in 0..2 {
        print_identity_token(&env, &file)
            .assert()
            .success()
            .stdout(format!("{token}\n"));
    }
    assert_eq!(iam.calls(), 1, "the second run is a cache hit");
    for _ in 0..2 {
        print_identity_token(&env, &file)
            .env(
                "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS",
                other_iam.base_url(),
            )
            .assert()
            .success()
            .stdout(format!("{token}\n"));
    }
    assert_eq!(other.calls(), 1, "the override is another key, then a hit");
    assert_eq!(iam.calls(), 1);
    assert_eq!(sts.calls(), 2);
}

#[test]
fn a_cached_federated_token_is_tied_to_the_subject_token_of_a_file_source() {
    // A token minted for one CI job's subject token must not be served to a job holding another.
    let env = TestEnv::new();
    let server = MockServer::start();
    let subject = env.write("subject.jwt", SUBJECT);
    let file = write_config(
        &env,
        &config(&server, json!({"file": subject.to_string_lossy()})),
    );
    let first = sts_mock(&server, SUBJECT, JWT_TYPE);
    let token = sa_token();
    let iam = iam_mock(&server, false, &token);
    for _ in 0..2 {
        print_identity_token(&env, &file)
            .assert()
            .success()
            .stdout(format!("{token}\n"));
    }
    assert_eq!(
        first.calls(),
        1,
        "the same subject token: the second run is a hit"
    );
    let other_subject = "eyJ.another-jobs-subject-token.sig";
    env.write("subject.jwt", other_subject);
    let second = sts_mock(&server, other_subject, JWT_TYPE);
    print_identity_token(&env, &file)
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    assert_eq!(
        second.calls(),
        1,
        "another subject token is another cache key"
    );
    assert_eq!(iam.calls(), 2);
}

#[test]
fn tokens_from_a_url_source_are_not_cached() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let ci = server.mock(|when, then| {
        when.method(GET).path("/oidc/token");
        then.status(200).body(SUBJECT);
    });
    let file = write_config(
        &env,
        &config(&server, json!({"url": server.url("/oidc/token")})),
    );
    let sts = sts_mock(&server, SUBJECT, JWT_TYPE);
    let token = sa_token();
    let iam = iam_mock(&server, false, &token);
    for _ in 0..2 {
        let out = print_identity_token(&env, &file)
            .arg("-v")
            .assert()
            .success()
            .stdout(format!("{token}\n"));
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(stderr.contains("token cache not used"), "{stderr}");
    }
    assert_eq!(ci.calls(), 2);
    assert_eq!(sts.calls(), 2);
    assert_eq!(iam.calls(), 2);
    assert!(
        !env.cache().exists() || std::fs::read_dir(env.cache()).unwrap().next().is_none(),
        "nothing was written to the cache"
    );
}
