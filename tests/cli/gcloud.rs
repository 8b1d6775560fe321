//! gcloud's own state, read without gcloud: the configuration directory (CLOUDSDK_CONFIG), the active
//! configuration, and a real `credentials.db`.

use httpmock::prelude::*;
use predicates::prelude::*;
use serde_json::{Value, json};

use crate::support::*;

const ME: &str = "me@example.com";

fn user_reply(token: &str) -> Value {
    json!({
        "access_token": ACCESS_TOKEN,
        "expires_in": 3599,
        "token_type": "Bearer",
        "id_token": token,
    })
}

#[test]
fn active_account_from_the_default_configuration() {
    let env = TestEnv::new();
    let server = MockServer::start();
    env.credentials_db(&[(ME, &user_login(&server.url("/token")))]);
    env.gcloud_config(
        "default",
        "[core]\naccount = me@example.com\nproject = p1\n",
    );
    let token = google_id_token(
        "32555940559.apps.googleusercontent.com",
        json!({"email": ME}),
    );
    let bodies = Bodies::default();
    let mock = token_endpoint(&server, &bodies, user_reply(&token));
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
    assert_eq!(v["principal"], ME);
}

#[test]
fn active_config_file_picks_the_configuration() {
    let env = TestEnv::new();
    let server = MockServer::start();
    env.credentials_db(&[
        (ME, &user_login(&server.url("/wrong"))),
        ("work@example.com", &user_login(&server.url("/token"))),
    ]);
    env.gcloud_config("default", "[core]\naccount = me@example.com\n");
    env.gcloud_config("work", "[core]\naccount = work@example.com\n");
    env.active_config("work\n");
    let token = google_id_token("aud", json!({}));
    let mock = token_endpoint(&server, &Bodies::default(), user_reply(&token));
    env.cmd()
        .args(["print-identity-token", "-v"])
        .assert()
        .success()
        .stdout(format!("{token}\n"))
        .stderr(predicate::str::contains(
            "gcloud account work@example.com (from [core] account of the configuration `work`)",
        ));
    mock.assert();
}

#[test]
fn configuration_flag_and_variable_pick_the_configuration() {
    let env = TestEnv::new();
    let server = MockServer::start();
    env.credentials_db(&[
        (ME, &user_login(&server.url("/wrong"))),
        ("ci@example.com", &user_login(&server.url("/token"))),
    ]);
    env.gcloud_config("default", "[core]\naccount = me@example.com\n");
    env.gcloud_config("ci", "[core]\naccount: ci@example.com\n");
    let token = google_id_token("aud", json!({}));
    let mock = token_endpoint(&server, &Bodies::default(), user_reply(&token));
    env.cmd()
        .args([
            "print-identity-token",
            "--configuration",
            "ci",
            "--no-cache",
        ])
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    env.cmd()
        .env("CLOUDSDK_ACTIVE_CONFIG_NAME", "ci")
        .args(["print-identity-token", "--no-cache"])
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    mock.assert_calls(2);
}

#[test]
fn a_named_configuration_that_does_not_exist_is_exit_3() {
    let env = TestEnv::new();
    env.cmd()
        .args(["print-identity-token", "--configuration", "nope"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains(
            "the configuration `nope` does not exist",
        ))
        .stderr(predicate::str::contains(
            "gcloud config configurations list",
        ));
}

#[test]
fn core_account_variable_beats_the_configuration_and_the_argument_beats_both() {
    let env = TestEnv::new();
    let server = MockServer::start();
    env.credentials_db(&[
        (ME, &user_login(&server.url("/config"))),
        ("env@example.com", &user_login(&server.url("/env"))),
        ("arg@example.com", &user_login(&server.url("/arg"))),
    ]);
    env.gcloud_config("default", "[core]\naccount = me@example.com\n");
    let token = google_id_token("aud", json!({}));
    let mocks: Vec<_> = ["/config", "/env", "/arg"]
        .iter()
        .map(|p| {
            let token = token.clone();
            server.mock(move |when, then| {
                when.method(POST).path(*p);
                then.status(200).json_body(user_reply(&token));
            })
        })
        .collect();
    env.cmd()
        .env("CLOUDSDK_CORE_ACCOUNT", "env@example.com")
        .args(["print-identity-token", "--no-cache"])
        .assert()
        .success();
    env.cmd()
        .env("CLOUDSDK_CORE_ACCOUNT", "env@example.com")
        .args(["print-identity-token", "arg@example.com", "--no-cache"])
        .assert()
        .success();
    mocks[0].assert_calls(0);
    mocks[1].assert_calls(1);
    mocks[2].assert_calls(1);
}

#[test]
fn an_account_without_credentials_is_exit_3_with_a_login_hint() {
    let env = TestEnv::new();
    env.credentials_db(&[("other@example.com", &user_login("http://127.0.0.1:9/token"))]);
    env.cmd()
        .args(["print-identity-token", "ghost@example.com"])
        .assert()
        .code(3)
        .stdout("")
        .stderr(predicate::str::contains(
            "the gcloud account ghost@example.com (from the ACCOUNT argument) has no credentials",
        ))
        .stderr(predicate::str::contains(
            "hint: log in: `gcloud auth login ghost@example.com`",
        ));
}

#[test]
fn an_account_when_there_is_no_credentials_db_is_exit_3() {
    let env = TestEnv::new();
    env.gcloud_config("default", "[core]\naccount = me@example.com\n");
    env.cmd()
        .arg("print-identity-token")
        .assert()
        .code(3)
        .stderr(predicate::str::contains(
            "the gcloud account me@example.com (from [core] account of the configuration `default`) has no credentials (the database does not exist)",
        ))
        .stderr(predicate::str::contains("gcloud auth login me@example.com"));
}

#[test]
fn a_service_account_activated_in_gcloud() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let token_uri = server.url("/token");
    env.credentials_db(&[(SA_EMAIL, &sa_key(&token_uri))]);
    env.gcloud_config("default", &format!("[core]\naccount = {SA_EMAIL}\n"));
    let token = google_id_token("https://svc.example", json!({}));
    let bodies = Bodies::default();
    let mock = token_endpoint(&server, &bodies, json!({ "id_token": token }));
    env.cmd()
        .args(["print-identity-token", "--audiences", "https://svc.example"])
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    mock.assert();
    let claims = check_jwt_bearer(&bodies.one(), &token_uri);
    assert_eq!(claims["target_audience"], "https://svc.example");
}

