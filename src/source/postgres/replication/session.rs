//! Opening a replication session: the connection (TCP, and TLS by `connection.sslmode`, with
//! the same rustls configuration as the SQL connections), the startup message with
//! `replication=database`, authentication (trust, password, md5, SCRAM-SHA-256), and
//! `START_REPLICATION`, up to the server's `CopyBothResponse`.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use postgres_protocol::authentication::{md5_hash, sasl};
use postgres_protocol::message::frontend;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::error::WireError;
use super::wire::{self, Frame};
use crate::config::{Connection, SslMode};

/// The session's byte stream: plain TCP or TLS over it.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Transport for T {}

/// What a session needs beyond the connection settings.
pub struct StartOptions<'a> {
    pub slot: &'a str,
    pub publication: &'a str,
    pub start_lsn: u64,
    /// The startup packet's `options` (session settings).
    pub options: &'a str,
    pub application_name: &'a str,
    /// `connection.sslmode`'s rustls configuration (`None` for `disable`).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// Connects, authenticates and starts streaming; returns the stream and what it read past the
/// `CopyBothResponse` (the first WAL messages may arrive in the same read).
pub async fn start(
    c: &Connection,
    o: &StartOptions<'_>,
) -> Result<(Box<dyn Transport>, BytesMut), WireError> {
    let tcp = connect_tcp(c).await?;
    let mut io: Box<dyn Transport> = match &o.tls {
        None => Box::new(tcp),
        Some(tls) => negotiate_tls(tcp, c, tls.clone()).await?,
    };
    let mut out = BytesMut::new();
    let params = [
        ("user", c.user.as_str()),
        ("database", c.database.as_str()),
        ("replication", "database"),
        ("client_encoding", "UTF8"),
        ("application_name", o.application_name),
        ("options", o.options),
    ];
    frontend::startup_message(params.iter().copied(), &mut out)?;
    send(&mut io, &mut out).await?;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    authenticate(&mut io, &mut buf, c).await?;
    // Up to ReadyForQuery: parameter statuses and the backend key.
    loop {
        let f = read_frame(&mut io, &mut buf).await?;
        match f.tag {
            b'Z' => break,
            b'S' | b'K' | b'N' => {}
            b'E' => return Err(server_error(&f)),
            other => return Err(unexpected(other, "before the session was ready")),
        }
    }
    let query = format!(
        "START_REPLICATION SLOT {} LOGICAL {:X}/{:X} (proto_version '1', publication_names '{}', messages 'true')",
        o.slot,
        o.start_lsn >> 32,
        o.start_lsn & 0xFFFF_FFFF,
        o.publication.replace('\'', "''"),
    );
    frontend::query(&query, &mut out)?;
    send(&mut io, &mut out).await?;
    loop {
        let f = read_frame(&mut io, &mut buf).await?;
        match f.tag {
            // CopyBothResponse: the stream begins.
            b'W' => return Ok((io, buf)),
            b'S' | b'K' | b'N' => {}
            b'E' => return Err(server_error(&f)),
            other => return Err(unexpected(other, "in answer to START_REPLICATION")),
        }
    }
}

async fn connect_tcp(c: &Connection) -> Result<TcpStream, WireError> {
    let timeout = Duration::from_millis(c.connect_timeout_ms.max(1));
    let addrs = tokio::time::timeout(timeout, tokio::net::lookup_host((c.host.as_str(), c.port)))
        .await
        .map_err(|_| timed_out("resolving the host"))??;
    let mut last = None;
    for addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                // Status updates are small and should not wait for more to send.
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Ok(Err(e)) => last = Some(WireError::Io(e)),
            Err(_) => last = Some(timed_out(&format!("connecting to {addr}"))),
        }
    }
    Err(last.unwrap_or_else(|| {
        WireError::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{} resolves to no address", c.host),
        ))
    }))
}

fn timed_out(what: &str) -> WireError {
    WireError::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("{what}: timed out (connection.connect_timeout_ms)"),
    ))
}

