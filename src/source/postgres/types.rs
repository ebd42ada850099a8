//! PostgreSQL type OIDs -> [`ColumnType`].
//!
//! Owns: the built-in type table and the catalog look-up of every other type (domains resolve
//! to their base type, arrays to their element type, enums with their labels). Must not:
//! parse values (see `text_value`).

use std::collections::HashMap;

use crate::value::ColumnType;

/// The built-in types tidemark models, by OID (`pg_type.h`).
pub fn builtin(oid: u32, type_modifier: i32) -> Option<ColumnType> {
    Some(match oid {
        16 => ColumnType::Bool,
        17 => ColumnType::Bytes,
        18 | 19 | 25 | 1042 | 1043 => ColumnType::Text, // "char", name, text, bpchar, varchar
        20 => ColumnType::Int64,
        21 => ColumnType::Int16,
        23 => ColumnType::Int32,
        26 | 28 | 29 => ColumnType::Int64, // oid, xid, cid (unsigned 32-bit)
        114 | 3802 => ColumnType::Json,
        700 => ColumnType::Float32,
        701 => ColumnType::Float64,
        1082 => ColumnType::Date,
        1083 => ColumnType::Time {
            precision: fractional_digits(type_modifier),
        },
        1114 => ColumnType::Timestamp {
            precision: fractional_digits(type_modifier),
        },
        1560 | 1562 => ColumnType::BitString {
            length: u32::try_from(type_modifier).ok().filter(|n| *n > 0),
            varying: oid == 1562,
        },
        1184 => ColumnType::TimestampTz,
        1186 => ColumnType::Interval,
        1266 => ColumnType::TimeTz,
        1700 => numeric(type_modifier),
        2950 => ColumnType::Uuid,
        _ => return None,
    })
}

/// Array OIDs of the built-in types above, with their element OID.
pub fn builtin_array_element(oid: u32) -> Option<u32> {
    Some(match oid {
        1000 => 16,
        1001 => 17,
        1002 => 18,
        1003 => 19,
        1005 => 21,
        1007 => 23,
        1009 => 25,
        1014 => 1042,
        1015 => 1043,
        1016 => 20,
        1021 => 700,
        1022 => 701,
        1028 => 26,
        1115 => 1114,
        1182 => 1082,
        1183 => 1083,
        1185 => 1184,
        1187 => 1186,
        1231 => 1700,
        1561 => 1560,
        1563 => 1562,
        1270 => 1266,
        199 => 114,
        2951 => 2950,
        3807 => 3802,
        _ => return None,
    })
}

/// The fractional-second digits of a `time(p)` / `timestamp(p)` (`None`: not declared, 6).
fn fractional_digits(type_modifier: i32) -> Option<u8> {
    u8::try_from(type_modifier).ok()
}

fn numeric(type_modifier: i32) -> ColumnType {
    if type_modifier < 4 {
        return ColumnType::Decimal {
            precision: None,
            scale: None,
        };
    }
    let m = (type_modifier - 4) as u32;
    ColumnType::Decimal {
        precision: Some((m >> 16) & 0xffff),
        scale: Some(m & 0xffff),
    }
}

/// Resolves and caches type OIDs, asking the catalog for what is not built in.
#[derive(Default)]
pub struct TypeResolver {
    cache: HashMap<(u32, i32), ColumnType>,
}

struct CatalogType {
    name: String,
    kind: String,
    category: String,
    base: u32,
    base_modifier: i32,
    element: u32,
    labels: Vec<String>,
}

const CATALOG_QUERY: &str = "SELECT t.typname::text, t.typtype::text, t.typcategory::text, \
     t.typbasetype, t.typtypmod, t.typelem, \
     ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder) \
     FROM pg_type t WHERE t.oid = $1";

impl TypeResolver {
    /// The type of a column with `oid` and `type_modifier`. Unknown types come back as
    /// [`ColumnType::Other`] with the catalog's name.
    pub async fn resolve(
        &mut self,
        client: &tokio_postgres::Client,
        oid: u32,
        type_modifier: i32,
    ) -> Result<ColumnType, tokio_postgres::Error> {
        if let Some(t) = builtin(oid, type_modifier) {
            return Ok(t);
        }
        if let Some(t) = self.cache.get(&(oid, type_modifier)) {
            return Ok(t.clone());
        }
        let t = self.resolve_uncached(client, oid, type_modifier, 0).await?;
        self.cache.insert((oid, type_modifier), t.clone());
        Ok(t)
    }

    async fn resolve_uncached(
        &mut self,
        client: &tokio_postgres::Client,
        oid: u32,
        type_modifier: i32,
        depth: u8,
    ) -> Result<ColumnType, tokio_postgres::Error> {
        if let Some(t) = builtin(oid, type_modifier) {
            return Ok(t);
        }
        if let Some(elem) = builtin_array_element(oid) {
            let e = builtin(elem, type_modifier).unwrap_or(ColumnType::Text);
            return Ok(ColumnType::Array(Box::new(e)));
        }
        if depth > 8 {
            return Ok(ColumnType::Other(format!("oid {oid}")));
        }
        let Some(row) = client.query_opt(CATALOG_QUERY, &[&oid]).await? else {
            return Ok(ColumnType::Other(format!("oid {oid}")));
        };
        let ct = CatalogType {
            name: row.get(0),
            kind: row.get(1),
            category: row.get(2),
            base: row.get(3),
            base_modifier: row.get(4),
            element: row.get(5),
            labels: row.get(6),
        };
        Ok(match (ct.kind.as_str(), ct.category.as_str()) {
            ("d", _) => {
                let m = if ct.base_modifier >= 0 {
                    ct.base_modifier
                } else {
                    type_modifier
                };
                Box::pin(self.resolve_uncached(client, ct.base, m, depth + 1)).await?
            }
            ("e", _) => ColumnType::Enum {
                name: ct.name,
                labels: ct.labels,
            },
            (_, "A") if ct.element != 0 => ColumnType::Array(Box::new(
                Box::pin(self.resolve_uncached(client, ct.element, type_modifier, depth + 1))
                    .await?,
            )),
            _ => ColumnType::Other(ct.name),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_modifier() {
        // numeric(12,2): typmod = (12 << 16 | 2) + 4
        assert_eq!(
            builtin(1700, (12 << 16 | 2) + 4),
            Some(ColumnType::Decimal {
                precision: Some(12),
                scale: Some(2)
            })
        );
        assert_eq!(
            builtin(1700, -1),
            Some(ColumnType::Decimal {
                precision: None,
                scale: None
            })
        );
    }

    #[test]
    fn arrays_map_to_elements() {
        for oid in [1000, 1001, 1005, 1007, 1009, 1016, 1231, 1185, 3807, 2951] {
            let elem = builtin_array_element(oid).unwrap();
            assert!(builtin(elem, -1).is_some(), "{oid}");
        }
    }
}
