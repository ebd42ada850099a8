//! Arbitrary bytes into the pgoutput decoder and the PostgreSQL text-value parsers: they must
//! return an error, never panic or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tidemark::source::postgres::robustness::decode_any(data);
});