/// libpq's `sslmode` over one connection: `SSLRequest`, then TLS if the server agrees; a
/// server that declines is used in plain text only under `prefer`.
async fn negotiate_tls(
    mut tcp: TcpStream,
    c: &Connection,
    tls: Arc<rustls::ClientConfig>,
) -> Result<Box<dyn Transport>, WireError> {
    let mut out = BytesMut::new();
    frontend::ssl_request(&mut out);
    tcp.write_all(&out).await?;
    match tcp.read_u8().await? {
        b'S' => {}
        b'N' if c.sslmode == SslMode::Prefer => return Ok(Box::new(tcp)),
        b'N' => {
            return Err(WireError::Tls(format!(
                "the server does not accept TLS, and sslmode is {}",
                c.sslmode.as_str()
            )))
        }
        other => return Err(unexpected(other, "in answer to SSLRequest")),
    }
    // Only verify-full checks the name; the other modes' verifiers ignore it.
    let name = ServerName::try_from(c.host.clone())
        .or_else(|_| ServerName::try_from("localhost".to_string()))
        .map_err(|e| WireError::Tls(format!("host {}: {e}", c.host)))?;
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(|e| WireError::Tls(e.to_string()))?;
    Ok(Box::new(stream))
}

async fn authenticate(
    io: &mut Box<dyn Transport>,
    buf: &mut BytesMut,
    c: &Connection,
) -> Result<(), WireError> {
    let password = c.password.expose().as_bytes();
    let mut out = BytesMut::new();
    let mut scram: Option<sasl::ScramSha256> = None;
    loop {
        let mut f = read_frame(io, buf).await?;
        match f.tag {
            b'R' => {}
            b'E' => return Err(server_error(&f)),
            other => return Err(unexpected(other, "during authentication")),
        }
        match wire::take_i32(&mut f.body)? {
            0 => return Ok(()),
            3 => frontend::password_message(password, &mut out)?,
            5 => {
                let salt: [u8; 4] = f.body.get(..4).and_then(|s| s.try_into().ok()).ok_or_else(
                    || WireError::Protocol("md5 request without a salt".into()),
                )?;
                let hash = md5_hash(c.user.as_bytes(), password, salt);
                frontend::password_message(hash.as_bytes(), &mut out)?;
            }
            10 => {
                let mechanisms = wire::cstrings(&f.body);
                if !mechanisms.iter().any(|m| m == sasl::SCRAM_SHA_256) {
                    return Err(WireError::Auth(format!(
                        "the server offers SASL mechanisms {mechanisms:?}; tidemark speaks {}",
                        sasl::SCRAM_SHA_256
                    )));
                }
                // Without channel binding ("n"), as the SQL connections do.
                let s = sasl::ScramSha256::new(password, sasl::ChannelBinding::unsupported());
                frontend::sasl_initial_response(sasl::SCRAM_SHA_256, s.message(), &mut out)?;
                scram = Some(s);
            }
            11 => {
                let s = scram
                    .as_mut()
                    .ok_or_else(|| WireError::Protocol("SASL continue before SASL".into()))?;
                s.update(&f.body)
                    .map_err(|e| WireError::Auth(format!("SCRAM: {e}")))?;
                frontend::sasl_response(s.message(), &mut out)?;
            }
            12 => {
                let s = scram
                    .as_mut()
                    .ok_or_else(|| WireError::Protocol("SASL final before SASL".into()))?;
                s.finish(&f.body)
                    .map_err(|e| WireError::Auth(format!("SCRAM: the server's proof: {e}")))?;
                continue;
            }
            other => {
                return Err(WireError::Auth(format!(
                    "the server asks for authentication method {other} (tidemark speaks trust, password, md5 and SCRAM-SHA-256)"
                )))
            }
        }
        send(io, &mut out).await?;
    }
}

async fn send(io: &mut Box<dyn Transport>, out: &mut BytesMut) -> Result<(), WireError> {
    io.write_all(out).await?;
    io.flush().await?;
    out.clear();
    Ok(())
}

/// Reads until `buf` holds a whole message, and splits it off.
pub async fn read_frame(
    io: &mut Box<dyn Transport>,
    buf: &mut BytesMut,
) -> Result<Frame, WireError> {
    loop {
        if let Some(f) = wire::next_frame(buf)? {
            return Ok(f);
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(64 * 1024);
        }
        if io.read_buf(buf).await? == 0 {
            return Err(WireError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            )));
        }
    }
}

pub fn server_error(f: &Frame) -> WireError {
    WireError::Server(wire::parse_error_fields(&f.body))
}

pub fn unexpected(tag: u8, when: &str) -> WireError {
    WireError::Protocol(format!(
        "unexpected message '{}' {when}",
        tag.escape_ascii()
    ))
}
