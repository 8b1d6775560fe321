//! The token cache (SPEC.md section 4), through `idtok metadata` against a stand-in metadata server. A hit or
//! a miss is proved by the requests the mock received, never by comparing tokens.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use httpmock::prelude::*;
use predicates::prelude::*;
use serde_json::{Value, json};

use crate::support::*;

/// A mock identity endpoint that answers every request with `token`.
fn serve<'a>(server: &'a MockServer, token: &str) -> httpmock::Mock<'a> {
    server.mock(|when, then| {
        when.method(GET)
            .path(IDENTITY)
            .header("Metadata-Flavor", "Google");
        then.status(200).body(token);
    })
}

/// The token entries in the cache directory (temporary files excluded).
fn entries(dir: &Path) -> Vec<PathBuf> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = read
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("token-") && name.ends_with(".json")
        })
        .collect();
    found.sort();
    found
}

/// Every file in the cache directory, temporary files included.
fn all_files(dir: &Path) -> Vec<String> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    read.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// The one entry of the cache directory.
fn only_entry(dir: &Path) -> PathBuf {
    let found = entries(dir);
    assert_eq!(found.len(), 1, "entries: {found:?}");
    found.into_iter().next().unwrap()
}

fn stderr_of(out: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&out.get_output().stderr).into_owned()
}

#[test]
fn a_second_run_sends_no_request_and_prints_the_same_token() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let token = google_id_token("https://svc", json!({}));
    let mock = serve(&server, &token);

    let first = metadata_cmd(&env, &server)
        .args(["--audience", "https://svc", "-v"])
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    assert!(
        stderr_of(&first).contains("cache miss"),
        "{}",
        stderr_of(&first)
    );
    assert_eq!(mock.calls(), 1);

    let second = metadata_cmd(&env, &server)
        .args(["--audience", "https://svc", "-vv"])
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    let stderr = stderr_of(&second);
    assert!(stderr.contains("cache hit"), "{stderr}");
    assert!(!stderr.contains("GET "), "a hit sends nothing: {stderr}");
    assert_no_token(&second.get_output().stderr, &token);
    assert_eq!(mock.calls(), 1, "the second run must not reach the server");

    // Without -v a hit is silent on stderr.
    metadata_cmd(&env, &server)
        .args(["--audience", "https://svc"])
        .assert()
        .success()
        .stdout(format!("{token}\n"))
        .stderr("");
    assert_eq!(mock.calls(), 1);
}

#[test]
fn header_output_from_the_cache() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let token = google_id_token("a", json!({}));
    let mock = serve(&server, &token);
    for _ in 0..2 {
        metadata_cmd(&env, &server)
            .args(["--audience", "a", "-o", "header"])
            .assert()
            .success()
            .stdout(format!("Authorization: Bearer {token}\n"));
    }
    assert_eq!(mock.calls(), 1);
}

#[test]
fn no_cache_flag_and_env_neither_read_nor_write() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let token = google_id_token("a", json!({}));
    let mock = serve(&server, &token);

    // Neither writes: the directory stays empty.
    metadata_cmd(&env, &server)
        .args(["--audience", "a", "--no-cache"])
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    assert_eq!(mock.calls(), 1);
    metadata_cmd(&env, &server)
        .env("IDTOK_NO_CACHE", "1")
        .args(["--audience", "a"])
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    assert_eq!(mock.calls(), 2);
    assert!(
        entries(&env.cache()).is_empty(),
        "{:?}",
        all_files(&env.cache())
    );

    // Fill the cache, then neither reads it.
    metadata_cmd(&env, &server)
        .args(["--audience", "a"])
        .assert()
        .success();
    assert_eq!(mock.calls(), 3);
    assert_eq!(entries(&env.cache()).len(), 1);
    metadata_cmd(&env, &server)
        .args(["--audience", "a", "--no-cache"])
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    assert_eq!(mock.calls(), 4, "--no-cache must send a request");
    metadata_cmd(&env, &server)
        .env("IDTOK_NO_CACHE", "1")
        .args(["--audience", "a"])
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    assert_eq!(mock.calls(), 5, "IDTOK_NO_CACHE=1 must send a request");

    // A false value leaves the cache on.
    metadata_cmd(&env, &server)
        .env("IDTOK_NO_CACHE", "0")
        .args(["--audience", "a"])
        .assert()
        .success();
    assert_eq!(mock.calls(), 5, "IDTOK_NO_CACHE=0 keeps the cache");
}

