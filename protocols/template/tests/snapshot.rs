//! Snapshot test of the instance: each case under `tests/snapshots/` is numbered steps of
//! timed inputs (`NN-input.json`: `[{"at": ms, "input": ..}]`); each step's outputs
//! (`NN-output.json`) and the state after it as `show template | json` shows it
//! (`NN-state.json`) are compared with the files.
//! `OXR_UPDATE_SNAPSHOTS=1 cargo test -p oxr-template --test snapshot` rewrites them.

use std::path::Path;

use oxr_sdk::snapshot::steps;
use oxr_template::api;
use oxr_template::instance::{Input, Instance, Output};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Timed {
    at: u64,
    input: Input,
}

#[derive(Serialize)]
struct Said {
    at: u64,
    output: Output,
}

fn run_case(name: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    let mut inst = Instance::new();
    let mut now = 0;
    for step in steps(&dir, "input.json") {
        let inputs: Vec<Timed> = serde_json::from_str(&step.read_input())
            .unwrap_or_else(|e| panic!("{}: {e}", step.input.display()));
        let mut said = Vec::new();
        for t in inputs {
            now = t.at;
            for output in inst.handle(t.at, t.input) {
                said.push(Said { at: t.at, output });
            }
        }
        step.check("output", &said);
        let words = [oxr_template::PROCESS.to_string()];
        step.check("state", &api::show(&inst, now, &words).unwrap().json);
    }
}

#[test]
fn basic() {
    run_case("basic");
}
