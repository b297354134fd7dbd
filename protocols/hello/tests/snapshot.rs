//! Snapshot test of the instance: r2 in the middle of the chain r1 — r2 — r3. Each step
//! of `tests/snapshots/chain/` is timed inputs (`NN-input.json`: `[{"at": ms, "input": ..}]`,
//! or `{"at", "hears": {"ifname", "src", "hello"}}` for a datagram given decoded); its
//! outputs (`NN-output.json`) and the state after it as `show hello | json` shows it
//! (`NN-state.json`) are compared with the files.
//! `OXR_UPDATE_SNAPSHOTS=1 cargo test -p oxr-hello --test snapshot` rewrites them.

use std::net::SocketAddrV4;
use std::path::Path;

use oxr_hello::api;
use oxr_hello::instance::{Input, Instance, Output};
use oxr_hello::packet::Hello;
use oxr_sdk::snapshot::steps;
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Timed {
    at: u64,
    #[serde(default)]
    input: Option<Input>,
    #[serde(default)]
    hears: Option<Hears>,
}

#[derive(Deserialize)]
struct Hears {
    ifname: String,
    src: SocketAddrV4,
    hello: Hello,
}

#[derive(Serialize)]
struct Said {
    at: u64,
    output: Output,
}

#[test]
fn chain() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/chain");
    let mut inst = Instance::new(100);
    let mut now = 0;
    for step in steps(&dir, "input.json") {
        let inputs: Vec<Timed> = serde_json::from_str(&step.read_input())
            .unwrap_or_else(|e| panic!("{}: {e}", step.input.display()));
        let mut said = Vec::new();
        for t in inputs {
            now = t.at;
            let input = match (t.input, t.hears) {
                (Some(i), None) => i,
                (None, Some(h)) => Input::Packet {
                    ifname: h.ifname,
                    src: h.src,
                    data: h.hello.encode(),
                },
                _ => panic!("{}: one of input or hears", step.input.display()),
            };
            for output in inst.handle(t.at, input) {
                said.push(Said { at: t.at, output });
            }
        }
        step.check("output", &said);
        let words = [oxr_hello::PROCESS.to_string()];
        step.check("state", &api::show(&inst, now, &words).unwrap().json);
    }
}
