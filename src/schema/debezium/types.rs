//! The Kafka Connect schema of each column under the `debezium` profile: the type Debezium's
//! PostgreSQL and MySQL connectors give it with their default settings
//! (`time.precision.mode=adaptive` / `adaptive_time_microseconds`, `binary.handling.mode=bytes`,
//! `interval.handling.mode=numeric`, `hstore.handling.mode=json`), and how its values convert.
//!
//! Where tidemark departs from those defaults it says so here and in the README's table:
//! `BIGINT UNSIGNED` is a Connect `Decimal` (Debezium's `bigint.unsigned.handling.mode=precise`;
//! its default `long` wraps values above 2^63-1 to negative numbers), and MySQL `YEAR` is the
//! `INT16` tidemark reads (Debezium: `INT32` named `io.debezium.time.Year`; the same number).

use crate::config::DecimalHandling;
use crate::value::ColumnType;

/// A Connect primitive type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    Boolean,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    String,
    Bytes,
}

impl Scalar {
    /// Connect's name of the type (`int32`, `bytes`, ...).
    pub fn connect_name(self) -> &'static str {
        match self {
            Scalar::Boolean => "boolean",
            Scalar::Int16 => "int16",
            Scalar::Int32 => "int32",
            Scalar::Int64 => "int64",
            Scalar::Float32 => "float",
            Scalar::Float64 => "double",
            Scalar::String => "string",
            Scalar::Bytes => "bytes",
        }
    }
}

/// One field of a Connect struct type.
#[derive(Debug, PartialEq, Eq)]
pub struct StructField {
    pub name: &'static str,
    pub ty: Scalar,
    pub optional: bool,
}

/// A Connect type's structure.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    Scalar(Scalar),
    /// Elements are optional (an array may hold NULLs).
    Array(Box<ConnectType>),
    Struct(&'static [StructField]),
}

/// How a tidemark value becomes the Connect value of its column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    /// The value as it is (numbers, booleans, text, bytes, enum labels, UUIDs).
    Same,
    /// JSON text as a string.
    JsonText,
    /// Days since the epoch.
    Date,
    /// Milliseconds since midnight.
    TimeMillis,
    /// Microseconds since midnight (MySQL: the signed duration).
    TimeMicros,
    /// Milliseconds since the epoch of a timestamp without time zone.
    TimestampMillis,
    /// Microseconds since the epoch of a timestamp without time zone.
    TimestampMicros,
    /// ISO 8601 in UTC (`2024-05-01T10:00:00.123456Z`).
    ZonedTimestamp,
    /// ISO 8601 time of day in UTC (`10:00:00.5Z`).
    ZonedTime,
    /// Microseconds, months counted as 30.4375 days (Debezium's `MicroDuration`).
    MicroDuration,
    /// The unscaled value's two's complement bytes at `scale`, checked against `precision`.
    DecimalBytes { precision: u32, scale: u32 },
    /// `{scale, value}`: PostgreSQL `numeric` without a declared scale.
    VariableScaleDecimal,
    /// The decimal's digits as text.
    DecimalString,
    /// The decimal as a double.
    DecimalDouble,
    /// PostgreSQL `money` text (`$1,234.56`) as a decimal of scale 2, in `handling`.
    Money(DecimalHandling),
    /// PostgreSQL `hstore` text as a JSON object.
    Hstore,
    /// PostgreSQL `point` text as `{x, y, wkb, srid}`.
    Point,
    /// A spatial value as `{wkb, srid}`.
    Geometry,
    /// MySQL BIT bytes (big-endian) as little-endian bytes.
    BitsLittleEndian,
    /// PostgreSQL bit-string text as little-endian bytes of `bytes` bytes (at least).
    BitStringLittleEndian { bytes: u32 },
    /// A one-bit bit string as a boolean.
    BitStringBool,
    /// Each element by the element's conversion.
    Array,
}

