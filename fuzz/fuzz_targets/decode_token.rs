//! Whatever a user pipes into `idtok decode`: extract the token, parse it, render every view and run the
//! offline checks of `--verify`. None of it may panic.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;

use idtok::decode;
use idtok::token::Jwt;
use idtok::verify::{self, Alg, Expect, KeySet, Lookup};

const TEST_JWKS: &str = include_str!("../../tests/fixtures/test-key.jwks.json");

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    let Ok(jwt) = Jwt::parse(decode::extract(&input)) else {
        return;
    };
    let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let _ = decode::render_human(&jwt, now, None);
    let _ = decode::render_json(&jwt);
    let _ = decode::render_claims(&jwt, &["exp".into(), "/google/compute_engine/zone".into()]);
    let _ = verify::algorithm(&jwt);
    let set = KeySet::parse(TEST_JWKS.as_bytes()).expect("the fixture is a key set");
    let kid = jwt.header.get("kid").and_then(|k| k.as_str());
    for alg in [Alg::Rs256, Alg::Es256] {
        if let Ok(Lookup::Found(key)) = verify::select(&set, kid, alg, "fixture") {
            assert!(!verify::signature_valid(&jwt, alg, &key.key));
        }
        let expect = Expect {
            issuer: None,
            audience: Some("a"),
            email: Some("e@x"),
            clock_skew: 60,
        };
        let _ = verify::check_claims(&jwt, alg, &expect, now);
    }
});
