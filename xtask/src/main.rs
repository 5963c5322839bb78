//! Project automation. Every command that needs tools installs what is missing first, so a fresh
//! Debian 12 machine needs nothing but this repository and the Rust toolchain.

mod ebpf;
mod gen_proto_table;
mod gen_schema_meta;
mod setup;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Ketch project automation")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what the project needs (apt packages, a Python venv with kubectl 1.37); idempotent.
    Setup,
    /// Build the eBPF programs into `<target dir>/ketch-ebpf.o` (installs rust-src and
    /// bpf-linker 0.10.4 under `<target dir>/tools` if missing).
    BuildEbpf,
    /// Install, build, and bring up a local cluster (`ketch up`).
    Up {
        /// Extra arguments passed to `ketch up`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Stop what `cargo xtask up` started (`ketch down`).
    Down {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Install, build, and run every test.
    Test {
        /// Extra arguments passed to `cargo test` (e.g. a test name filter after `--`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run the benchmarks and print their results (see bench/RESULTS.md): api-bench, then
    /// packet-bench (needs root: BPF, namespaces, cgroups).
    Bench {
        /// Which to run: api, packet (comma-separated).
        #[arg(long, value_delimiter = ',', default_value = "api,packet")]
        only: Vec<String>,
        /// Arguments for packet-bench, one string (e.g. `--packet-args '--parts socket'`).
        #[arg(long, allow_hyphen_values = true, default_value = "")]
        packet_args: String,
        /// Extra arguments passed to api-bench.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// `cargo fmt --check` and `cargo clippy -D warnings`.
    Lint,
    /// Regenerate control/src/schema/field_merge.rs from the k8s-openapi sources.
    GenSchemaMeta,
    /// Regenerate control/src/proto/table.rs (protobuf request decoding) from the upstream
    /// kubernetes/api and kubernetes/apimachinery sources: --go-api DIR --go-apimachinery DIR.
    GenProtoTable {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() {
    if let Err(e) = run() {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    let ws = workspace_root()?;
    match cli.cmd {
        Cmd::Setup => setup::run(&ws).map(|_| ()),
        Cmd::BuildEbpf => {
            let env = setup::Env::locate(&ws)?;
            ebpf::build(&ws, &env.target_dir).map(|_| ())
        }
        Cmd::Up { args } => {
            let env = setup::run(&ws)?;
            ebpf::build(&ws, &env.target_dir)?;
            build(&ws, false)?;
            let ketch = env.target_dir.join("debug/ketch");
            let mut cmd = Command::new(ketch);
            cmd.arg("up").args(&args).env("PATH", env.path_with_venv());
            status(&mut cmd)
        }
        Cmd::Down { args } => {
            let env = setup::Env::locate(&ws)?;
            let mut cmd = Command::new(env.target_dir.join("debug/ketch"));
            cmd.arg("down").args(&args);
            status(&mut cmd)
        }
        Cmd::Test { args } => {
            let env = setup::run(&ws)?;
            ebpf::build(&ws, &env.target_dir)?;
            build(&ws, false)?;
            println!("==> cargo test --workspace");
            let mut cmd = cargo(&ws);
            cmd.args(["test", "--workspace"]).args(&args);
            env.apply(&mut cmd);
            status(&mut cmd)
        }
        Cmd::Bench {
            only,
            packet_args,
            args,
        } => {
            for o in &only {
                if o != "api" && o != "packet" {
                    bail!("--only: api, packet; not {o:?}");
                }
            }
            let env = setup::run(&ws)?;
            let object = ebpf::build(&ws, &env.target_dir)?;
            build(&ws, true)?;
            let bench = |bin: &str| {
                let mut cmd = cargo(&ws);
                cmd.args(["run", "--release", "-p", "ketch-bench", "--bin", bin, "--"]);
                env.apply(&mut cmd);
                cmd
            };
            if only.iter().any(|o| o == "api") {
                println!("==> api-bench");
                status(bench("api-bench").args(&args))?;
            }
            if only.iter().any(|o| o == "packet") {
                println!(
                    "==> packet-bench (tc per-packet cost, pod-to-pod traffic, map programming)"
                );
                status(
                    bench("packet-bench")
                        .arg("--bpf-object")
                        .arg(&object)
                        .args(packet_args.split_whitespace()),
                )?;
            }
            Ok(())
        }
        Cmd::Lint => {
            status(cargo(&ws).args(["fmt", "--all", "--check"]))?;
            status(cargo(&ws).args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]))
        }
        Cmd::GenProtoTable { args } => {
            status(cargo(&ws).args(["fetch"]))?;
            gen_proto_table::run(&ws, args)
        }
        Cmd::GenSchemaMeta => {
            status(cargo(&ws).args(["fetch"]))?;
            gen_schema_meta::run(&ws)
        }
    }
}

fn build(ws: &Path, release: bool) -> Result<()> {
    println!(
        "==> cargo build --workspace --bins{}",
        if release { " --release" } else { "" }
    );
    let mut cmd = cargo(ws);
    cmd.args(["build", "--workspace", "--bins"]);
    if release {
        cmd.arg("--release");
    }
    status(&mut cmd)
}

fn cargo(ws: &Path) -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(ws);
    cmd
}

pub(crate) fn status(cmd: &mut Command) -> Result<()> {
    let st = cmd.status().with_context(|| format!("run {cmd:?}"))?;
    if !st.success() {
        bail!("{:?} failed: {st}", cmd.get_program());
    }
    Ok(())
}

fn workspace_root() -> Result<PathBuf> {
    // `cargo run` sets it at run time too; prefer that: a binary linked from another checkout
    // sharing the target dir carries that checkout's compile-time path.
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest
        .parent()
        .map(Path::to_path_buf)
        .context("xtask has no parent directory")
}
