//! The one command builder (a scrubbed environment), fake keys and fake JWTs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use assert_cmd::Command;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use httpmock::{Method::POST, MockServer};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};
use tempfile::TempDir;

/// The fake RSA key of the tests (PKCS#8 PEM), its key id and its key set.
pub const TEST_KEY: &str = include_str!("../fixtures/test-key.pem");
pub const TEST_KID: &str = "test-kid-1";
pub const TEST_JWKS: &str = include_str!("../fixtures/test-key.jwks.json");
/// A second RSA key, for signatures that must not verify.
pub const OTHER_KEY: &str = include_str!("../fixtures/other-key.pem");
pub const OTHER_JWKS: &str = include_str!("../fixtures/other-key.jwks.json");
/// A P-256 key (IAP-style ES256).
pub const ES256_KEY: &str = include_str!("../fixtures/es256-key.pem");
pub const ES256_KID: &str = "es-kid-1";
pub const ES256_JWKS: &str = include_str!("../fixtures/es256-key.jwks.json");

/// A temporary home for one test: HOME, the gcloud config dir and the cache all live inside it, and the
/// child sees no variable of the host's (no gcloud state, no proxy, no credentials).
pub struct TestEnv {
    pub dir: TempDir,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        std::fs::create_dir_all(dir.path().join("gcloud")).unwrap();
        TestEnv { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// The gcloud configuration directory (CLOUDSDK_CONFIG).
    pub fn gcloud(&self) -> PathBuf {
        self.dir.path().join("gcloud")
    }

    /// The token cache (IDTOK_CACHE_DIR).
    pub fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// Writes a file under the test's directory and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// The binary with a scrubbed environment. The metadata server's fallback IP points at a closed
    /// loopback port, so that nothing a test runs can leave this machine.
    pub fn cmd(&self) -> Command {
        Command::from_std(self.std_cmd())
    }

    /// The same scrubbed command as a `std::process::Command`, for a test that must spawn the binary and
    /// hold its pipes itself.
    pub fn std_cmd(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin!("idtok"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home())
            .env("XDG_CACHE_HOME", self.dir.path().join("xdg-cache"))
            .env("XDG_CONFIG_HOME", self.dir.path().join("xdg-config"))
            .env("CLOUDSDK_CONFIG", self.gcloud())
            .env("IDTOK_CACHE_DIR", self.cache())
            .env("GCE_METADATA_IP", "127.0.0.1:9")
            .env("RUST_BACKTRACE", "0");
        cmd
    }
}

/// The metadata server's identity endpoint.
pub const IDENTITY: &str = "/computeMetadata/v1/instance/service-accounts/default/identity";

/// `idtok metadata` against a stand-in metadata server.
pub fn metadata_cmd(env: &TestEnv, server: &MockServer) -> Command {
    let mut cmd = env.cmd();
    cmd.env("GCE_METADATA_HOST", server.address().to_string())
        .arg("metadata");
    cmd
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Base64url without padding, as JWTs use it.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs `header.claims` with an RSA key (PKCS#8 PEM), RS256.
pub fn sign_rs256(key_pem: &str, header: &Value, claims: &Value) -> String {
    let signing_input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let der = PrivatePkcs8KeyDer::from_pem_slice(key_pem.as_bytes()).expect("test key PEM");
    let key = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).expect("test key");
    let mut sig = vec![0; key.public().modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        signing_input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    format!("{signing_input}.{}", b64(&sig))
}

/// Signs `header.claims` with the P-256 test key, ES256.
pub fn sign_es256(header: &Value, claims: &Value) -> String {
    let signing_input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let der = PrivatePkcs8KeyDer::from_pem_slice(ES256_KEY.as_bytes()).expect("es256 PEM");
    let rng = SystemRandom::new();
    let key = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        der.secret_pkcs8_der(),
        &rng,
    )
    .unwrap();
    let sig = key.sign(&rng, signing_input.as_bytes()).unwrap();
    format!("{signing_input}.{}", b64(sig.as_ref()))
}

/// A Google-shaped ID token signed by the test key, valid for an hour, with `extra` claims merged in.
pub fn google_id_token(aud: &str, extra: Value) -> String {
    let iat = now();
    let mut claims = json!({
        "iss": "https://accounts.google.com",
        "aud": aud,
        "azp": "117778573422351985735",
        "sub": "117778573422351985735",
        "iat": iat,
        "exp": iat + 3600,
    });
    if let (Some(c), Some(e)) = (claims.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            c.insert(k.clone(), v.clone());
        }
    }
    sign_rs256(
        TEST_KEY,
        &json!({"alg": "RS256", "kid": TEST_KID, "typ": "JWT"}),
        &claims,
    )
}

/// Splits a JWT and returns its (header, payload) as JSON.
pub fn jwt_parts(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut next = || -> Value {
        let part = parts.next().expect("JWT part");
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
    };
    let header = next();
    let payload = next();
    (header, payload)
}

/// Asserts that no token-looking string reached stderr.
pub fn assert_no_token(stderr: &[u8], token: &str) {
    let stderr = String::from_utf8_lossy(stderr);
    assert!(!stderr.contains(token), "token leaked to stderr: {stderr}");
    // Not even the signature part alone.
    if let Some(sig) = token.rsplit('.').next() {
        assert!(
            sig.len() < 16 || !stderr.contains(sig),
            "signature leaked to stderr: {stderr}"
        );
    }
}

// ---- Credentials: key files, user logins, gcloud's directory, and checking what was sent. ----

/// The service account of the test key files.
pub const SA_EMAIL: &str = "runner@proj.iam.gserviceaccount.com";
/// The `private_key_id` of the test key files (the assertion's `kid`).
pub const SA_KEY_ID: &str = "0123456789abcdef0123456789abcdef01234567";
/// The target of impersonation tests.
pub const TARGET: &str = "target@proj.iam.gserviceaccount.com";
/// A user login's OAuth client and secrets.
pub const USER_CLIENT_ID: &str =
    "764086051850-6qr4p6gpi6hn506pt8ejuq83di341hur.apps.googleusercontent.com";
pub const USER_CLIENT_SECRET: &str = "d-FL95Q19q7MQmFpd7hHD0Ty";
pub const USER_REFRESH_TOKEN: &str = "1//0gRefreshTokenForTestsOnly-abcdefghijklmnopqrstuvwxyz";
/// gcloud's client id: the default audience.
pub const GCLOUD_AUD: &str = "32555940559.apps.googleusercontent.com";

/// A `service_account` key file whose token endpoint is `token_uri`.
pub fn sa_key(token_uri: &str) -> Value {
    json!({
        "type": "service_account",
        "project_id": "proj",
        "private_key_id": SA_KEY_ID,
        "private_key": TEST_KEY,
        "client_email": SA_EMAIL,
        "client_id": "117778573422351985735",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "universe_domain": "googleapis.com",
    })
}

/// An `authorized_user` file (as `gcloud auth application-default login` writes it) with `token_uri`.
pub fn user_login(token_uri: &str) -> Value {
    json!({
        "type": "authorized_user",
        "client_id": USER_CLIENT_ID,
        "client_secret": USER_CLIENT_SECRET,
        "refresh_token": USER_REFRESH_TOKEN,
        "token_uri": token_uri,
        "universe_domain": "googleapis.com",
    })
}

/// An `impersonated_service_account` file.
pub fn impersonated_file(source: Value, url_base: &str, target: &str, delegates: &[&str]) -> Value {
    json!({
        "type": "impersonated_service_account",
        "service_account_impersonation_url":
            format!("{url_base}/v1/projects/-/serviceAccounts/{target}:generateAccessToken"),
        "delegates": delegates,
        "source_credentials": source,
    })
}

impl TestEnv {
    /// Writes a JSON credential file under the test's directory.
    pub fn write_json(&self, name: &str, value: &Value) -> PathBuf {
        self.write(name, serde_json::to_vec_pretty(value).unwrap())
    }