/// A column's Connect type under the `debezium` profile.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectType {
    pub shape: Shape,
    /// Debezium's (or Connect's) semantic type name, such as `io.debezium.time.MicroTimestamp`.
    pub name: Option<&'static str>,
    /// The schema's parameters (`scale`, `allowed`, `length`), in order.
    pub parameters: Vec<(&'static str, String)>,
    pub conversion: Conversion,
}

/// Connect's decimal type name.
pub const DECIMAL: &str = "org.apache.kafka.connect.data.Decimal";

const GEOMETRY_FIELDS: &[StructField] = &[
    StructField {
        name: "wkb",
        ty: Scalar::Bytes,
        optional: false,
    },
    StructField {
        name: "srid",
        ty: Scalar::Int32,
        optional: true,
    },
];

const POINT_FIELDS: &[StructField] = &[
    StructField {
        name: "x",
        ty: Scalar::Float64,
        optional: false,
    },
    StructField {
        name: "y",
        ty: Scalar::Float64,
        optional: false,
    },
    StructField {
        name: "wkb",
        ty: Scalar::Bytes,
        optional: true,
    },
    StructField {
        name: "srid",
        ty: Scalar::Int32,
        optional: true,
    },
];

const VARIABLE_SCALE_FIELDS: &[StructField] = &[
    StructField {
        name: "scale",
        ty: Scalar::Int32,
        optional: false,
    },
    StructField {
        name: "value",
        ty: Scalar::Bytes,
        optional: false,
    },
];

impl ConnectType {
    fn new(ty: Scalar, conversion: Conversion) -> Self {
        Self {
            shape: Shape::Scalar(ty),
            name: None,
            parameters: Vec::new(),
            conversion,
        }
    }

    fn named(ty: Scalar, name: &'static str, conversion: Conversion) -> Self {
        Self {
            name: Some(name),
            ..Self::new(ty, conversion)
        }
    }

    fn with(mut self, key: &'static str, value: impl ToString) -> Self {
        self.parameters.push((key, value.to_string()));
        self
    }

    fn structure(fields: &'static [StructField], name: &'static str, conv: Conversion) -> Self {
        Self {
            shape: Shape::Struct(fields),
            name: Some(name),
            parameters: Vec::new(),
            conversion: conv,
        }
    }

    /// A decimal of `precision` digits (when known) and `scale`, as `decimals` says.
    fn decimal(precision: Option<u32>, scale: u32, decimals: DecimalHandling) -> Self {
        match decimals {
            DecimalHandling::String => Self::new(Scalar::String, Conversion::DecimalString),
            DecimalHandling::Double => Self::new(Scalar::Float64, Conversion::DecimalDouble),
            DecimalHandling::Precise => {
                let t = Self::named(
                    Scalar::Bytes,
                    DECIMAL,
                    Conversion::DecimalBytes {
                        // Without a declared precision, any number of digits.
                        precision: precision.unwrap_or(u32::MAX),
                        scale,
                    },
                )
                .with("scale", scale);
                match precision {
                    Some(p) => t.with("connect.decimal.precision", p),
                    None => t,
                }
            }
        }
    }

    /// The declared precision of a decimal (`None`: not declared, or not a decimal).
    pub fn decimal_precision(&self) -> Option<u32> {
        match self.conversion {
            Conversion::DecimalBytes { precision, .. } if precision != u32::MAX => Some(precision),
            _ => None,
        }
    }

    /// The decimal scale of a Connect `Decimal`.
    pub fn decimal_scale(&self) -> Option<u32> {
        match self.conversion {
            Conversion::DecimalBytes { scale, .. } => Some(scale),
            Conversion::Money(DecimalHandling::Precise) => Some(2),
            _ => None,
        }
    }

