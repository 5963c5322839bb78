//! The `ketch image` subcommands.

use super::load::Outcome;
use super::{ImageConfig, archive_file_name, build_archive, builtin, entries_from_dir, load};
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum ImageCmd {
    /// Build an OCI image archive from a folder (one layer; owner root, times zeroed).
    Build {
        /// The folder that becomes the image's root.
        dir: PathBuf,
        /// Image name, e.g. localhost/app:v1 (a name without a registry gets docker.io/library/,
        /// as pods resolve it).
        #[arg(long)]
        name: String,
        /// Entrypoint: a JSON array (`'["/bin/httpd","-f"]'`) or words split on whitespace.
        #[arg(long, allow_hyphen_values = true)]
        entrypoint: Option<String>,
        /// Default arguments (Cmd), in the same forms as --entrypoint.
        #[arg(long, allow_hyphen_values = true)]
        cmd: Option<String>,
        /// Environment entry KEY=VALUE (repeatable). PATH gets a default if not given.
        #[arg(long)]
        env: Vec<String>,
        /// Working directory of the image's processes.
        #[arg(long)]
        workdir: Option<String>,
        /// Output file [default: <name with / and : replaced by _>.tar in the current folder].
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Write the built-in images (localhost/busybox:latest, localhost/pause:3.10) from the host's
    /// /bin/busybox.
    Builtin {
        /// Folder to write the archives to.
        #[arg(short, long, default_value = ".")]
        output_dir: PathBuf,
    },
    /// Import image archives into the containerd of every node of a running cluster.
    Load {
        #[arg(required = true)]
        archives: Vec<PathBuf>,
        #[arg(long, default_value = "/var/lib/ketch")]
        state_dir: PathBuf,
    },
}

pub fn run(cmd: ImageCmd) -> Result<()> {
    match cmd {
        ImageCmd::Build {
            dir,
            name,
            entrypoint,
            cmd,
            env,
            workdir,
            output,
        } => {
            let config = ImageConfig {
                entrypoint: entrypoint
                    .as_deref()
                    .map(words)
                    .transpose()
                    .context("--entrypoint")?
                    .unwrap_or_default(),
                cmd: cmd
                    .as_deref()
                    .map(words)
                    .transpose()
                    .context("--cmd")?
                    .unwrap_or_default(),
                env,
                working_dir: workdir,
            };
            let entries = entries_from_dir(&dir)?;
            let archive = build_archive(&name, entries, &config)?;
            let out = output.unwrap_or_else(|| PathBuf::from(archive_file_name(&archive.name)));
            super::write_archive(&archive, &out)?;
            println!(
                "built {} ({}) into {}",
                archive.name,
                archive.manifest_digest,
                out.display()
            );
            Ok(())
        }
        ImageCmd::Builtin { output_dir } => {
            for (name, path) in builtin::builtin_images(&output_dir)? {
                println!("built {name} into {}", path.display());
            }
            Ok(())
        }
        ImageCmd::Load {
            archives,
            state_dir,
        } => {
            let mut failed = 0;
            for archive in &archives {
                for r in load::load(archive, &state_dir)? {
                    let node = &r.node.name;
                    match r.outcome {
                        Outcome::Imported { output } => {
                            println!("{node}: imported {}: {output}", archive.display());
                        }
                        Outcome::NotRunning { reason } => {
                            println!("{node}: skipped, containerd not running ({reason})");
                        }
                        Outcome::Failed { detail } => {
                            failed += 1;
                            println!("{node}: FAILED to import {}: {detail}", archive.display());
                        }
                    }
                }
            }
            if failed > 0 {
                bail!("{failed} import(s) failed");
            }
            Ok(())
        }
    }
}

/// `["a","b"]` as JSON, or else words split on whitespace.
fn words(s: &str) -> Result<Vec<String>> {
    if s.trim_start().starts_with('[') {
        return serde_json::from_str(s).context("not a JSON array of strings");
    }
    Ok(s.split_whitespace().map(str::to_string).collect())
}
