//! `Runtime::run_protocol`: the SDK's event loop feeds an instance its section and its
//! timers, does what it says (RIB updates, timers), and answers show from it.

use std::time::Duration;

use clap::Parser;
use oxr_proto::process::process_client::ProcessClient;
use oxr_proto::process::{DescribeRequest, ShowRequest};
use oxr_proto::transport::{self, Address};
use oxr_sdk::testing::{FakeRib, FakeRouterd};
use oxr_sdk::udp_protocol::{Action, Event};
use oxr_sdk::{
    CommonArgs, Hello, Nexthop, RibUpdate, Route, Runtime, SectionConfig, ShowOutput, UdpProtocol,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

/// `[protocols.demo] prefix = "..."`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Demo {
    prefix: String,
}

impl SectionConfig for Demo {}

/// Publishes the configured prefix, then ticks three times, 10 ms apart.
#[derive(Default)]
struct Ticker {
    ticks: u64,
}

impl UdpProtocol for Ticker {
    type Section = Demo;
    type Timer = u8;
    type Output = Action<u8>;
    // No interface gets a socket: nothing is bound.
    const PORT: u16 = 0;

    fn commands() -> Vec<(Vec<&'static str>, &'static str)> {
        vec![(vec!["demo"], "ticks so far")]
    }

    fn handle_event(&mut self, now: u64, event: Event<Demo, u8>) -> Vec<Action<u8>> {
        match event {
            Event::Config(Some(d)) => {
                let route =
                    Route::forward(d.prefix.parse().unwrap(), vec![Nexthop::interface("lo")]);
                vec![
                    Action::Rib(RibUpdate::Add(route)),
                    Action::Rib(RibUpdate::EndOfRib),
                    Action::Timer {
                        key: 1,
                        at: Some(now),
                    },
                ]
            }
            Event::Timer(1) => {
                self.ticks += 1;
                let at = (self.ticks < 3).then_some(now + 10);
                vec![Action::Timer { key: 1, at }]
            }
            _ => vec![],
        }
    }

    fn socket_interfaces(&self) -> std::collections::BTreeMap<String, u32> {
        Default::default()
    }

    fn show(&self, _now: u64, words: &[String]) -> Result<ShowOutput, String> {
        Ok(ShowOutput {
            text: format!("{} {}", words.join(" "), self.ticks),
            json: serde_json::json!({"ticks": self.ticks}),
        })
    }

    fn metrics(&self) -> String {
        String::new()
    }
}

#[tokio::test]
async fn the_instance_gets_its_section_and_timers_and_answers_show() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path();
    let _routerd = FakeRouterd::start(
        &run_dir.join("routerd.sock"),
        serde_json::json!({"prefix": "192.0.2.0/24"}),
    );
    let rib = FakeRib::start(&run_dir.join("rib.sock"));
    let args = Args::parse_from(["x", "--run-dir", run_dir.to_str().unwrap()]).common;
    let rt = Runtime::new("demo", args).unwrap();
    let hello = Hello {
        protocol: "demo".into(),
        instance: String::new(),
        default_distance: 200,
        stale_hold_secs: 0,
    };
    let addr = Address::Unix(run_dir.join("demo.sock"));
    let check = async {
        rib.wait_for("the configured route", |_| {
            rib.table().contains_key(&"192.0.2.0/24".parse().unwrap())
        })
        .await;
        let mut client = loop {
            if let Ok(c) = transport::connect(&addr).await {
                break ProcessClient::new(c);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let d = client.describe(DescribeRequest {}).await?.into_inner();
        anyhow::ensure!(d.commands[0].words == ["demo"], "{d:?}");
        // The third tick comes 20 ms after the first; the last timer is cancelled.
        for _ in 0..500 {
            let words = vec!["demo".to_string()];
            let s = client.show(ShowRequest { words }).await?.into_inner();
            if s.text == "demo 3" {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        anyhow::bail!("never ticked three times")
    };
    tokio::select! {
        r = rt.run_protocol(hello, Ticker::default()) => panic!("the loop ended: {r:?}"),
        r = check => r.unwrap(),
    }
}
