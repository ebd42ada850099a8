//! TLS set-up shared by the database clients.
//!
//! Several dependencies enable rustls with different crypto back ends (aws-lc-rs and ring),
//! and rustls then refuses to guess which one to use: the first TLS connection would panic.
//! tidemark installs aws-lc-rs as the process-wide provider before any connection.

/// Installs the process-wide rustls crypto provider (idempotent).
pub fn install_crypto_provider() {
    // Err means a provider is installed already, which is what we want.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
