//! The credential chain (SPEC.md section 3): its order when several sources are present, what `-v` says,
//! and the errors of each step.

use httpmock::prelude::*;
use predicates::prelude::*;
use serde_json::json;

use crate::support::*;

/// A token endpoint at `path` answering with `token`.
fn endpoint<'a>(server: &'a MockServer, path: &str, token: &str) -> httpmock::Mock<'a> {
    let token = token.to_string();
    server.mock(|when, then| {
        when.method(POST).path(path);
        then.status(200)
            .json_body(json!({ "id_token": token, "access_token": "ya29.x" }));
    })
}

/// Every source present: the override, GOOGLE_APPLICATION_CREDENTIALS, a gcloud account, the ADC file, and a
/// metadata server; each with its own endpoint.
struct AllSources {
    env: TestEnv,
    server: MockServer,
    token: String,
}

impl AllSources {
    fn new() -> AllSources {
        let env = TestEnv::new();
        let server = MockServer::start();
        env.write_json("override.json", &sa_key(&server.url("/override")));
        env.write_json("gac.json", &sa_key(&server.url("/gac")));
        env.credentials_db(&[("me@example.com", &user_login(&server.url("/gcloud")))]);
        env.gcloud_config("default", "[core]\naccount = me@example.com\n");
        env.adc(&user_login(&server.url("/adc")));
        let token = google_id_token(GCLOUD_AUD, json!({}));
        AllSources { env, server, token }
    }

    fn cmd(&self) -> assert_cmd::Command {
        let mut cmd = self.env.cmd();
        cmd.env("GCE_METADATA_HOST", self.server.address().to_string());
        cmd
    }

    fn mocks(&self) -> Vec<(&'static str, httpmock::Mock<'_>)> {
        let mut mocks: Vec<(&'static str, httpmock::Mock<'_>)> =
            ["/override", "/gac", "/gcloud", "/adc"]
                .into_iter()
                .map(|p| (p, endpoint(&self.server, p, &self.token)))
                .collect();
        let token = self.token.clone();
        mocks.push((
            "metadata",
            self.server.mock(|when, then| {
                when.path(IDENTITY);
                then.status(200).body(token);
            }),
        ));
        mocks
    }

    /// Runs `cmd` and checks that only `winner` was asked.
    fn expect(&self, mut cmd: assert_cmd::Command, winner: &str) {
        let mocks = self.mocks();
        cmd.arg("print-identity-token")
            .assert()
            .success()
            .stdout(format!("{}\n", self.token));
        for (name, mock) in &mocks {
            mock.assert_calls(usize::from(*name == winner));
        }
    }
}

#[test]
fn override_wins_over_everything() {
    let all = AllSources::new();
    let mut cmd = all.cmd();
    cmd.env(
        "CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE",
        all.env.path().join("override.json"),
    )
    .env(
        "GOOGLE_APPLICATION_CREDENTIALS",
        all.env.path().join("gac.json"),
    );
    all.expect(cmd, "/override");
}

#[test]
fn google_application_credentials_wins_over_the_gcloud_account() {
    let all = AllSources::new();
    let mut cmd = all.cmd();
    cmd.env(
        "GOOGLE_APPLICATION_CREDENTIALS",
        all.env.path().join("gac.json"),
    );
    all.expect(cmd, "/gac");
}

#[test]
fn the_gcloud_account_wins_over_the_adc_file() {
    let all = AllSources::new();
    all.expect(all.cmd(), "/gcloud");
}

#[test]
fn the_adc_file_wins_over_the_metadata_server() {
    let all = AllSources::new();
    std::fs::remove_file(all.env.gcloud().join("configurations/config_default")).unwrap();
    all.expect(all.cmd(), "/adc");
}

#[test]
fn the_metadata_server_comes_last() {
    let all = AllSources::new();
    std::fs::remove_file(all.env.gcloud().join("configurations/config_default")).unwrap();
    std::fs::remove_file(
        all.env
            .gcloud()
            .join("application_default_credentials.json"),
    )
    .unwrap();
    all.expect(all.cmd(), "metadata");
}

#[test]
fn the_account_argument_passes_over_google_application_credentials() {
    let all = AllSources::new();
    let mut cmd = all.cmd();
    cmd.env(
        "GOOGLE_APPLICATION_CREDENTIALS",
        all.env.path().join("gac.json"),
    )
    .arg("print-identity-token")
    .arg("me@example.com")
    .arg("-v");
    let mocks = all.mocks();
    cmd.assert()
        .success()
        .stdout(format!("{}\n", all.token))
        .stderr(predicate::str::contains(
            "passed over GOOGLE_APPLICATION_CREDENTIALS: the ACCOUNT argument (me@example.com) picks a gcloud account",
        ));
    for (name, mock) in &mocks {
        mock.assert_calls(usize::from(*name == "/gcloud"));
    }
}