    /// gcloud's `credentials.db` with these (account, credential JSON) rows, as gcloud creates it.
    pub fn credentials_db(&self, rows: &[(&str, &Value)]) -> PathBuf {
        let path = self.gcloud().join("credentials.db");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute(
            "CREATE TABLE IF NOT EXISTS credentials (account_id TEXT PRIMARY KEY, value BLOB)",
            [],
        )
        .unwrap();
        for (account, value) in rows {
            conn.execute(
                "REPLACE INTO credentials (account_id, value) VALUES (?1, ?2)",
                rusqlite::params![account, value.to_string()],
            )
            .unwrap();
        }
        path
    }

    /// `configurations/config_NAME` with this INI text.
    pub fn gcloud_config(&self, name: &str, ini: &str) -> PathBuf {
        let dir = self.gcloud().join("configurations");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("config_{name}"));
        std::fs::write(&path, ini).unwrap();
        path
    }

    /// gcloud's `active_config` file.
    pub fn active_config(&self, name: &str) {
        std::fs::write(self.gcloud().join("active_config"), name).unwrap();
    }

    /// The application default credentials file in gcloud's directory.
    pub fn adc(&self, value: &Value) -> PathBuf {
        let path = self.gcloud().join("application_default_credentials.json");
        std::fs::write(&path, value.to_string()).unwrap();
        path
    }
}

