//! Property tests of the parsers that read untrusted input: tokens (`Jwt::parse`, `decode::extract`, the
//! views of `decode`), key sets (`verify::KeySet::parse`) and the checks of `--verify`. Whatever the input,
//! they must not panic, and every error must be one of the documented kinds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;
use serde_json::{Map, Value};

use idtok::decode;
use idtok::error::Error;
use idtok::token::{Jwt, TokenError};
use idtok::verify::{self, Alg, Expect, KeySet, Lookup};

const TEST_JWKS: &str = include_str!("fixtures/test-key.jwks.json");
const ES256_JWKS: &str = include_str!("fixtures/es256-key.jwks.json");

/// The checks `--verify` can name (SPEC.md section 2.4), in order.
const CHECKS: [&str; 9] = [
    "algorithm",
    "key",
    "signature",
    "issuer",
    "expiry",
    "not-before",
    "issued-at",
    "audience",
    "email",
];

/// Any JSON value, with the numbers that break time arithmetic (huge, negative, fractional) well represented.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        // Floats whose decimal form parses back to the same f64 (serde_json's default parser may be one ulp
        // off for others), including extremes that break time arithmetic.
        any::<i32>().prop_map(|i| Value::from(f64::from(i) + 0.5)),
        prop::sample::select(vec![
            1e20,
            -1e20,
            1e300,
            -1e300,
            f64::MAX,
            f64::MIN,
            5e-324,
            -0.0
        ])
        .prop_map(Value::from),
        (0u64..4_000_000_000).prop_map(Value::from),
        ".{0,24}".prop_map(Value::String),
        // Values the checks look for, so that arbitrary tokens get past the first checks often.
        prop::sample::select(vec![
            "RS256",
            "ES256",
            "none",
            "HS256",
            "test-kid-1",
            "es-kid-1",
            "https://accounts.google.com",
            "accounts.google.com",
            "https://cloud.google.com/iap",
            "a",
            "e@x",
            "RSA",
            "EC",
            "P-256",
            "sig",
            "x.apps.googleusercontent.com",
            "sa@p.iam.gserviceaccount.com",
            "AQAB",
        ])
        .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Object keys: often a name the code looks at, sometimes anything.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "alg", "kid", "typ", "crit", "iss", "sub", "aud", "azp", "email", "email_verified", "iat", "nbf",
            "exp", "google", "compute_engine", "keys", "kty", "crv", "n", "e", "x", "y", "use",
        ])
        .prop_map(str::to_string),
        1 => ".{0,8}",
    ]
}

/// A JSON object shaped like a JWT header or payload.
fn object() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(key(), json(), 0..10).prop_map(|m| m.into_iter().collect())
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// One segment of a JWT-shaped string: base64url of JSON, of bytes, or characters from the alphabet.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        object().prop_map(|o| b64(Value::Object(o).to_string().as_bytes())),
        json().prop_map(|v| b64(v.to_string().as_bytes())),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| b64(&b)),
        "[A-Za-z0-9_=+/-]{0,40}",
    ]
}

fn jwt_shaped() -> impl Strategy<Value = String> {
    prop::collection::vec(segment(), 1..5).prop_map(|parts| parts.join("."))
}

/// The documented errors of `Jwt::parse` for this input.
fn assert_documented(input: &str, error: &TokenError) {
    let trimmed = input.trim();
    match error {
        TokenError::Empty => assert!(trimmed.is_empty()),
        TokenError::AccessToken => assert!(trimmed.starts_with("ya29.")),
        TokenError::Parts(n) => {
            assert_ne!(*n, 3);
            assert_eq!(*n, trimmed.split('.').count());
        }
        TokenError::Base64(part) => assert!(["header", "payload", "signature"].contains(part)),
        TokenError::Json(part) | TokenError::NotObject(part) => {
            assert!(["header", "payload"].contains(part))
        }
        TokenError::TooLarge(_) => panic!("the parser has no size limit; decode applies it"),
    }
    // Messages name the part, never the input.
    if trimmed.len() >= 24 {
        assert!(!error.to_string().contains(trimmed));
    }
}