#[test]
fn verbose_explains_every_step() {
    let all = AllSources::new();
    std::fs::remove_file(all.env.gcloud().join("configurations/config_default")).unwrap();
    let mocks = all.mocks();
    let adc = all
        .env
        .gcloud()
        .join("application_default_credentials.json");
    let out = all
        .cmd()
        .args(["print-identity-token", "-v"])
        .assert()
        .success()
        .stdout(format!("{}\n", all.token));
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    for expected in [
        "idtok: credential chain: passed over --credential-file-override/CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE: not set",
        "idtok: credential chain: passed over GOOGLE_APPLICATION_CREDENTIALS: not set",
        "idtok: credential chain: passed over the gcloud account: none (no ACCOUNT argument, CLOUDSDK_CORE_ACCOUNT not set, no [core] account in the configuration `default`)",
        &format!("idtok: credential chain: using {}", adc.display()),
        "idtok: credentials: user login",
    ] {
        assert!(
            stderr.contains(expected),
            "missing `{expected}` in:\n{stderr}"
        );
    }
    assert!(!stderr.contains(USER_REFRESH_TOKEN) && !stderr.contains(USER_CLIENT_SECRET));
    assert_no_token(&out.get_output().stderr, &all.token);
    mocks[3].1.assert();
}

#[test]
fn missing_google_application_credentials_file_is_an_error_not_a_skip() {
    let all = AllSources::new();
    let missing = all.env.path().join("nope.json");
    let mocks = all.mocks();
    all.cmd()
        .env("GOOGLE_APPLICATION_CREDENTIALS", &missing)
        .arg("print-identity-token")
        .assert()
        .code(3)
        .stdout("")
        .stderr(predicate::str::contains(format!(
            "idtok: error: {}: the file does not exist",
            missing.display()
        )))
        .stderr(predicate::str::contains(
            "hint: point GOOGLE_APPLICATION_CREDENTIALS at a readable credential file, or unset it",
        ));
    for (_, mock) in &mocks {
        mock.assert_calls(0);
    }
}

#[cfg(unix)]
#[test]
fn unreadable_credential_file_is_exit_3() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    let key = env.write_json("key.json", &sa_key("http://127.0.0.1:9/token"));
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read(&key).is_ok() {
        // Root reads a mode-000 file anyway: there is no permission to deny. Say so rather than pass quietly.
        eprintln!("skipped: running as root, file permissions do not apply");
        return;
    }
    env.cmd()
        .env("GOOGLE_APPLICATION_CREDENTIALS", &key)
        .arg("print-identity-token")
        .assert()
        .code(3)
        .stderr(predicate::str::contains(
            "the file cannot be read (permission denied)",
        ));
}

#[test]
fn a_broken_adc_file_is_an_error_not_a_skip() {
    let env = TestEnv::new();
    let adc = env.write("gcloud/application_default_credentials.json", "{ not json");
    env.cmd()
        .arg("print-identity-token")
        .assert()
        .code(3)
        .stderr(predicate::str::contains(format!(
            "{}: not a JSON credential file (invalid JSON at line 1, column 3)",
            adc.display()
        )));
}

#[test]
fn no_credentials_at_all_is_exit_3_with_hints() {
    let env = TestEnv::new();
    // In a private network namespace: metadata.google.internal fails to resolve without a DNS query.
    let Some(mut cmd) = env.cmd_in_private_network("") else {
        return;
    };
    cmd.args(["print-identity-token", "--audiences", "aud"])
        .assert()
        .code(3)
        .stdout("")
        .stderr(predicate::str::contains(
            "idtok: error: no credentials found",
        ))
        .stderr(predicate::str::contains(
            "the metadata server did not answer",
        ))
        .stderr(predicate::str::contains(
            "hint: log in with `gcloud auth login`, or `gcloud auth application-default login`",
        ))
        .stderr(predicate::str::contains(
            "hint: or point GOOGLE_APPLICATION_CREDENTIALS at a credential file",
        ));
}

#[test]
fn a_named_metadata_server_that_does_not_answer_is_exit_5() {
    // GCE_METADATA_HOST says a metadata server is there: not answering is an outage, not a lack of
    // credentials.
    let env = TestEnv::new();
    env.cmd()
        .env("GCE_METADATA_HOST", "127.0.0.1:9")
        .args(["print-identity-token", "--timeout", "1"])
        .assert()
        .code(5)
        .stderr(predicate::str::contains("metadata server unreachable"));
}

// ---- credential files: every problem names the file and the field, never a value ----

fn file_error(contents: &str, expected: &str) {
    let env = TestEnv::new();
    let path = env.write("cred.json", contents);
    let out = env
        .cmd()
        .arg("print-identity-token")
        .arg("--credential-file-override")
        .arg(&path)
        .assert()
        .code(3)
        .stdout("");
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    let expected = format!("idtok: error: {}: {expected}", path.display());
    assert!(
        stderr.contains(&expected),
        "expected `{expected}` in:\n{stderr}"
    );
    let key_body = TEST_KEY.lines().nth(1).unwrap();
    assert!(
        !stderr.contains(key_body)
            && !stderr.contains("MIIEvQIB")
            && !stderr.contains(USER_REFRESH_TOKEN),
        "{stderr}"
    );
}