    /// The Connect type of a column of type `t` read from a `mysql` or `postgresql` source.
    pub fn of(t: &ColumnType, mysql: bool, decimals: DecimalHandling) -> Self {
        use Conversion as C;
        match t {
            ColumnType::Bool => Self::new(Scalar::Boolean, C::Same),
            ColumnType::Int16 => Self::new(Scalar::Int16, C::Same),
            ColumnType::Int32 => Self::new(Scalar::Int32, C::Same),
            ColumnType::Int64 => Self::new(Scalar::Int64, C::Same),
            ColumnType::UInt64 => Self::decimal(Some(20), 0, DecimalHandling::Precise),
            ColumnType::Float32 => Self::new(Scalar::Float32, C::Same),
            ColumnType::Float64 => Self::new(Scalar::Float64, C::Same),
            ColumnType::Decimal {
                precision: Some(p),
                scale,
            } => Self::decimal(Some(*p), scale.unwrap_or(0), decimals),
            ColumnType::Decimal {
                precision: None, ..
            } => match decimals {
                DecimalHandling::Precise => Self::structure(
                    VARIABLE_SCALE_FIELDS,
                    "io.debezium.data.VariableScaleDecimal",
                    C::VariableScaleDecimal,
                ),
                other => Self::decimal(None, 0, other),
            },
            ColumnType::Text => Self::new(Scalar::String, C::Same),
            ColumnType::Bytes => Self::new(Scalar::Bytes, C::Same),
            ColumnType::Bits { length } => {
                Self::named(Scalar::Bytes, "io.debezium.data.Bits", C::BitsLittleEndian)
                    .with("length", length)
            }
            ColumnType::BitString {
                length: Some(1),
                varying: false,
            } => Self::new(Scalar::Boolean, C::BitStringBool),
            ColumnType::BitString { length, .. } => {
                let n = length.unwrap_or(0);
                let t = Self::named(
                    Scalar::Bytes,
                    "io.debezium.data.Bits",
                    C::BitStringLittleEndian {
                        bytes: n.div_ceil(8),
                    },
                );
                match length {
                    Some(n) => t.with("length", n),
                    None => t,
                }
            }
            ColumnType::Date => Self::named(Scalar::Int32, "io.debezium.time.Date", C::Date),
            ColumnType::Time { precision } => match precision {
                Some(p) if *p <= 3 && !mysql => {
                    Self::named(Scalar::Int32, "io.debezium.time.Time", C::TimeMillis)
                }
                _ => Self::named(Scalar::Int64, "io.debezium.time.MicroTime", C::TimeMicros),
            },
            ColumnType::Timestamp { precision } => match precision {
                Some(p) if *p <= 3 => Self::named(
                    Scalar::Int64,
                    "io.debezium.time.Timestamp",
                    C::TimestampMillis,
                ),
                _ => Self::named(
                    Scalar::Int64,
                    "io.debezium.time.MicroTimestamp",
                    C::TimestampMicros,
                ),
            },
            ColumnType::TimestampTz => Self::named(
                Scalar::String,
                "io.debezium.time.ZonedTimestamp",
                C::ZonedTimestamp,
            ),
            ColumnType::TimeTz => {
                Self::named(Scalar::String, "io.debezium.time.ZonedTime", C::ZonedTime)
            }
            ColumnType::Interval => Self::named(
                Scalar::Int64,
                "io.debezium.time.MicroDuration",
                C::MicroDuration,
            ),
            ColumnType::Uuid => Self::named(Scalar::String, "io.debezium.data.Uuid", C::Same),
            ColumnType::Json => Self::named(Scalar::String, "io.debezium.data.Json", C::JsonText),
            ColumnType::Enum { labels, .. } => {
                Self::named(Scalar::String, "io.debezium.data.Enum", C::Same)
                    .with("allowed", labels.join(","))
            }
            ColumnType::Set { labels } => {
                Self::named(Scalar::String, "io.debezium.data.EnumSet", C::Same)
                    .with("allowed", labels.join(","))
            }
            ColumnType::Geometry { .. } => Self::structure(
                GEOMETRY_FIELDS,
                "io.debezium.data.geometry.Geometry",
                C::Geometry,
            ),
            ColumnType::Array(item) => Self {
                shape: Shape::Array(Box::new(Self::of(item, mysql, decimals))),
                name: None,
                parameters: Vec::new(),
                conversion: C::Array,
            },
            ColumnType::Other(name) => match name.as_str() {
                "money" => match decimals {
                    DecimalHandling::Precise => Self::decimal(None, 2, decimals)
                        .with_conversion(C::Money(DecimalHandling::Precise)),
                    DecimalHandling::String => {
                        Self::new(Scalar::String, C::Money(DecimalHandling::String))
                    }
                    DecimalHandling::Double => {
                        Self::new(Scalar::Float64, C::Money(DecimalHandling::Double))
                    }
                },
                "hstore" => Self::named(Scalar::String, "io.debezium.data.Json", C::Hstore),
                "point" => {
                    Self::structure(POINT_FIELDS, "io.debezium.data.geometry.Point", C::Point)
                }
                "xml" => Self::named(Scalar::String, "io.debezium.data.Xml", C::Same),
                "ltree" => Self::named(Scalar::String, "io.debezium.data.Ltree", C::Same),
                _ => Self::new(Scalar::String, C::Same),
            },
        }
    }

