//! The one command builder (a scrubbed environment), fake keys and fake JWTs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use assert_cmd::Command;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
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
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("idtok"));
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

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn b64(bytes: &[u8]) -> String {
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
