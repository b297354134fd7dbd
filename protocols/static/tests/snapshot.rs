//! Snapshot tests of the instance: each case directory under `tests/snapshots/` holds
//! numbered router configs (`NN-config.toml`); each step feeds the instance the
//! `protocols.static` section and compares the RIB updates (`NN-rib.json`) and the
//! applied routes as `show static routes | json` shows them (`NN-state.json`).
//! `OXR_UPDATE_SNAPSHOTS=1 cargo test -p oxr-static` rewrites the expected files.

use std::path::Path;

use oxr_config::StaticConfig;
use oxr_sdk::snapshot::steps;
use oxr_sdk::RibUpdate;
use oxr_static::api::routes_json;
use oxr_static::instance::{Input, Instance};

fn run_case(name: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    let mut instance = Instance::new();
    for step in steps(&dir, "config.toml") {
        let cfg = oxr_config::parse_and_validate(&step.read_input())
            .unwrap_or_else(|e| panic!("{}: invalid config: {e:?}", step.input.display()));
        let section: Option<StaticConfig> =
            serde_json::from_value(cfg.section_json("static")).expect("typed section");
        let mut out: Vec<RibUpdate> = Vec::new();
        instance.handle(Input::Config(section), &mut out);
        step.check("rib", &out);
        step.check("state", &routes_json(instance.routes(), None));
    }
}

#[test]
fn config_changes() {
    run_case("config-changes");
}
