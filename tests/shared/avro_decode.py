"""Decodes tidemark's Avro records with fastavro, an Avro implementation independent of the
one tidemark writes with (apache-avro, Rust).

Usage: avro_decode.py REGISTRY_URL RECORDS_FILE

RECORDS_FILE holds one JSON string per line: a record value in base64, in Confluent's wire
format (byte 0, a big-endian 4-byte schema id, the Avro datum). Each schema is fetched by id
from the registry. Prints one JSON line per record, in the form of tests/shared/avro_check.rs
`to_json`: dates and times as their Avro numbers (days, microseconds), decimals as text at
their scale, bytes in base64, non-finite floats as "NaN"/"Infinity"/"-Infinity", and other
floats as "f:<repr>" (exact; the caller compares them as doubles).
"""

import base64
import decimal
import io
import json
import math
import struct
import sys
import urllib.request

import fastavro


def strip_temporal_logical_types(node):
    """Keeps dates, times and timestamps as their numbers (the infinities of PostgreSQL do not
    fit Python's datetime); decimals keep their logical type."""
    if isinstance(node, dict):
        if node.get("logicalType") not in (None, "decimal"):
            node = {k: v for k, v in node.items() if k != "logicalType"}
        return {k: strip_temporal_logical_types(v) for k, v in node.items()}
    if isinstance(node, list):
        return [strip_temporal_logical_types(v) for v in node]
    return node


def plain(value):
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        # The shortest text that reads back as this double, tagged: a JSON number parser may
        # round it (serde_json's default one does, by an ulp).
        return "f:" + repr(value)
    return value


def main():
    registry, path = sys.argv[1], sys.argv[2]
    schemas = {}
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            framed = base64.b64decode(json.loads(line))
            magic, schema_id = struct.unpack(">bI", framed[:5])
            if magic != 0:
                sys.exit(f"magic byte {magic}, not 0")
            if schema_id not in schemas:
                with urllib.request.urlopen(f"{registry}/schemas/ids/{schema_id}") as r:
                    text = json.load(r)["schema"]
                schemas[schema_id] = fastavro.parse_schema(
                    strip_temporal_logical_types(json.loads(text))
                )
            body = io.BytesIO(framed[5:])
            value = fastavro.schemaless_reader(body, schemas[schema_id])
            if body.read():
                sys.exit(f"bytes left after a record of schema {schema_id}")
            print(json.dumps(plain(value)))


main()
