//! A client of the Confluent schema registry REST API: the calls the `avro` format makes, and
//! no more. It keeps to the documented API (Confluent Schema Registry, Karapace and Apicurio's
//! Confluent-compatible API all answer it):
//!
//! | call | used for |
//! |---|---|
//! | `PUT /config/{subject}` | the subject's compatibility level, when `schema_registry.compatibility` is set |
//! | `POST /compatibility/subjects/{subject}/versions?verbose=true` | the check before the first event under a new schema (against the versions the subject's level names, as registering would) |
//! | `POST /subjects/{subject}/versions` | registering a schema (idempotent: an existing schema gets its id back) |
//! | `GET /config` | `tidemark check`: the registry answers and takes the credentials |
//! | `GET /schemas/ids/{id}`, `GET /subjects/{subject}/versions` | reading schemas back (the tests) |
//!
//! Errors: a registry that cannot be reached, times out or answers 5xx (or 408/429) is a
//! transient error (the connector restarts with backoff and asks again); any other refusal is
//! definite and its message quotes the registry's own (`error_code` and `message`).
//!
//! Calls are made once per table shape (see `super::avro`), never per event.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value as Json};

use crate::config::{CompatibilityLevel, RegistryAuth, RegistrySettings};
use crate::error::{Error, Result};

const CONTENT: &str = "application/vnd.schemaregistry.v1+json";

/// What the registry says about a schema against a subject's versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compatibility {
    /// The subject has no version yet: any schema is its first.
    NewSubject,
    Compatible,
    /// Incompatible, with the registry's reasons (empty when it gave none).
    Incompatible(Vec<String>),
}