#[test]
fn gce_credential_is_the_metadata_server() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let vm = "123-compute@developer.gserviceaccount.com";
    env.credentials_db(&[(vm, &json!({"type": "gce", "service_account_email": vm}))]);
    env.gcloud_config("default", &format!("[core]\naccount = {vm}\n"));
    let token = google_id_token("aud", json!({}));
    let mock = server.mock(|when, then| {
        when.path(IDENTITY)
            .query_param("audience", "aud")
            .query_param("format", "standard");
        then.status(200).body(&token);
    });
    let out = env
        .cmd()
        .env("GCE_METADATA_HOST", server.address().to_string())
        .args(["print-identity-token", "--audiences", "aud", "-o", "json"])
        .assert()
        .success();
    mock.assert();
    let v: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["source"], "metadata");
    assert_eq!(v["principal"], vm);
}

#[test]
fn p12_credentials_name_the_type() {
    let env = TestEnv::new();
    let db = env.credentials_db(&[(
        SA_EMAIL,
        &json!({"type": "service_account_p12", "client_email": SA_EMAIL, "private_key": "MIIKsecretp12"}),
    )]);
    let out = env
        .cmd()
        .args(["print-identity-token", SA_EMAIL])
        .assert()
        .code(3)
        .stderr(predicate::str::contains(format!(
            "{}: account {SA_EMAIL}: credential type `service_account_p12` (a P12 key) is not supported",
            db.display()
        )))
        .stderr(predicate::str::contains("gcloud iam service-accounts keys create"));
    assert!(!String::from_utf8_lossy(&out.get_output().stderr).contains("MIIKsecret"));
}

#[test]
fn a_corrupt_database_is_exit_3() {
    let env = TestEnv::new();
    let db = env.write("gcloud/credentials.db", vec![0x5a_u8; 4096]);
    env.cmd()
        .args(["print-identity-token", ME])
        .assert()
        .code(3)
        .stderr(predicate::str::contains(format!(
            "{}: not an SQLite database (gcloud's credentials.db)",
            db.display()
        )));
}

#[test]
fn a_database_without_the_table_is_exit_3() {
    let env = TestEnv::new();
    let db = env.gcloud().join("credentials.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute("CREATE TABLE other (x)", [])
        .unwrap();
    env.cmd()
        .args(["print-identity-token", ME])
        .assert()
        .code(3)
        .stderr(predicate::str::contains(
            "the database has no `credentials` table",
        ));
}

#[test]
fn a_database_locked_by_a_writer_is_exit_3_with_a_hint() {
    let env = TestEnv::new();
    let db = env.credentials_db(&[(ME, &user_login("http://127.0.0.1:9/token"))]);
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("BEGIN EXCLUSIVE; UPDATE credentials SET value = value;")
        .unwrap();
    env.cmd()
        .args(["print-identity-token", ME])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("the database is locked"))
        .stderr(predicate::str::contains("gcloud may be writing it"));
    conn.execute_batch("ROLLBACK;").unwrap();
}

#[test]
fn a_broken_stored_credential_names_the_account_and_field() {
    let env = TestEnv::new();
    let mut user = user_login("http://127.0.0.1:9/token");
    user.as_object_mut().unwrap().remove("client_id");
    let db = env.credentials_db(&[(ME, &user)]);
    env.cmd()
        .args(["print-identity-token", ME])
        .assert()
        .code(3)
        .stderr(predicate::str::contains(format!(
            "{}: account {ME}: missing field `client_id`",
            db.display()
        )));
}

