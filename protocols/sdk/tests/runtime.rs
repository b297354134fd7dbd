//! The process main loop: serves Process on <run-dir>/<name>.sock while the event loop runs.

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