    fn with_conversion(mut self, conversion: Conversion) -> Self {
        self.conversion = conversion;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(t: ColumnType) -> ConnectType {
        ConnectType::of(&t, false, DecimalHandling::Precise)
    }

    fn my(t: ColumnType) -> ConnectType {
        ConnectType::of(&t, true, DecimalHandling::Precise)
    }

    #[test]
    fn temporal_types_follow_the_adaptive_modes() {
        let time = |p| ColumnType::Time { precision: p };
        let ts = |p| ColumnType::Timestamp { precision: p };
        assert_eq!(pg(time(Some(3))).name, Some("io.debezium.time.Time"));
        assert_eq!(pg(time(Some(3))).shape, Shape::Scalar(Scalar::Int32));
        assert_eq!(pg(time(None)).name, Some("io.debezium.time.MicroTime"));
        // MySQL's adaptive_time_microseconds: TIME is always MicroTime.
        assert_eq!(my(time(Some(0))).name, Some("io.debezium.time.MicroTime"));
        assert_eq!(pg(ts(Some(0))).name, Some("io.debezium.time.Timestamp"));
        assert_eq!(my(ts(Some(3))).name, Some("io.debezium.time.Timestamp"));
        assert_eq!(
            my(ts(Some(6))).name,
            Some("io.debezium.time.MicroTimestamp")
        );
        assert_eq!(pg(ts(None)).name, Some("io.debezium.time.MicroTimestamp"));
        assert_eq!(
            pg(ColumnType::TimestampTz).name,
            Some("io.debezium.time.ZonedTimestamp")
        );
        assert_eq!(pg(ColumnType::Date).shape, Shape::Scalar(Scalar::Int32));
    }

    #[test]
    fn decimals_follow_decimal_handling() {
        let d = ColumnType::Decimal {
            precision: Some(10),
            scale: Some(2),
        };
        let t = pg(d.clone());
        assert_eq!(t.name, Some(DECIMAL));
        assert_eq!(
            t.parameters,
            [
                ("scale", "2".to_string()),
                ("connect.decimal.precision", "10".to_string())
            ]
        );
        let s = ConnectType::of(&d, false, DecimalHandling::String);
        assert_eq!(s.shape, Shape::Scalar(Scalar::String));
        let f = ConnectType::of(&d, false, DecimalHandling::Double);
        assert_eq!(f.shape, Shape::Scalar(Scalar::Float64));
        let free = pg(ColumnType::Decimal {
            precision: None,
            scale: None,
        });
        assert_eq!(free.name, Some("io.debezium.data.VariableScaleDecimal"));
        assert_eq!(
            pg(ColumnType::Other("money".into())).decimal_scale(),
            Some(2)
        );
    }

    #[test]
    fn bits_are_named_with_their_length() {
        let b = my(ColumnType::Bits { length: 12 });
        assert_eq!(b.name, Some("io.debezium.data.Bits"));
        assert_eq!(b.parameters, [("length", "12".to_string())]);
        let one = pg(ColumnType::BitString {
            length: Some(1),
            varying: false,
        });
        assert_eq!(one.shape, Shape::Scalar(Scalar::Boolean));
    }
}
