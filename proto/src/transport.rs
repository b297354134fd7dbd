//! Where processes listen and how they reach each other: gRPC over Unix sockets in the
//! router's run directory (`<run-dir>/<process>.sock`), or TCP when configured.

use std::path::{Path, PathBuf};

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

/// Errors reaching or serving a process.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot connect to {target}: {source}")]
    Connect {
        target: String,
        source: tonic::transport::Error,
    },
    #[error("bad listen address {0:?}: expected unix:PATH or tcp:HOST:PORT")]
    BadAddress(String),
    #[error("cannot bind {path}: {source}")]
    Bind {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A process's gRPC address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Unix(PathBuf),
    Tcp(String),
}

impl Address {
    /// `<run_dir>/<process>.sock`.
    pub fn in_run_dir(run_dir: &Path, process: &str) -> Self {
        Address::Unix(run_dir.join(format!("{process}.sock")))
    }

    /// Parses `unix:PATH`, `tcp:HOST:PORT`, or a bare path.
    pub fn parse(s: &str) -> Result<Self, TransportError> {
        if let Some(p) = s.strip_prefix("unix:") {
            Ok(Address::Unix(PathBuf::from(p)))
        } else if let Some(t) = s.strip_prefix("tcp:") {
            if t.rsplit_once(':').is_some() {
                Ok(Address::Tcp(t.to_string()))
            } else {
                Err(TransportError::BadAddress(s.to_string()))
            }
        } else if s.starts_with('/') || s.starts_with('.') {
            Ok(Address::Unix(PathBuf::from(s)))
        } else {
            Err(TransportError::BadAddress(s.to_string()))
        }
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Unix(p) => write!(f, "unix:{}", p.display()),
            Address::Tcp(t) => write!(f, "tcp:{t}"),
        }
    }
}

/// Opens a channel to a process. The connection is made now, so an absent process is an
/// error here rather than on the first call.
pub async fn connect(addr: &Address) -> Result<Channel, TransportError> {
    let err = |source| TransportError::Connect {
        target: addr.to_string(),
        source,
    };
    match addr {
        Address::Tcp(t) => Endpoint::from_shared(format!("http://{t}"))
            .map_err(err)?
            .connect()
            .await
            .map_err(err),
        Address::Unix(path) => {
            let path = path.clone();
            // The URI is required by tonic but unused: the connector dials the socket.
            Endpoint::from_static("http://[::]:50051")
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move {
                        Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?))
                    }
                }))
                .await
                .map_err(err)
        }
    }
}

/// A channel that connects on first use and reconnects after failures; for clients that
/// must survive the other process restarting.
pub fn connect_lazy(addr: &Address) -> Channel {
    match addr {
        Address::Tcp(t) => Endpoint::from_shared(format!("http://{t}"))
            .expect("tcp address was validated by Address::parse")
            .connect_lazy(),
        Address::Unix(path) => {
            let path = path.clone();
            Endpoint::from_static("http://[::]:50051").connect_with_connector_lazy(
                tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move {
                        Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?))
                    }
                }),
            )
        }
    }
}

/// Binds a Unix listener, replacing a stale socket file left by a crashed predecessor, and
/// returns it as a stream for `Server::serve_with_incoming`.
pub fn bind_unix(
    path: &Path,
) -> Result<tokio_stream::wrappers::UnixListenerStream, TransportError> {
    let bind_err = |source| TransportError::Bind {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(bind_err)?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(bind_err(e)),
    }
    let listener = tokio::net::UnixListener::bind(path).map_err(bind_err)?;
    Ok(tokio_stream::wrappers::UnixListenerStream::new(listener))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses() {
        assert_eq!(
            Address::parse("unix:/run/oxr/r1/rib.sock").unwrap(),
            Address::Unix("/run/oxr/r1/rib.sock".into())
        );
        assert_eq!(
            Address::parse("tcp:127.0.0.1:7000").unwrap(),
            Address::Tcp("127.0.0.1:7000".into())
        );
        assert!(Address::parse("nonsense").is_err());
        assert_eq!(
            Address::in_run_dir(Path::new("/run/oxr/r1"), "fea"),
            Address::Unix("/run/oxr/r1/fea.sock".into())
        );
    }
}