/// Records the bodies a mock received (a matcher that always matches), to check them after the run.
#[derive(Clone, Default)]
pub struct Bodies(pub std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl Bodies {
    pub fn matcher(&self) -> impl Fn(&httpmock::HttpMockRequest) -> bool + Send + Sync + 'static {
        let bodies = self.0.clone();
        move |req| {
            bodies.lock().unwrap().push(req.body_string());
            true
        }
    }

    /// Like `matcher`, but records each request's bearer token (empty without one) instead of its body.
    pub fn bearer_matcher(
        &self,
    ) -> impl Fn(&httpmock::HttpMockRequest) -> bool + Send + Sync + 'static {
        let seen = self.0.clone();
        move |req| {
            let header = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            seen.lock()
                .unwrap()
                .push(header.strip_prefix("Bearer ").unwrap_or("").to_string());
            true
        }
    }

    pub fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// The one body received (fails unless exactly one distinct body arrived).
    pub fn one(&self) -> String {
        let mut all = self.all();
        all.dedup();
        assert_eq!(all.len(), 1, "expected one request body, got {all:?}");
        all.remove(0)
    }
}

/// An `application/x-www-form-urlencoded` body as ordered (name, value) pairs, decoded.
pub fn form(body: &str) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 2;
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8(out).unwrap()
    }
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// The names of a form's fields, sorted.
pub fn form_names(fields: &[(String, String)]) -> Vec<String> {
    let mut names: Vec<String> = fields.iter().map(|(k, _)| k.clone()).collect();
    names.sort();
    names
}

/// A form field's value.
pub fn form_value<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no form field `{name}` in {fields:?}"))
}

// ---- Stand-ins for Google's token endpoint and IAM Credentials, and checks of what they received. ----

/// The path of IAM Credentials' generateIdToken for `email`.
pub fn generate_id_token_path(email: &str) -> String {
    format!("/v1/projects/-/serviceAccounts/{email}:generateIdToken")
}

/// The access token the stand-in token endpoints hand out.
pub const ACCESS_TOKEN: &str = "ya29.c.test-access-token-0123456789abcdefghijklmnopqrstuvwxyz";

/// A stand-in OAuth2 token endpoint at `/token` that records the bodies it receives.
pub fn token_endpoint<'a>(
    server: &'a MockServer,
    bodies: &Bodies,
    reply: Value,
) -> httpmock::Mock<'a> {
    let matcher = bodies.matcher();
    server.mock(|when, then| {
        when.method(POST)
            .path("/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .is_true(matcher);
        then.status(200)
            .header("content-type", "application/json")
            .json_body(reply);
    })
}

/// A stand-in token endpoint at `/token` that grants ACCESS_TOKEN, for tests that check only what comes after.
pub fn access_token_endpoint(server: &MockServer) -> httpmock::Mock<'_> {
    token_endpoint(
        server,
        &Bodies::default(),
        json!({"access_token": ACCESS_TOKEN}),
    )
}

/// A stand-in generateIdToken for `target` that checks the Bearer header and records the bodies.
pub fn iam_endpoint<'a>(
    server: &'a MockServer,
    target: &str,
    bearer: &str,
    bodies: &Bodies,
    token: &str,
) -> httpmock::Mock<'a> {
    let matcher = bodies.matcher();
    let token = token.to_string();
    server.mock(|when, then| {
        when.method(POST)
            .path(generate_id_token_path(target))
            .header("authorization", format!("Bearer {bearer}"))
            .header("content-type", "application/json")
            .is_true(matcher);
        then.status(200).json_body(json!({ "token": token }));
    })
}

/// Checks a JWT-bearer form: exactly `grant_type` and `assertion`, the assertion signed by the test key with
/// `kid` = private_key_id and the standard claims; returns the claims.
pub fn check_jwt_bearer(body: &str, token_uri: &str) -> Value {
    let fields = form(body);
    assert_eq!(
        form_names(&fields),
        ["assertion", "grant_type"],
        "{fields:?}"
    );
    assert_eq!(
        form_value(&fields, "grant_type"),
        "urn:ietf:params:oauth:grant-type:jwt-bearer"
    );
    let (header, claims) = verify_with_test_key(form_value(&fields, "assertion"));
    assert_eq!(
        header,
        json!({"alg": "RS256", "typ": "JWT", "kid": SA_KEY_ID})
    );
    assert_eq!(claims["iss"], SA_EMAIL);
    assert_eq!(claims["aud"], token_uri);
    let iat = claims["iat"].as_u64().unwrap();
    assert!(iat.abs_diff(now()) <= 5, "iat {iat} is not now");
    assert_eq!(claims["exp"].as_u64().unwrap(), iat + 3600);
    claims
}

