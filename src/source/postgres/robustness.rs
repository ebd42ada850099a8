//! Arbitrary bytes into the pgoutput decoder and the text-value parsers: an error or a value,
//! never a panic, never an unbounded allocation. The coverage-guided fuzz target
//! `fuzz/fuzz_targets/pgoutput.rs` drives [`decode_any`]; compiled only for tests and with
//! the `fuzzing` feature.

use bytes::Bytes;

use super::pgoutput::{self, OldTuple, PgOutputMessage, TupleValue};
use super::{text_value, types};
use crate::value::ColumnType;

/// Type OIDs whose text forms tidemark parses (and arrays of some).
const TYPE_OIDS: &[u32] = &[
    16, 17, 20, 21, 23, 25, 114, 700, 701, 1082, 1083, 1114, 1184, 1186, 1266, 1700, 2950, 3802,
];

/// Decodes `data` as one pgoutput message; every text value of a tuple is then parsed as each
/// built-in type and as an array of it. Returns how many values parsed, for the fuzzer to have
/// something to use.
pub fn decode_any(data: &[u8]) -> usize {
    let Ok(message) = pgoutput::decode(&Bytes::copy_from_slice(data)) else {
        return 0;
    };
    let tuples: Vec<&[TupleValue]> = match &message {
        PgOutputMessage::Insert { new, .. } => vec![new],
        PgOutputMessage::Update { old, new, .. } => {
            let mut t: Vec<&[TupleValue]> = vec![new];
            t.extend(old.as_ref().map(OldTuple::values));
            t
        }
        PgOutputMessage::Delete { old, .. } => vec![old.values()],
        _ => Vec::new(),
    };
    let mut parsed = 0;
    for value in tuples.into_iter().flatten() {
        let TupleValue::Text(bytes) = value else {
            continue;
        };
        let Ok(text) = std::str::from_utf8(bytes) else {
            continue;
        };
        for &oid in TYPE_OIDS {
            let Some(t) = types::builtin(oid, -1) else {
                continue;
            };
            parsed += usize::from(text_value::parse(&t, text).is_ok());
            let array = ColumnType::Array(Box::new(t));
            parsed += usize::from(text_value::parse(&array, text).is_ok());
        }
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_insert_with_text_values_parses_them() {
        let msg = pgoutput::encode::insert(1, &[Some("42"), Some("{1,2}"), None]);
        assert!(decode_any(&msg) > 0);
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            decode_any(&data);
        }

        #[test]
        fn never_panics_on_an_insert_of_arbitrary_text(values in proptest::collection::vec("\\PC{0,40}", 0..6)) {
            let refs: Vec<Option<&str>> = values.iter().map(|v| Some(v.as_str())).collect();
            decode_any(&pgoutput::encode::insert(1, &refs));
        }
    }
}
