//! TLS on the gRPC listener: the server's certificate and key and, for mutual TLS, the CA
//! whose client certificates it requires. The files are read and checked when the server is
//! built, so a wrong path or an unusable key stops start-up instead of the first handshake.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

use crate::config::Config;

/// How long a client may take over its handshake: a connection that never finishes one
/// holds a socket for no longer.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the TLS files cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS {what} {path}: {source}")]
    Read { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("the TLS certificate, key or client CA is not usable: {0}")]
    Unusable(tonic::transport::Error),
}

/// The transport as configured: TLS when a certificate and key are given, plain otherwise.
pub fn transport(config: &Config) -> Result<Server, TlsError> {
    let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
        return Ok(Server::builder());
    };
    let identity = Identity::from_pem(read(cert, "certificate")?, read(key, "key")?);
    let mut tls = ServerTlsConfig::new().identity(identity).timeout(HANDSHAKE_TIMEOUT);
    if let Some(client_ca) = &config.tls_client_ca {
        tls = tls.client_ca_root(Certificate::from_pem(read(client_ca, "client CA")?));
    }
    Server::builder().tls_config(tls).map_err(TlsError::Unusable)
}

/// Whether bearer tokens would cross the network in clear text: tokens on, no TLS, and an
/// address other hosts can reach.
pub fn tokens_in_clear(listen: SocketAddr, tokens_enabled: bool, tls_enabled: bool) -> bool {
    tokens_enabled && !tls_enabled && !listen.ip().is_loopback()
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { what, path: path.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tokens_sent_off_the_machine_without_tls_are_in_clear() {
        let (public, loopback) = (SocketAddr::from(([0, 0, 0, 0], 50051)), SocketAddr::from(([127, 0, 0, 1], 50051)));
        assert!(tokens_in_clear(public, true, false));
        assert!(!tokens_in_clear(public, true, true), "TLS protects them");
        assert!(!tokens_in_clear(loopback, true, false), "loopback never leaves the machine");
        assert!(!tokens_in_clear(public, false, false), "no tokens to leak (refused unless --insecure)");
    }
}