/// Checks a refresh grant: exactly the four fields (and `audience` when given).
pub fn check_refresh(body: &str, audience: Option<&str>) {
    let fields = form(body);
    let mut expected = vec!["client_id", "client_secret", "grant_type", "refresh_token"];
    if audience.is_some() {
        expected.insert(0, "audience");
    }
    assert_eq!(form_names(&fields), expected, "{fields:?}");
    assert_eq!(form_value(&fields, "grant_type"), "refresh_token");
    assert_eq!(form_value(&fields, "client_id"), USER_CLIENT_ID);
    assert_eq!(form_value(&fields, "client_secret"), USER_CLIENT_SECRET);
    assert_eq!(form_value(&fields, "refresh_token"), USER_REFRESH_TOKEN);
    if let Some(audience) = audience {
        assert_eq!(form_value(&fields, "audience"), audience);
    }
}

/// Verifies an RS256 JWT against the test key's public key (from its JWKS) and returns (header, claims).
pub fn verify_with_test_key(jwt: &str) -> (Value, Value) {
    let jwks: Value = serde_json::from_str(TEST_JWKS).unwrap();
    let key = &jwks["keys"][0];
    let n = URL_SAFE_NO_PAD.decode(key["n"].as_str().unwrap()).unwrap();
    let e = URL_SAFE_NO_PAD.decode(key["e"].as_str().unwrap()).unwrap();
    let (signed, sig) = jwt.rsplit_once('.').expect("a JWT");
    let sig = URL_SAFE_NO_PAD.decode(sig).expect("base64url signature");
    ring::signature::RsaPublicKeyComponents { n: &n, e: &e }
        .verify(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            signed.as_bytes(),
            &sig,
        )
        .expect("the assertion's signature verifies with the test key");
    jwt_parts(jwt)
}

impl TestEnv {
    /// The binary inside a fresh network namespace that has only a loopback interface: a name lookup there
    /// (`metadata.google.internal`) fails at once, without a DNS query leaving the machine. `prelude` is
    /// shell run first inside the namespace (to start a stand-in). `None` where namespaces cannot be made
    /// (not root, no `unshare`/`ip`); CI runs as root and has both.
    pub fn cmd_in_private_network(&self, prelude: &str) -> Option<Command> {
        let usable = std::process::Command::new("unshare")
            .args(["--net", "--", "ip", "link", "set", "lo", "up"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !usable {
            eprintln!("skipped: cannot create a network namespace (needs root, unshare and ip)");
            return None;
        }
        let idtok = self.cmd();
        let mut cmd = Command::new("unshare");
        cmd.env_clear();
        for (key, value) in idtok.get_envs() {
            if let Some(value) = value {
                cmd.env(key, value);
            }
        }
        cmd.args(["--net", "--", "sh", "-c"])
            .arg(format!(
                "ip link set lo up || exit 99\n{prelude}\nexec \"$0\" \"$@\""
            ))
            .arg(assert_cmd::cargo::cargo_bin!("idtok"));
        Some(cmd)
    }
}

/// A one-shot HTTP stand-in written in Python (for a network namespace, where the test's own httpmock
/// servers cannot be reached): it answers one request with `body`, writes the request's head to
/// `<dir>/request.txt`, and touches `<dir>/ready` once it listens on 127.0.0.1:`port`.
pub fn one_shot_server_prelude(dir: &Path, port: u16, body: &str) -> String {
    let script = dir.join("one_shot.py");
    std::fs::write(
        &script,
        format!(
            r#"import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", {port}))
s.listen(1)
open(sys.argv[1] + "/ready", "w").close()
s.settimeout(20)
c, _ = s.accept()
head = b""
while b"\r\n\r\n" not in head:
    chunk = c.recv(4096)
    if not chunk:
        break
    head += chunk
open(sys.argv[1] + "/request.txt", "wb").write(head)
body = {body:?}.encode()
c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/text\r\nMetadata-Flavor: Google\r\nContent-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
c.close()
"#
        ),
    )
    .unwrap();
    format!(
        "python3 {script} {dir} &\nfor i in $(seq 1 500); do [ -e {dir}/ready ] && break; sleep 0.01; done",
        script = script.display(),
        dir = dir.display()
    )
}