#[test]
fn a_revoked_gcloud_login_hints_gcloud_auth_login_account() {
    let env = TestEnv::new();
    let server = MockServer::start();
    env.credentials_db(&[(ME, &user_login(&server.url("/token")))]);
    server.mock(|when, then| {
        when.method(POST).path("/token");
        then.status(400)
            .json_body(json!({"error": "invalid_grant", "error_description": "Bad Request"}));
    });
    env.cmd()
        .args(["print-identity-token", ME])
        .assert()
        .code(4)
        .stderr(predicate::str::contains(
            "hint: the refresh token has expired or was revoked; log in again: `gcloud auth login me@example.com`",
        ));
}

#[test]
fn impersonation_from_the_configuration() {
    let env = TestEnv::new();
    let server = MockServer::start();
    env.credentials_db(&[(ME, &user_login(&server.url("/token")))]);
    env.gcloud_config(
        "default",
        &format!("[core]\naccount = me@example.com\n\n[auth]\nimpersonate_service_account = d@proj.iam.gserviceaccount.com,{TARGET}\n"),
    );
    let token = google_id_token("aud", json!({}));
    let token_bodies = Bodies::default();
    let iam_bodies = Bodies::default();
    token_endpoint(
        &server,
        &token_bodies,
        user_reply(&google_id_token("x", json!({"email": ME}))),
    );
    let iam_mock = iam_endpoint(&server, TARGET, ACCESS_TOKEN, &iam_bodies, &token);
    let out = env
        .cmd()
        .env(
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS",
            server.base_url(),
        )
        .args(["print-identity-token", "--audiences", "aud", "-o", "json"])
        .assert()
        .success();
    iam_mock.assert();
    check_refresh(&token_bodies.one(), None);
    let body: Value = serde_json::from_str(&iam_bodies.one()).unwrap();
    assert_eq!(
        body,
        json!({
            "audience": "aud",
            "includeEmail": false,
            "delegates": ["projects/-/serviceAccounts/d@proj.iam.gserviceaccount.com"],
        })
    );
    let v: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["source"], "impersonated");
    assert_eq!(v["principal"], ME);
}

#[test]
fn the_flag_beats_the_configurations_impersonation() {
    let env = TestEnv::new();
    let server = MockServer::start();
    env.credentials_db(&[(ME, &user_login(&server.url("/token")))]);
    env.gcloud_config(
        "default",
        "[core]\naccount = me@example.com\n[auth]\nimpersonate_service_account = other@proj.iam.gserviceaccount.com\n",
    );
    let token = google_id_token("aud", json!({}));
    token_endpoint(&server, &Bodies::default(), user_reply(&token));
    let iam_mock = iam_endpoint(&server, TARGET, ACCESS_TOKEN, &Bodies::default(), &token);
    env.cmd()
        .env(
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS",
            server.base_url(),
        )
        .args([
            "print-identity-token",
            "--impersonate-service-account",
            TARGET,
        ])
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    iam_mock.assert();
}

#[test]
fn gcloud_dir_defaults_to_home_dot_config() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let dir = env.home().join(".config/gcloud");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("application_default_credentials.json"),
        user_login(&server.url("/token")).to_string(),
    )
    .unwrap();
    let token = google_id_token(USER_CLIENT_ID, json!({}));
    let mock = token_endpoint(&server, &Bodies::default(), user_reply(&token));
    env.cmd()
        .env_remove("CLOUDSDK_CONFIG")
        .arg("print-identity-token")
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    mock.assert();
}

#[test]
fn configuration_properties_fill_in_endpoint_overrides() {
    // [api_endpoint_overrides] iamcredentials and [auth] token_host, as gcloud reads them when the
    // variables are unset.
    let env = TestEnv::new();
    let server = MockServer::start();
    let mut key = sa_key("unused");
    key.as_object_mut().unwrap().remove("token_uri");
    let key = env.write_json("key.json", &key);
    env.gcloud_config(
        "default",
        &format!(
            "[api_endpoint_overrides]\niamcredentials = {}/\n[auth]\ntoken_host = {}\n",
            server.base_url(),
            server.url("/token")
        ),
    );
    let token = google_id_token("aud", json!({}));
    let token_bodies = Bodies::default();
    let token_mock = token_endpoint(
        &server,
        &token_bodies,
        json!({"access_token": ACCESS_TOKEN}),
    );
    let iam_mock = iam_endpoint(&server, TARGET, ACCESS_TOKEN, &Bodies::default(), &token);
    env.cmd()
        .env("GOOGLE_APPLICATION_CREDENTIALS", &key)
        .args([
            "impersonate",
            "--service-account",
            TARGET,
            "--audience",
            "aud",
        ])
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    token_mock.assert();
    iam_mock.assert();
    check_jwt_bearer(&token_bodies.one(), &server.url("/token"));
}