fn check_everything(jwt: &Jwt, now: SystemTime) {
    // The views for people and scripts never panic.
    let human = decode::render_human(jwt, now, None);
    assert!(human.ends_with('\n'));
    let json = decode::render_json(jwt);
    let back: Value = serde_json::from_str(&json).expect("--json output is JSON");
    assert_eq!(back["header"], Value::Object(jwt.header.clone()));
    assert_eq!(back["payload"], Value::Object(jwt.payload.clone()));
    let _ = decode::describe_kind(jwt);
    for names in [
        vec!["exp".to_string()],
        vec!["/google/compute_engine".to_string()],
    ] {
        match decode::render_claims(jwt, &names) {
            Ok(out) => assert!(out.ends_with('\n')),
            Err(Error::MissingClaim(name)) => assert_eq!(name, names[0]),
            Err(other) => panic!("undocumented error {other:?}"),
        }
    }
    // Every check of --verify: only Error::Verify naming a documented check.
    let sets = [
        KeySet::parse(TEST_JWKS.as_bytes()).unwrap(),
        KeySet::parse(ES256_JWKS.as_bytes()).unwrap(),
    ];
    let verified = |result: Result<(), Error>| match result {
        Ok(()) => {}
        Err(Error::Verify { check, .. }) => assert!(CHECKS.contains(&check), "{check}"),
        Err(other) => panic!("undocumented error {other:?}"),
    };
    if let Err(e) = verify::algorithm(jwt) {
        verified(Err(e));
    }
    let kid = jwt.header.get("kid").and_then(Value::as_str);
    for alg in [Alg::Rs256, Alg::Es256] {
        for set in &sets {
            match verify::select(set, kid, alg, "set") {
                // A signature that was not made by the key never verifies.
                Ok(Lookup::Found(key)) => assert!(!verify::signature_valid(jwt, alg, &key.key)),
                Ok(Lookup::Missing(_)) => {}
                Err(e) => verified(Err(e)),
            }
        }
        for expect in [
            Expect::default(),
            Expect {
                issuer: Some("https://accounts.google.com"),
                audience: Some("a"),
                email: Some("e@x"),
                clock_skew: u64::MAX,
            },
        ] {
            verified(verify::check_claims(jwt, alg, &expect, now));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parsing_any_string_never_panics(input in any::<String>()) {
        if let Err(e) = Jwt::parse(&input) {
            assert_documented(&input, &e);
        }
        let _ = Jwt::parse(decode::extract(&input));
    }

    #[test]
    fn parsing_jwt_shaped_strings_never_panics(input in jwt_shaped(), now in 0u64..8_000_000_000) {
        let now = UNIX_EPOCH + Duration::from_secs(now);
        match Jwt::parse(&input) {
            Ok(jwt) => {
                let parts: Vec<&str> = input.split('.').collect();
                prop_assert_eq!(parts.len(), 3);
                prop_assert_eq!(jwt.signed_part(), format!("{}.{}", parts[0], parts[1]));
                check_everything(&jwt, now);
            }
            Err(e) => assert_documented(&input, &e),
        }
    }

    #[test]
    fn any_header_and_payload_objects_round_trip(
        header in object(),
        payload in object(),
        signature in prop::collection::vec(any::<u8>(), 0..300),
        now in 0u64..8_000_000_000,
    ) {
        let token = format!(
            "{}.{}.{}",
            b64(Value::Object(header.clone()).to_string().as_bytes()),
            b64(Value::Object(payload.clone()).to_string().as_bytes()),
            b64(&signature)
        );
        let jwt = Jwt::parse(&token).expect("a well-formed JWT parses");
        prop_assert_eq!(&jwt.header, &header);
        prop_assert_eq!(&jwt.payload, &payload);
        prop_assert_eq!(&jwt.signature, &signature);
        check_everything(&jwt, UNIX_EPOCH + Duration::from_secs(now));
    }

    #[test]
    fn the_token_is_found_in_whatever_wraps_it(
        token in "[A-Za-z0-9_-]{1,30}\\.[A-Za-z0-9_-]{1,30}\\.[A-Za-z0-9_-]{0,30}",
        form in 0usize..8,
        pad in "[ \t\r\n]{0,3}",
    ) {
        let wrapped = match form {
            0 => token.clone(),
            1 => format!("Bearer {token}"),
            2 => format!("Authorization: Bearer {token}"),
            3 => format!("AUTHORIZATION:bearer {token}"),
            4 => format!("\"{token}\""),
            5 => format!("'Bearer {token}'"),
            6 => format!("x-goog-iap-jwt-assertion: {token}"),
            _ => format!("Host: h\r\nAuthorization: Bearer {token}\r\n"),
        };
        let input = format!("{pad}{wrapped}{pad}");
        prop_assert_eq!(decode::extract(&input), token.as_str());
    }

    #[test]
    fn key_sets_from_any_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = KeySet::parse(&bytes);
    }

    #[test]
    fn key_sets_from_any_json_never_panic(value in json()) {
        let text = value.to_string();
        match KeySet::parse(text.as_bytes()) {
            Ok(set) => match &value {
                Value::Object(o) => match o.get("keys") {
                    Some(Value::Array(keys)) => prop_assert_eq!(set.keys.len(), keys.len()),
                    _ => prop_assert_eq!(set.keys.len(), 1),
                },
                _ => prop_assert!(false, "only objects are key sets"),
            },
            Err(verify::JwksError::NotJson) => prop_assert!(false, "it is JSON"),
            Err(verify::JwksError::NotKeySet(_)) => {}
        }
    }

    #[test]
    fn key_sets_of_jwk_like_objects_parse_key_by_key(
        keys in prop::collection::vec(object(), 0..6),
        alg in prop::sample::select(vec![Alg::Rs256, Alg::Es256]),
        kid in proptest::option::of(".{0,6}"),
    ) {
        let text = serde_json::json!({ "keys": keys }).to_string();
        let set = KeySet::parse(text.as_bytes()).expect("an object with a keys array is a set");
        prop_assert_eq!(set.keys.len(), keys.len());
        match verify::select(&set, kid.as_deref(), alg, "set") {
            Ok(_) => {}
            Err(Error::Verify { check, .. }) => prop_assert_eq!(check, "key"),
            Err(other) => prop_assert!(false, "undocumented error {:?}", other),
        }
    }
}
