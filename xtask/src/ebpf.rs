//! `cargo xtask build-ebpf`: builds `ebpf/programs` (crate `ketch-ebpf`) for `bpfel-unknown-none`
//! on the stable toolchain and copies the object to `<target dir>/ketch-ebpf.o`, where
//! `ketch-node` (`--bpf-object`'s default) and the tests find it.
//!
//! What it needs, installed idempotently: the `rust-src` component of the pinned toolchain
//! (`-Z build-std=core`, allowed on stable by `RUSTC_BOOTSTRAP=1` on this build only) and
//! bpf-linker 0.10.4 under `<target dir>/tools` (it loads rustc's own libLLVM, so no system LLVM).

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

const TOOLCHAIN: &str = "1.95.0";
const BPF_LINKER_VERSION: &str = "0.10.4";
const TARGET: &str = "bpfel-unknown-none";

/// Where the object ends up for a given cargo target directory.
pub fn object_path(target_dir: &Path) -> PathBuf {
    target_dir.join("ketch-ebpf.o")
}

pub fn build(ws: &Path, target_dir: &Path) -> Result<PathBuf> {
    rust_src()?;
    let linker = bpf_linker(target_dir)?;
    println!("==> cargo build ketch-ebpf ({TARGET})");
    let ebpf_target = target_dir.join("ebpf");
    let flags = [
        "--cfg=bpf_target_arch=\"x86_64\"".to_string(),
        "-Cdebuginfo=2".to_string(),
        "-Clink-arg=--btf".to_string(),
        format!("-Clinker={}", linker.display()),
    ]
    .join("\x1f");
    let mut cmd = Command::new("cargo");
    cmd.current_dir(ws.join("ebpf/programs"))
        .env("RUSTUP_TOOLCHAIN", TOOLCHAIN)
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_ENCODED_RUSTFLAGS", flags)
        // Inherited from an outer cargo; they would point this build elsewhere.
        .env_remove("RUSTFLAGS")
        .env_remove("RUSTC")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO_TARGET_DIR")
        .args([
            "build",
            "--release",
            "--target",
            TARGET,
            "-Z",
            "build-std=core",
        ])
        .arg("--target-dir")
        .arg(&ebpf_target);
    crate::status(&mut cmd)?;
    let built = ebpf_target.join(TARGET).join("release/ketch-ebpf");
    let out = object_path(target_dir);
    // Copy via a temporary name so a reader never sees a half-written object.
    let tmp = out.with_extension("o.tmp");
    std::fs::copy(&built, &tmp)
        .with_context(|| format!("copy {} to {}", built.display(), tmp.display()))?;
    std::fs::rename(&tmp, &out).with_context(|| format!("rename to {}", out.display()))?;
    println!("==> {}", out.display());
    Ok(out)
}

fn rust_src() -> Result<()> {
    let out = Command::new("rustup")
        .args(["component", "list", "--installed", "--toolchain", TOOLCHAIN])
        .output()
        .context("run rustup")?;
    if String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim() == "rust-src")
    {
        return Ok(());
    }
    println!("==> rustup component add rust-src --toolchain {TOOLCHAIN}");
    crate::status(Command::new("rustup").args([
        "component",
        "add",
        "rust-src",
        "--toolchain",
        TOOLCHAIN,
    ]))
}

fn bpf_linker(target_dir: &Path) -> Result<PathBuf> {
    let root = target_dir.join("tools");
    let bin = root.join("bin/bpf-linker");
    let installed = Command::new(&bin)
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(BPF_LINKER_VERSION));
    if !installed {
        println!("==> cargo install bpf-linker@{BPF_LINKER_VERSION} (about a minute)");
        crate::status(
            Command::new("cargo")
                .env("RUSTUP_TOOLCHAIN", TOOLCHAIN)
                .env_remove("CARGO_TARGET_DIR")
                .args(["install", "--locked", "--root"])
                .arg(&root)
                .arg(format!("bpf-linker@{BPF_LINKER_VERSION}")),
        )?;
    }
    if !bin.exists() {
        bail!("{} missing after install", bin.display());
    }
    Ok(bin)
}
