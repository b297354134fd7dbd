//! The Prometheus endpoint: `GET /metrics` over HTTP/1.1 on `--metrics-listen`, answering
//! with the same text as the `Metrics` RPC ([`ShowHandler::metrics`]). Served with the
//! hyper that tonic already brings (its HTTP/1 server is built in the workspace anyway).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{header, Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::process::ShowHandler;

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `GET /metrics` (or HEAD).
    Metrics,
    /// Another path: 404.
    NotFound,
    /// Another method: 405.
    BadMethod,
}

/// Classifies a request by method and path (query strings select nothing here).
pub fn target(method: &Method, path: &str) -> Target {
    if method != Method::GET && method != Method::HEAD {
        Target::BadMethod
    } else if path == "/metrics" {
        Target::Metrics
    } else {
        Target::NotFound
    }
}

async fn respond(req: Request<Incoming>, handler: Arc<dyn ShowHandler>) -> Response<Full<Bytes>> {
    let (status, ctype, body) = match target(req.method(), req.uri().path()) {
        Target::Metrics => (
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            handler.metrics().await,
        ),
        Target::NotFound => (StatusCode::NOT_FOUND, "text/plain", "try /metrics\n".into()),
        Target::BadMethod => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        ),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(ctype),
    );
    resp
}

/// Serves `GET /metrics` on `listener` until the future is dropped.
pub async fn serve(listener: TcpListener, handler: Arc<dyn ShowHandler>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors and the like: wait instead of spinning.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(respond(req, handler).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc);
            let _ = conn.await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    #[test]
    fn only_get_metrics_is_served() {
        assert_eq!(target(&Method::GET, "/metrics"), Target::Metrics);
        assert_eq!(target(&Method::HEAD, "/metrics"), Target::Metrics);
        assert_eq!(target(&Method::GET, "/"), Target::NotFound);
        assert_eq!(target(&Method::POST, "/metrics"), Target::BadMethod);
    }

    struct Fixed;
    #[tonic::async_trait]
    impl ShowHandler for Fixed {
        fn commands(&self) -> Vec<(Vec<&'static str>, &'static str)> {
            vec![]
        }
        async fn show(&self, _: &[String]) -> Result<crate::ShowOutput, String> {
            Err("none".into())
        }
        async fn metrics(&self) -> String {
            "# TYPE oxr_demo_routes gauge\noxr_demo_routes 3\n".into()
        }
    }

    async fn get(addr: std::net::SocketAddr, request: &str) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn a_scrape_over_tcp_gets_the_metrics_rpc_text() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener, Arc::new(Fixed)));
        let close = "Host: localhost\r\nConnection: close\r\n\r\n";
        let out = get(addr, &format!("GET /metrics HTTP/1.1\r\n{close}")).await;
        assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
        assert!(out.contains("text/plain; version=0.0.4"), "{out}");
        assert!(out.ends_with("oxr_demo_routes 3\n"), "{out}");
        let out = get(addr, &format!("GET /other HTTP/1.1\r\n{close}")).await;
        assert!(out.starts_with("HTTP/1.1 404"), "{out}");
        server.abort();
    }
}