#[test]
fn min_ttl_longer_than_the_remaining_lifetime_forces_a_refresh() {
    let env = TestEnv::new();
    let server = MockServer::start();
    // Ten minutes left.
    let iat = now() - 3000;
    let token = google_id_token("a", json!({"iat": iat, "exp": iat + 3600}));
    let mock = serve(&server, &token);

    metadata_cmd(&env, &server)
        .args(["--audience", "a"])
        .assert()
        .success();
    // The default min-ttl (300 s) is shorter than what is left: a hit.
    metadata_cmd(&env, &server)
        .args(["--audience", "a"])
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    assert_eq!(mock.calls(), 1);
    metadata_cmd(&env, &server)
        .args(["--audience", "a", "--min-ttl", "500"])
        .assert()
        .success();
    assert_eq!(mock.calls(), 1, "500 s < 600 s left: still a hit");

    let out = metadata_cmd(&env, &server)
        .args(["--audience", "a", "--min-ttl", "900", "-v"])
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    assert_eq!(mock.calls(), 2, "--min-ttl 900 > 600 s left must refresh");
    let stderr = stderr_of(&out);
    assert!(stderr.contains("< min-ttl 900s, refreshing"), "{stderr}");

    metadata_cmd(&env, &server)
        .env("IDTOK_MIN_TTL", "3000")
        .args(["--audience", "a"])
        .assert()
        .success();
    assert_eq!(mock.calls(), 3, "IDTOK_MIN_TTL refreshes too");
}

#[test]
fn a_token_close_to_expiry_is_refreshed_by_default() {
    let env = TestEnv::new();
    let server = MockServer::start();
    // 100 s left: under the default min-ttl of 300 s.
    let iat = now() - 3500;
    let token = google_id_token("a", json!({"iat": iat, "exp": iat + 3600}));
    let mock = serve(&server, &token);
    for _ in 0..2 {
        metadata_cmd(&env, &server)
            .args(["--audience", "a"])
            .assert()
            .success()
            .stdout(format!("{token}\n"));
    }
    assert_eq!(mock.calls(), 2);
}

#[test]
fn each_audience_format_account_and_host_has_its_own_entry() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let other_server = MockServer::start();
    let sa = "runner@proj.iam.gserviceaccount.com";
    let token = google_id_token("a", json!({}));
    let default_sa = serve(&server, &token);
    let named_sa = server.mock(|when, then| {
        when.path(format!(
            "/computeMetadata/v1/instance/service-accounts/{sa}/identity"
        ));
        then.status(200).body(&token);
    });
    let other_host = serve(&other_server, &token);

    let variants: Vec<Vec<&str>> = vec![
        vec!["--audience", "a"],
        vec!["--audience", "b"],
        vec!["--audience", "a", "--token-format", "full"],
        vec![
            "--audience",
            "a",
            "--token-format",
            "full",
            "--include-license",
        ],
    ];
    // Twice each: the first run of each variant is a miss, the second a hit.
    for round in 0..2 {
        for args in &variants {
            metadata_cmd(&env, &server)
                .args(args)
                .assert()
                .success()
                .stdout(format!("{token}\n"));
        }
        metadata_cmd(&env, &server)
            .args(["--audience", "a", "--service-account", sa])
            .assert()
            .success();
        env.cmd()
            .env("GCE_METADATA_HOST", other_server.address().to_string())
            .args(["metadata", "--audience", "a"])
            .assert()
            .success();
        assert_eq!(default_sa.calls(), variants.len(), "round {round}");
        assert_eq!(named_sa.calls(), 1, "round {round}");
        assert_eq!(other_host.calls(), 1, "round {round}");
    }
    assert_eq!(entries(&env.cache()).len(), variants.len() + 2);
}

#[test]
fn json_output_says_whether_the_token_came_from_the_cache() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let sa = "sa@p.iam.gserviceaccount.com";
    let token = google_id_token("https://svc", json!({"email": sa, "email_verified": true}));
    let mock = server.mock(|when, then| {
        when.path(IDENTITY).query_param("format", "full");
        then.status(200).body(&token);
    });
    let run = || -> Value {
        let out = metadata_cmd(&env, &server)
            .args([
                "--audience",
                "https://svc",
                "--token-format",
                "full",
                "-o",
                "json",
            ])
            .assert()
            .success();
        serde_json::from_slice(&out.get_output().stdout).unwrap()
    };
    let first = run();
    let second = run();
    assert_eq!(mock.calls(), 1);
    assert_eq!(first["cached"], false);
    assert_eq!(second["cached"], true);
    for v in [&first, &second] {
        assert_eq!(v["token"], token);
        assert_eq!(v["source"], "metadata");
        assert_eq!(v["principal"], sa);
        assert_eq!(v["email"], sa);
        assert_eq!(v["audience"], "https://svc");
    }
}

