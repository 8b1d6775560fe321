//! Whatever a key-set URL or `--jwks FILE` serves: parse it and look keys up. None of it may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

use idtok::verify::{Alg, KeySet, select};

fuzz_target!(|data: &[u8]| {
    if let Ok(set) = KeySet::parse(data) {
        for alg in [Alg::Rs256, Alg::Es256] {
            for kid in [None, Some("test-kid-1"), Some("")] {
                let _ = select(&set, kid, alg, "fuzz");
            }
        }
    }
});