#[test]
fn not_json() {
    file_error(
        "type=service_account",
        "not a JSON credential file (invalid JSON at line 1, column 2)",
    );
}

#[test]
fn not_an_object() {
    file_error("[1, 2]", "not a JSON credential file (not a JSON object)");
}

#[test]
fn no_type() {
    file_error(r#"{"client_email": "x"}"#, "missing field `type`");
}

#[test]
fn unknown_type() {
    file_error(
        r#"{"type": "api_key"}"#,
        "unsupported credential type `api_key`",
    );
}

#[test]
fn unknown_type_value_is_not_echoed() {
    file_error(
        r#"{"type": "1//0gSecretLookingValue with spaces"}"#,
        "unsupported credential type `(unrecognised value)`",
    );
}

#[test]
fn missing_field_of_a_key() {
    let mut key = sa_key("http://127.0.0.1:9/token");
    key.as_object_mut().unwrap().remove("client_email");
    file_error(&key.to_string(), "missing field `client_email`");
}

#[test]
fn missing_field_of_a_user_login() {
    let mut user = user_login("http://127.0.0.1:9/token");
    user.as_object_mut().unwrap().remove("refresh_token");
    file_error(&user.to_string(), "missing field `refresh_token`");
}

#[test]
fn private_key_that_is_not_pem() {
    let mut key = sa_key("http://127.0.0.1:9/token");
    key["private_key"] = json!("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC");
    file_error(
        &key.to_string(),
        "field `private_key` is not a PKCS#8 PEM private key (-----BEGIN PRIVATE KEY-----)",
    );
}

#[test]
fn private_key_pem_with_garbage_inside() {
    let mut key = sa_key("http://127.0.0.1:9/token");
    key["private_key"] =
        json!("-----BEGIN PRIVATE KEY-----\nMIIEnotakey\n-----END PRIVATE KEY-----\n");
    file_error(
        &key.to_string(),
        "field `private_key` is not a valid RSA private key for RS256 (PKCS#8, 2048 to 8192 bits)",
    );
}

#[test]
fn a_p256_key_is_not_an_rsa_key() {
    let mut key = sa_key("http://127.0.0.1:9/token");
    key["private_key"] = json!(ES256_KEY);
    file_error(
        &key.to_string(),
        "field `private_key` is not a valid RSA private key for RS256",
    );
}

#[test]
fn token_uri_that_is_not_a_url() {
    let key = sa_key("not a url");
    file_error(&key.to_string(), "field `token_uri` is not an http(s) URL");
}

#[test]
fn nested_source_credentials_field_is_named() {
    let mut user = user_login("http://127.0.0.1:9/token");
    user.as_object_mut().unwrap().remove("client_secret");
    let file = impersonated_file(user, "https://iamcredentials.googleapis.com", TARGET, &[]);
    file_error(
        &file.to_string(),
        "missing field `source_credentials.client_secret`",
    );
}

#[test]
fn impersonation_url_without_a_service_account() {
    let mut file = impersonated_file(
        sa_key("http://127.0.0.1:9/token"),
        "https://iamcredentials.googleapis.com",
        TARGET,
        &[],
    );
    file["service_account_impersonation_url"] =
        json!("https://iamcredentials.googleapis.com/v1/nothing");
    file_error(
        &file.to_string(),
        "field `service_account_impersonation_url` does not name a service account",
    );
}

#[test]
fn external_account_with_a_missing_field_names_it() {
    // external_account itself is loaded since the ext branch (tests/cli/external_account.rs).
    let env = TestEnv::new();
    let path = env.write_json(
        "ext.json",
        &json!({"type": "external_account", "audience": "x"}),
    );
    env.cmd()
        .arg("print-identity-token")
        .arg("--credential-file-override")
        .arg(&path)
        .assert()
        .code(3)
        .stderr(predicate::str::contains(
            "ext.json: missing field `subject_token_type`",
        ));
}

#[test]
fn token_host_overrides_the_default_token_endpoint() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let mut key = sa_key("unused");
    key.as_object_mut().unwrap().remove("token_uri");
    let key = env.write_json("key.json", &key);
    let token = google_id_token(GCLOUD_AUD, json!({}));
    let bodies = Bodies::default();
    let mock = token_endpoint(&server, &bodies, json!({"id_token": token}));
    env.cmd()
        .env("GOOGLE_APPLICATION_CREDENTIALS", &key)
        .env("CLOUDSDK_AUTH_TOKEN_HOST", server.url("/token"))
        .arg("print-identity-token")
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    mock.assert();
    check_jwt_bearer(&bodies.one(), &server.url("/token"));
}
