//! The process main loop: serves Process on <run-dir>/<name>.sock while the event loop runs,
//! and GET /metrics on --metrics-listen.

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use oxr_proto::process::process_client::ProcessClient;
use oxr_proto::process::{DescribeRequest, ShowRequest};
use oxr_proto::transport::{self, Address};
use oxr_sdk::{CommonArgs, Runtime, ShowHandler, ShowOutput};

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

struct Show;

#[tonic::async_trait]
impl ShowHandler for Show {
    fn commands(&self) -> Vec<(Vec<&'static str>, &'static str)> {
        vec![(vec!["demo"], "a demo")]
    }
    async fn show(&self, words: &[String]) -> Result<ShowOutput, String> {
        Ok(ShowOutput {
            text: words.join(" "),
            json: serde_json::json!({"words": words}),
        })
    }
    async fn metrics(&self) -> String {
        "# TYPE oxr_demo_up gauge\noxr_demo_up 1\n".into()
    }
}

#[tokio::test]
async fn serves_process_service_until_the_event_loop_ends_then_removes_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let args = Args::parse_from(["x", "--run-dir", run_dir.to_str().unwrap()]).common;
    let rt = Runtime::new("demo", args).unwrap();
    let sock = run_dir.join("demo.sock");
    let addr = Address::Unix(sock.clone());
    let event_loop = async move {
        // Plays the shell: the process answers while its loop runs.
        let mut client = loop {
            if let Ok(c) = transport::connect(&addr).await {
                break ProcessClient::new(c);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let d = client.describe(DescribeRequest {}).await?.into_inner();
        anyhow::ensure!(d.process == "demo" && d.commands[0].words == ["demo"]);
        let s = client
            .show(ShowRequest {
                words: vec!["demo".into()],
            })
            .await?
            .into_inner();
        anyhow::ensure!(s.text == "demo");
        Ok(())
    };
    tokio::time::timeout(Duration::from_secs(10), rt.run(Arc::new(Show), event_loop))
        .await
        .expect("run returns when the loop ends")
        .expect("event loop and server succeeded");
    assert!(!sock.exists(), "socket removed on exit");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&run_dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
}

#[tokio::test]
async fn an_event_loop_error_is_returned() {
    let dir = tempfile::tempdir().unwrap();
    let args = Args::parse_from(["x", "--run-dir", dir.path().to_str().unwrap()]).common;
    let rt = Runtime::new("demo", args).unwrap();
    let r = rt
        .run(Arc::new(Show), async { anyhow::bail!("protocol gave up") })
        .await;
    assert_eq!(r.unwrap_err().to_string(), "protocol gave up");
}

#[tokio::test]
async fn metrics_listen_serves_the_metrics_rpc_text_over_http() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A free port: bind, note it, release it for the runtime.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{port}");
    let args = Args::parse_from([
        "x",
        "--run-dir",
        dir.path().to_str().unwrap(),
        "--metrics-listen",
        &listen,
    ])
    .common;
    let rt = Runtime::new("demo", args).unwrap();
    let event_loop = async move {
        let mut s = loop {
            if let Ok(s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                break s;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await?;
        let mut out = String::new();
        s.read_to_string(&mut out).await?;
        Ok::<_, std::io::Error>(out)
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let run = rt.run(Arc::new(Show), async move {
        let out = event_loop.await?;
        let _ = tx.send(out);
        Ok(())
    });
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("run ends")
        .expect("served");
    let out = rx.await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
    assert!(out.ends_with("oxr_demo_up 1\n"), "{out}");
}
