//! Compiles the XDP program (bpf/fastpath.c) with clang. Without clang or the BPF headers the
//! crate still builds: the object is left empty and the `xdp` / `afxdp` engines report
//! themselves unavailable at run time.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=bpf/fastpath.c");
    println!("cargo:rerun-if-changed=bpf/fastpath.h");
    println!("cargo:rerun-if-env-changed=CLANG");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("fastpath.bpf.o");
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".into());
    let arch_include = format!(
        "/usr/include/{}-linux-gnu",
        std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".into())
    );
    let result = Command::new(&clang)
        .args(["-O2", "-g", "-target", "bpf", "-Wall"])
        .arg(format!("-I{arch_include}"))
        .args(["-c", "bpf/fastpath.c", "-o"])
        .arg(&out)
        .output();
    let failure = match result {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(String::from_utf8_lossy(&o.stderr).into_owned()),
        Err(e) => Some(format!("cannot run `{clang}`: {e}")),
    };
    if let Some(why) = failure {
        let first = why.lines().next().unwrap_or("").to_string();
        println!(
            "cargo:warning=oxr-fastpath: the XDP program was not built ({first}); the xdp and \
             afxdp engines will be unavailable. Install clang and libbpf-dev \
             (apt-get install -y clang libbpf-dev linux-libc-dev) and rebuild."
        );
        std::fs::write(&out, []).expect("writing empty BPF object");
        // Run again once the tools are installed (a missing path counts as changed, so until
        // then every build retries, which costs one failed clang call).
        println!("cargo:rerun-if-changed=/usr/bin/clang");
        println!("cargo:rerun-if-changed=/usr/include/bpf/bpf_helpers.h");
    }
    println!("cargo:rustc-env=OXR_FASTPATH_BPF_OBJ={}", out.display());
}