#[cfg(unix)]
#[test]
fn the_directory_is_0700_and_entries_0600() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    let server = MockServer::start();
    let token = google_id_token("a", json!({}));
    serve(&server, &token);
    // A directory that does not exist yet, two levels deep.
    let dir = env.path().join("fresh").join("idtok-cache");
    metadata_cmd(&env, &server)
        .env("IDTOK_CACHE_DIR", &dir)
        .args(["--audience", "a"])
        .assert()
        .success();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&only_entry(&dir)), 0o600);
    assert_eq!(all_files(&dir).len(), 1, "no temporary file is left behind");
}

#[test]
fn without_idtok_cache_dir_the_platform_cache_directory_is_used() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let token = google_id_token("a", json!({}));
    let mock = serve(&server, &token);
    for _ in 0..2 {
        metadata_cmd(&env, &server)
            .env_remove("IDTOK_CACHE_DIR")
            .args(["--audience", "a"])
            .assert()
            .success()
            .stdout(format!("{token}\n"));
    }
    assert_eq!(mock.calls(), 1);
    // TestEnv points XDG_CACHE_HOME (Linux) into the test's directory; elsewhere, look for any entry.
    if cfg!(target_os = "linux") {
        only_entry(&env.path().join("xdg-cache").join("idtok"));
    }
}

#[test]
fn an_entry_holds_the_token_and_how_it_was_minted_and_nothing_else() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let sa = "runner@proj.iam.gserviceaccount.com";
    let token = google_id_token("a", json!({"email": sa}));
    server.mock(|when, then| {
        when.path(format!(
            "/computeMetadata/v1/instance/service-accounts/{sa}/identity"
        ));
        then.status(200).body(&token);
    });
    metadata_cmd(&env, &server)
        .args(["--audience", "a", "--service-account", sa])
        .assert()
        .success();
    let path = only_entry(&env.cache());
    let text = std::fs::read_to_string(&path).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let mut fields: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort();
    assert_eq!(
        fields,
        ["format", "key", "principal", "source", "token"],
        "{text}"
    );
    assert_eq!(v["token"], token);
    assert_eq!(v["source"], "metadata");
    assert_eq!(v["principal"], sa);
    assert_eq!(v["format"], 1);
    let key = v["key"].as_str().unwrap();
    assert_eq!(key.len(), 64);
    assert!(key.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        path.file_name().unwrap().to_string_lossy(),
        format!("token-{key}.json"),
        "the file is named by its key"
    );
    for secret in [
        "refresh_token",
        "private_key",
        "access_token",
        "client_secret",
    ] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}

