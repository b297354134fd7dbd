//! `oxr-new-protocol` makes a crate that builds and passes its snapshot test: generated
//! into a temp dir (a standalone crate), built offline in this workspace's target dir so
//! the dependencies are not rebuilt.

use std::path::Path;
use std::process::Command;

const GENERATOR: &str = env!("CARGO_BIN_EXE_oxr-new-protocol");

fn generate(dir: &Path, name: &str) -> std::process::Output {
    Command::new(GENERATOR)
        .arg(name)
        .arg("--dir")
        .arg(dir)
        .output()
        .expect("running oxr-new-protocol")
}

#[test]
fn refuses_bad_and_taken_names_and_non_empty_dirs() {
    let tmp = tempfile::tempdir().unwrap();
    for bad in ["Hello", "9p", "a-b", "static", "template"] {
        let out = generate(&tmp.path().join(bad), bad);
        assert!(!out.status.success(), "{bad} accepted");
    }
    std::fs::write(tmp.path().join("x"), "").unwrap();
    let out = generate(tmp.path(), "demo");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
}

#[test]
fn a_generated_protocol_builds_and_passes_its_snapshot_test() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ping");
    let out = generate(&dir, "ping");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Next steps"), "{stdout}");
    assert!(!dir.join("src/bin").exists(), "the generator is not copied");
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("name = \"oxr-ping\""), "{manifest}");
    assert!(
        !manifest.contains("src/bin") && !manifest.contains("tempfile"),
        "{manifest}"
    );
    let main = std::fs::read_to_string(dir.join("src/main.rs")).unwrap();
    assert!(
        main.contains("PingConfig") && main.contains("oxr_ping::"),
        "{main}"
    );
    for f in [
        "src/lib.rs",
        "src/config.rs",
        "src/instance.rs",
        "src/api.rs",
        "src/rib.rs",
    ] {
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        assert!(
            !text.to_lowercase().contains("template"),
            "{f} still says template"
        );
    }

    // This workspace's target dir (…/target/debug/oxr-new-protocol -> …/target).
    let target = Path::new(GENERATOR).parent().unwrap().parent().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["test", "--offline", "--quiet", "--test", "snapshot"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", target)
        .env_remove("OXR_UPDATE_SNAPSHOTS")
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "generated crate failed:\n{all}");
    assert!(all.contains("1 passed"), "{all}");
}