/// An answer of the registry other than 2xx.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    /// Confluent's `error_code` (`40401` subject not found, `409` incompatible, ...).
    pub code: Option<i64>,
    pub message: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        if let Some(c) = self.code {
            write!(f, ", error_code {c}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A schema registry client (cheap to clone: the connection pool is shared).
#[derive(Clone)]
pub struct RegistryClient {
    base: String,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    authorization: Option<HeaderValue>,
    timeout: Duration,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

fn tls_config(settings: &RegistrySettings) -> Result<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    crate::tls::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    match &settings.ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| {
                    Error::definite(format!(
                        "schema_registry.ca_file: cannot read the certificates of {}: {e}",
                        path.display()
                    ))
                })?;
            for cert in certs {
                roots.add(cert).map_err(|e| {
                    Error::definite(format!(
                        "schema_registry.ca_file: a certificate of {} is not usable: {e}",
                        path.display()
                    ))
                })?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                // A system certificate rustls cannot use is left out, as curl does.
                let _ = roots.add(cert);
            }
        }
    }
    Ok(rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The subject part of a path, percent-encoded (subjects hold `.`, `-`, `_` and letters,
/// but a record name strategy may bring others).
fn segment(subject: &str) -> String {
    let mut out = String::with_capacity(subject.len());
    for b in subject.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl RegistryClient {
    pub fn new(settings: &RegistrySettings) -> Result<Self> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(settings)?)
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(https);
        let authorization = match &settings.auth {
            RegistryAuth::None => None,
            RegistryAuth::Basic { username, password } => {
                use base64::Engine;
                let pair = format!("{username}:{}", password.expose());
                let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
                Some(format!("Basic {encoded}"))
            }
            RegistryAuth::Bearer(token) => Some(format!("Bearer {}", token.expose())),
        }
        .map(|v| {
            let mut v = HeaderValue::from_str(&v).map_err(|_| {
                Error::definite(
                    "schema_registry: the credentials hold characters an HTTP header cannot",
                )
            })?;
            v.set_sensitive(true);
            Ok::<_, Error>(v)
        })
        .transpose()?;
        Ok(Self {
            base: settings.url.clone(),
            client,
            authorization,
            timeout: settings.timeout,
        })
    }

    /// One call: the answer's status and JSON body. Transport failures and timeouts are
    /// transient errors.
    async fn call(&self, method: Method, path: &str, body: Option<Json>) -> Result<(u16, Json)> {
        let url = format!("{}{path}", self.base);
        let mut req = Request::builder()
            .method(method.clone())
            .uri(&url)
            .header(ACCEPT, CONTENT);
        if let Some(auth) = &self.authorization {
            req = req.header(AUTHORIZATION, auth.clone());
        }
        let payload = match &body {
            Some(b) => {
                req = req.header(CONTENT_TYPE, CONTENT);
                Bytes::from(b.to_string())
            }
            None => Bytes::new(),
        };
        let req = req.body(Full::new(payload)).map_err(|e| {
            Error::definite(format!("schema registry: bad request URL {url}")).with_source(e)
        })?;
        let what = || format!("schema registry {method} {url}");
        let answer = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| Error::transient(what()).with_source(e))?;
            let status = resp.status().as_u16();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| Error::transient(what()).with_source(e))?
                .to_bytes();
            Ok::<_, Error>((status, bytes))
        };
        let (status, bytes) =
            tokio::time::timeout(self.timeout, answer)
                .await
                .map_err(|_| {
                    Error::transient(format!(
                        "{}: no answer within {} ms (schema_registry.timeout_ms)",
                        what(),
                        self.timeout.as_millis()
                    ))
                })??;
        let json = if bytes.is_empty() {
            Json::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                Json::String(String::from_utf8_lossy(&bytes[..bytes.len().min(500)]).into())
            })
        };
        Ok((status, json))
    }

    /// The error for a refusal of `what`: transient for 5xx, 408 and 429, else definite.
    fn refused(&self, what: &str, status: u16, body: &Json) -> Error {
        let refusal = refusal(status, body);
        let msg = format!("schema registry {} refused {what}: {refusal}", self.base);
        match status {
            408 | 429 | 500..=599 => Error::transient(msg),
            401 | 403 => Error::definite(format!(
                "{msg}; check the credentials under schema_registry in tidemark.yaml"
            )),
            _ => Error::definite(msg),
        }
    }

    /// Sets `subject`'s compatibility level.
    pub async fn set_level(&self, subject: &str, level: CompatibilityLevel) -> Result<()> {
        let (status, body) = self
            .call(
                Method::PUT,
                &format!("/config/{}", segment(subject)),
                Some(json!({ "compatibility": level.as_str() })),
            )
            .await?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(self.refused(
                &format!("setting {subject}'s compatibility to {}", level.as_str()),
                status,
                &body,
            ))
        }
    }

    /// Checks `schema` against `subject`'s versions under the subject's level (the check a
    /// registration makes).
    pub async fn check(&self, subject: &str, schema: &str) -> Result<Compatibility> {
        let (status, body) = self
            .call(
                Method::POST,
                &format!(
                    "/compatibility/subjects/{}/versions?verbose=true",
                    segment(subject)
                ),
                Some(json!({ "schema": schema })),
            )
            .await?;
        match status {
            200..=299 => {
                if body["is_compatible"].as_bool() == Some(true) {
                    return Ok(Compatibility::Compatible);
                }
                let reasons = body["messages"]
                    .as_array()
                    .map(|m| {
                        m.iter()
                            .map(|x| x.as_str().map_or_else(|| x.to_string(), String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                Ok(Compatibility::Incompatible(reasons))
            }
            // Subject (40401) or version (40402) not found: nothing to be compatible with.
            404 => Ok(Compatibility::NewSubject),
            _ => Err(self.refused(
                &format!("the compatibility check of {subject}"),
                status,
                &body,
            )),
        }
    }

    /// Registers `schema` under `subject` and returns its id; `Err(Ok(refusal))` is a 409
    /// (incompatible) or 422 (invalid) refusal, for the caller's policy.
    pub async fn register(
        &self,
        subject: &str,
        schema: &str,
    ) -> Result<std::result::Result<u32, Refusal>> {
        let (status, body) = self
            .call(
                Method::POST,
                &format!("/subjects/{}/versions", segment(subject)),
                Some(json!({ "schema": schema, "schemaType": "AVRO" })),
            )
            .await?;
        match status {
            200..=299 => body["id"]
                .as_u64()
                .and_then(|id| u32::try_from(id).ok())
                .map(Ok)
                .ok_or_else(|| {
                    Error::definite(format!(
                        "schema registry {}: registering under {subject} answered no schema id: {body}",
                        self.base
                    ))
                }),
            409 | 422 => Ok(Err(refusal(status, &body))),
            _ => Err(self.refused(&format!("registering under {subject}"), status, &body)),
        }
    }

    /// The registry's default compatibility level (`GET /config`): what `tidemark check` asks
    /// to show that the registry answers and takes tidemark's credentials.
    pub async fn default_level(&self) -> Result<String> {
        let (status, body) = self.call(Method::GET, "/config", None).await?;
        if !(200..300).contains(&status) {
            return Err(self.refused("reading the default compatibility level", status, &body));
        }
        Ok(body["compatibilityLevel"]
            .as_str()
            .unwrap_or("(not given)")
            .to_string())
    }

    /// The schema registered under `id`.
    pub async fn schema(&self, id: u32) -> Result<String> {
        let (status, body) = self
            .call(Method::GET, &format!("/schemas/ids/{id}"), None)
            .await?;
        if !(200..300).contains(&status) {
            return Err(self.refused(&format!("reading schema {id}"), status, &body));
        }
        body["schema"].as_str().map(String::from).ok_or_else(|| {
            Error::definite(format!(
                "schema registry {}: schema {id} came without its text",
                self.base
            ))
        })
    }

    /// The versions of `subject` (empty when it has none).
    pub async fn versions(&self, subject: &str) -> Result<Vec<u32>> {
        let (status, body) = self
            .call(
                Method::GET,
                &format!("/subjects/{}/versions", segment(subject)),
                None,
            )
            .await?;
        match status {
            200..=299 => Ok(body
                .as_array()
                .map(|v| {
                    v.iter()
                        .filter_map(|x| x.as_u64().and_then(|x| u32::try_from(x).ok()))
                        .collect()
                })
                .unwrap_or_default()),
            404 => Ok(Vec::new()),
            _ => Err(self.refused(&format!("listing {subject}'s versions"), status, &body)),
        }
    }
}

fn refusal(status: u16, body: &Json) -> Refusal {
    Refusal {
        status,
        code: body["error_code"].as_i64(),
        message: body["message"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| match body {
                Json::Null => "(no body)".into(),
                other => other.to_string(),
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_percent_encoded_in_paths() {
        assert_eq!(segment("tm.public.t-value"), "tm.public.t-value");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn refusals_quote_the_registry() {
        let r = refusal(409, &json!({"error_code": 409, "message": "incompatible"}));
        assert_eq!(r.to_string(), "HTTP 409, error_code 409: incompatible");
        assert_eq!(refusal(502, &Json::Null).message, "(no body)");
    }
}
