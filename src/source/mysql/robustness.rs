//! Arbitrary bytes into every MySQL decoder: an error or a value, never a panic, never an
//! unbounded allocation. (The coverage-guided fuzz target `fuzz/fuzz_targets/mysql_rows.rs`
//! drives [`decode_any`] the same way.)

use super::binlog::charset::CharsetMap;
use super::binlog::rows::{self, RowsKind};
use super::binlog::table_map::TableMap;

/// Splits `data` into a TABLE_MAP body and a rows event body (the first byte chooses the
/// split point and the event kind) and decodes both, plus the other event decoders on the
/// whole input. Returns how many rows decoded, for the fuzzer to have something to use.
pub fn decode_any(data: &[u8]) -> usize {
    let Some((&selector, rest)) = data.split_first() else {
        return 0;
    };
    let split = if rest.is_empty() {
        0
    } else {
        usize::from(selector) * 7 % rest.len()
    };
    let (map_bytes, rows_bytes) = rest.split_at(split);
    let kind_code = [
        rows::WRITE_ROWS_V1,
        rows::UPDATE_ROWS_V1,
        rows::DELETE_ROWS_V1,
        rows::WRITE_ROWS,
        rows::UPDATE_ROWS,
        rows::DELETE_ROWS,
        rows::PARTIAL_UPDATE_ROWS,
    ][usize::from(selector % 7)];
    let mut decoded = 0;
    for mariadb in [false, true] {
        if let Ok(map) = TableMap::decode(map_bytes, mariadb) {
            if let Some((kind, v2)) = RowsKind::of(kind_code) {
                let partial = kind_code == rows::PARTIAL_UPDATE_ROWS;
                if let Ok(r) = rows::decode(
                    rows_bytes,
                    kind,
                    v2,
                    partial,
                    &map,
                    &CharsetMap::default(),
                    &mut Vec::new(),
                ) {
                    decoded += r.len();
                }
            }
        }
    }
    let _ = super::binlog::json_binary::to_json_text(rest);
    let _ = super::binlog::json_diff::apply(r#"{"a":[1,{"b":2}]}"#, rest);
    let _ = super::binlog::payload::decode(rest);
    let _ = super::binlog::payload::split(rest);
    for ty in 165..=171 {
        let _ = super::binlog::mariadb_compressed::uncompress(ty, rest);
    }
    let _ = super::binlog::events::query(rest);
    let _ = super::binlog::events::rotate(rest);
    let _ = super::binlog::events::mariadb_gtid(rest, 1);
    let _ = super::binlog::events::mariadb_gtid_list(rest);
    let _ = super::binlog::events::mysql_gtid(rest);
    for (p, s) in [(10, 2), (65, 30), (1, 0)] {
        let _ =
            super::binlog::decimal::decode(&mut super::binlog::reader::ByteReader::new(rest), p, s);
    }
    decoded
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn a_zero_column_table_cannot_loop_forever(tail in proptest::collection::vec(any::<u8>(), 1..40)) {
            // Regression found by the fuzzer: a 0-column table map, then rows of 0 bytes each.
            let mut input = vec![134, 12, 245, 245, 245, 245, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 245, 154];
            input.extend(tail);
            decode_any(&input);
        }

        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..400)) {
            decode_any(&data);
        }

        /// Valid table maps with random row bytes: the row decoder sees plausible headers.
        #[test]
        fn random_rows_against_a_real_table_map(rows_tail in proptest::collection::vec(any::<u8>(), 0..300), kind in 0usize..3) {
            use super::super::binlog::column_type as t;
            let types = [t::TINY, t::SHORT, t::INT24, t::LONG, t::LONGLONG, t::FLOAT, t::DOUBLE, t::NEWDECIMAL,
                t::YEAR, t::NEWDATE, t::TIME2, t::DATETIME2, t::TIMESTAMP2, t::BIT, t::VARCHAR, t::STRING,
                t::BLOB, t::JSON, t::GEOMETRY, t::STRING, t::STRING];
            let meta = [4, 8, 10, 2, 6, 6, 3, 3, 2, 40, 0, 0xfe, 20, 2, 4, 4, 0xf7, 1, 0xf8, 1];
            let map = super::super::binlog::table_map::tests::body(&types, &meta, &[0xff, 0xff, 0x1f], &[]);
            let map = TableMap::decode(&map, false).expect("the table map is valid");
            let mut body = vec![42, 0, 0, 0, 0, 0, 1, 0, types.len() as u8, 0xff, 0xff, 0x1f];
            let kind = [RowsKind::Insert, RowsKind::Update, RowsKind::Delete][kind];
            if kind == RowsKind::Update {
                body.extend([0xff, 0xff, 0x1f]);
            }
            body.extend(rows_tail);
            let _ = rows::decode(&body, kind, false, false, &map, &CharsetMap::default(), &mut Vec::new());
        }
    }
}