/// Fills the cache with one good entry, overwrites it with `corrupt(entry JSON)`, and checks that the
/// next run ignores it, asks the server again, prints the fresh token and replaces the entry.
fn corrupt_entry_is_ignored_and_replaced(corrupt: impl FnOnce(&Value) -> Vec<u8>) {
    let env = TestEnv::new();
    let server = MockServer::start();
    let token = google_id_token("a", json!({}));
    let mock = serve(&server, &token);
    metadata_cmd(&env, &server)
        .args(["--audience", "a"])
        .assert()
        .success();
    let path = only_entry(&env.cache());
    let good: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let bad = corrupt(&good);
    std::fs::write(&path, &bad).unwrap();

    let out = metadata_cmd(&env, &server)
        .args(["--audience", "a", "-v"])
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    assert_eq!(mock.calls(), 2, "a corrupt entry must not be used");
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("cache miss") || stderr.contains("refreshing"),
        "{stderr}"
    );
    assert!(stderr.contains("cache: stored"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_no_token(&out.get_output().stderr, &token);
    // Replaced by a good entry: the next run is a hit.
    let replaced: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(replaced, good);
    metadata_cmd(&env, &server)
        .args(["--audience", "a"])
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    assert_eq!(mock.calls(), 2);
}

#[test]
fn a_garbage_entry_is_replaced() {
    corrupt_entry_is_ignored_and_replaced(|_| b"\x00\xff garbage \x89PNG".to_vec());
}

#[test]
fn an_empty_entry_is_replaced() {
    corrupt_entry_is_ignored_and_replaced(|_| Vec::new());
}

#[test]
fn a_truncated_entry_is_replaced() {
    corrupt_entry_is_ignored_and_replaced(|good| {
        let text = good.to_string();
        text.as_bytes()[..text.len() / 2].to_vec()
    });
}

#[test]
fn an_entry_whose_token_is_not_a_jwt_is_replaced() {
    corrupt_entry_is_ignored_and_replaced(|good| {
        let mut v = good.clone();
        v["token"] = json!("not-a-jwt");
        v.to_string().into_bytes()
    });
}

#[test]
fn an_entry_with_an_expired_token_is_replaced() {
    corrupt_entry_is_ignored_and_replaced(|good| {
        let mut v = good.clone();
        let iat = now() - 7200;
        v["token"] = json!(google_id_token("a", json!({"iat": iat, "exp": iat + 3600})));
        v.to_string().into_bytes()
    });
}

#[test]
fn an_entry_without_exp_is_replaced() {
    corrupt_entry_is_ignored_and_replaced(|good| {
        let mut v = good.clone();
        v["token"] = json!(sign_rs256(
            TEST_KEY,
            &json!({"alg": "RS256", "kid": TEST_KID}),
            &json!({"aud": "a", "iss": "https://accounts.google.com"}),
        ));
        v.to_string().into_bytes()
    });
}

#[test]
fn an_entry_stored_under_another_key_is_replaced() {
    corrupt_entry_is_ignored_and_replaced(|good| {
        let mut v = good.clone();
        v["key"] = json!("0".repeat(64));
        v.to_string().into_bytes()
    });
}

#[test]
fn an_entry_with_wrong_field_types_is_replaced() {
    corrupt_entry_is_ignored_and_replaced(|good| {
        let mut v = good.clone();
        v["token"] = json!(42);
        v.to_string().into_bytes()
    });
}

#[test]
fn an_oversized_entry_is_replaced() {
    corrupt_entry_is_ignored_and_replaced(|good| {
        let mut v = good.clone();
        v["padding"] = json!("x".repeat(200 * 1024));
        v.to_string().into_bytes()
    });
}

#[cfg(unix)]
#[test]
fn an_entry_readable_by_others_is_not_trusted() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    let server = MockServer::start();
    let token = google_id_token("a", json!({}));
    let mock = serve(&server, &token);
    metadata_cmd(&env, &server)
        .args(["--audience", "a"])
        .assert()
        .success();
    let path = only_entry(&env.cache());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = metadata_cmd(&env, &server)
        .args(["--audience", "a", "-v"])
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    assert!(
        stderr_of(&out).contains("not private"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(mock.calls(), 2);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600,
        "the replacement is private again"
    );
}

#[test]
fn an_entry_that_is_a_directory_is_ignored() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let token = google_id_token("a", json!({}));
    let mock = serve(&server, &token);
    metadata_cmd(&env, &server)
        .args(["--audience", "a"])
        .assert()
        .success();
    let path = only_entry(&env.cache());
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    // Cannot be read, cannot be replaced: the command still succeeds, with a fresh token.
    let out = metadata_cmd(&env, &server)
        .args(["--audience", "a", "-v"])
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    assert_eq!(mock.calls(), 2);
    let stderr = stderr_of(&out);
    assert!(stderr.contains("cache miss"), "{stderr}");
    assert!(stderr.contains("cannot write the token cache"), "{stderr}");
}

#[test]
fn an_unwritable_cache_directory_does_not_fail_the_command() {
    // A regular file where the directory should be: no mkdir can succeed there, not even as root.
    let env = TestEnv::new();
    let server = MockServer::start();
    let token = google_id_token("a", json!({}));
    let mock = serve(&server, &token);
    let blocker = env.write("not-a-dir", "x");
    let dir = blocker.join("idtok");
    metadata_cmd(&env, &server)
        .env("IDTOK_CACHE_DIR", &dir)
        .args(["--audience", "a"])
        .assert()
        .success()
        .stdout(format!("{token}\n"))
        .stderr("");
    let out = metadata_cmd(&env, &server)
        .env("IDTOK_CACHE_DIR", &dir)
        .args(["--audience", "a", "-v"])
        .assert()
        .success()
        .stdout(format!("{token}\n"));
    assert!(
        stderr_of(&out).contains("warning: cannot write the token cache"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(mock.calls(), 2);
}

#[cfg(unix)]
#[test]
fn a_read_only_cache_directory_does_not_fail_the_command() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    let server = MockServer::start();
    let token = google_id_token("a", json!({}));
    let mock = serve(&server, &token);
    let dir = env.path().join("ro");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o500)).unwrap();
    metadata_cmd(&env, &server)
        .env("IDTOK_CACHE_DIR", &dir)
        .args(["--audience", "a"])
        .assert()
        .success()
        .stdout(format!("{token}\n"))
        .stderr("");
    assert_eq!(mock.calls(), 1);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
}

