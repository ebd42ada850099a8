//! Arbitrary bytes into the MySQL TABLE_MAP and rows decoders (and the other event decoders):
//! they must return an error, never panic or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tidemark::source::mysql::robustness::decode_any(data);
});
