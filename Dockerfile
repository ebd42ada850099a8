# syntax=docker/dockerfile:1
# tidemark: change-data-capture daemon (PostgreSQL WAL / MySQL binlog -> Kafka).
#   docker build -t tidemark .
# Beside the servers of scripts/dev-env.sh (configs/ and connectors/ name them on 127.0.0.1, so
# the container shares the host's network; the passwords are the quickstart's):
#   docker run --rm --network host \
#     -e TIDEMARK_PG_PASSWORD=tidemark -e TIDEMARK_MYSQL_PASSWORD=tidemark \
#     -v "$PWD/configs:/etc/tidemark/configs:ro" -v "$PWD/connectors:/etc/tidemark/connectors:ro" \
#     -v tidemark-positions:/etc/tidemark/positions \
#     tidemark
# Elsewhere, point it at your servers with overrides, e.g. -e TIDEMARK__KAFKA__BROKERS=kafka:9092
# -e TIDEMARK__CONNECTORS__DEMO__CONNECTION__HOST=db.internal (see README, Configuration), and
# pass passwords from a secret store (-e NAME without a value takes it from your environment).
# /etc/tidemark/positions is the file position store's default directory (offsets.store: file;
# the Kafka store needs no disk): a volume owned by the image's user.
# See docker-compose.yml for a complete demo (PostgreSQL + MariaDB + Kafka + registry + tidemark).

# ---- build ------------------------------------------------------------------------------------
# The toolchain rust-toolchain.toml pins (COPY . . brings it in; rustup would fetch another)
FROM rust:1.95-bookworm AS build
# rdkafka builds its bundled librdkafka with ./configure + make (build-essential, pkg-config,
# python3, perl) against the system's OpenSSL (libssl-dev: Kafka TLS and SASL SCRAM); ring and
# aws-lc (rustls) build C with cc; cmake is there for crates that want it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config libssl-dev python3 perl cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The cache mounts keep the crate registry and the target directory between builds (BuildKit);
# the binary is copied out of the cached target directory in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin tidemark \
 && install -m 0755 target/release/tidemark /usr/local/bin/tidemark

# ---- runtime ----------------------------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 tidemark \
 && useradd --system --uid 10001 --gid tidemark --home-dir /var/lib/tidemark --create-home \
      --shell /usr/sbin/nologin tidemark \
 && mkdir -p /etc/tidemark/configs /etc/tidemark/connectors /etc/tidemark/positions \
 && chown tidemark:tidemark /etc/tidemark/positions
COPY --from=build /usr/local/bin/tidemark /usr/local/bin/tidemark
# offsets.path's default (../positions from configs/tidemark.yaml), writable by the user below.
VOLUME ["/etc/tidemark/positions"]
USER tidemark
WORKDIR /etc/tidemark
ENTRYPOINT ["tidemark"]
CMD ["run", "--config", "/etc/tidemark/configs/tidemark.yaml"]