#[test]
fn a_failed_fetch_writes_nothing() {
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
        .stdout("");
    assert!(entries(&env.cache()).is_empty());
}

#[test]
fn thirty_concurrent_runs_all_succeed_and_leave_a_readable_cache() {
    let env = TestEnv::new();
    let server = MockServer::start();
    let token = google_id_token("a", json!({}));
    let mock = serve(&server, &token);
    let children: Vec<_> = (0..30)
        .map(|_| {
            env.std_cmd()
                .env("GCE_METADATA_HOST", server.address().to_string())
                .args(["metadata", "--audience", "a", "--timeout", "60"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{token}\n"));
        let (header, payload) = jwt_parts(String::from_utf8_lossy(&out.stdout).trim());
        assert_eq!(header["alg"], "RS256");
        assert_eq!(payload["aud"], "a");
    }
    let calls = mock.calls();
    assert!((1..=30).contains(&calls), "{calls} calls");
    // One whole entry and no temporary file left behind.
    only_entry(&env.cache());
    assert_eq!(
        all_files(&env.cache()).len(),
        1,
        "{:?}",
        all_files(&env.cache())
    );
    let out = metadata_cmd(&env, &server)
        .args(["--audience", "a", "-v"])
        .timeout(Duration::from_secs(30))
        .assert()
        .success()
        .stdout(format!("{token}\n"))
        .stderr(predicate::str::contains("cache hit"));
    assert_no_token(&out.get_output().stderr, &token);
    assert_eq!(mock.calls(), calls, "the run after them is a hit");
}

/// A cache directory others can write to (a shared `IDTOK_CACHE_DIR` under /tmp) is not used at all: an
/// entry planted there would hand a script someone else's token. The command still succeeds, with a fresh
/// token and a warning.
#[cfg(unix)]
#[test]
fn a_cache_directory_others_can_write_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    let server = MockServer::start();
    let token = google_id_token("a", json!({}));
    let mock = serve(&server, &token);
    let shared = env.path().join("shared");
    metadata_cmd(&env, &server)
        .env("IDTOK_CACHE_DIR", &shared)
        .args(["--audience", "a"])
        .assert()
        .success();
    assert_eq!(
        std::fs::metadata(&shared).unwrap().permissions().mode() & 0o777,
        0o700
    );
    // Someone else's token, planted under the key of this command.
    let planted = google_id_token("a", json!({"email": "attacker@example.com"}));
    let path = only_entry(&shared);
    let mut entry: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    entry["token"] = json!(planted);
    std::fs::write(&path, entry.to_string()).unwrap();
    for mode in [0o777, 0o1777, 0o770] {
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(mode)).unwrap();
        metadata_cmd(&env, &server)
            .env("IDTOK_CACHE_DIR", &shared)
            .args(["--audience", "a"])
            .assert()
            .success()
            .stdout(format!("{token}\n"))
            .stderr(predicate::str::contains(format!(
                "idtok: warning: not using the cache directory {}: it is writable by others",
                shared.display()
            )));
    }
    assert_eq!(mock.calls(), 4);
    // Nothing was written there: the planted entry is still the one on disk.
    let entry: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(entry["token"], planted.as_str());
}

/// A cache directory owned by another user is not used either (only checkable as root, who can chown).
#[cfg(unix)]
#[test]
fn a_cache_directory_owned_by_someone_else_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    let server = MockServer::start();
    let token = google_id_token("a", json!({}));
    let mock = serve(&server, &token);
    let shared = env.path().join("theirs");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
    let me = std::fs::metadata(env.path())
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap();
    // Owned by someone else: as root, chown it away; otherwise a directory root owns is someone else's.
    let dir = if me == 0 {
        std::os::unix::fs::chown(&shared, Some(4242), Some(4242)).unwrap();
        shared.clone()
    } else {
        std::path::PathBuf::from("/")
    };
    metadata_cmd(&env, &server)
        .env("IDTOK_CACHE_DIR", &dir)
        .args(["--audience", "a"])
        .assert()
        .success()
        .stdout(format!("{token}\n"))
        .stderr(predicate::str::contains(format!(
            "idtok: warning: not using the cache directory {}: it is owned by uid",
            dir.display()
        )));
    assert_eq!(mock.calls(), 1);
    assert!(all_files(&dir).iter().all(|f| !f.starts_with("token-")));
}
