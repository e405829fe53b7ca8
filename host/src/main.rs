//! The `lkguard` binary: argument parsing and exit codes. `anyhow` lives here
//! only; the library reports typed errors.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use lkguard::check::{self, Options};
use lkguard::engine::{Lifetime, Limits};
use lkguard::report::{self, Format};

#[derive(Parser)]
#[command(
    name = "lkguard",
    version,
    about = "LiveKit-on-Kubernetes policies as WebAssembly components"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check manifests: files, directories (recursively, *.yaml/*.yml) or `-` for stdin.
    Check {
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
        /// Settings for one policy, as ID=JSON (e.g. rtc-service='{"udp_port":3478}'). Repeatable.
        #[arg(long = "settings", value_name = "ID=JSON")]
        settings: Vec<String>,
        /// How to render kustomize roots, e.g. 'kustomize build' or 'kubectl kustomize' [default: whichever is on PATH].
        #[arg(long, value_name = "CMD")]
        kustomize: Option<String>,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// List the loaded policies and their rules.
    Policies {
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Print why a rule exists and what it checks.
    Explain {
        rule: String,
        #[command(flatten)]
        engine: EngineArgs,
    },
}

#[derive(Args)]
struct EngineArgs {
    /// A policy component (.wasm) to add, or to replace the embedded policy with the same id. Repeatable.
    #[arg(long = "policy", value_name = "FILE.wasm")]
    policies: Vec<PathBuf>,
    /// Where compiled components are cached [default: $LKGUARD_CACHE_DIR, else $XDG_CACHE_HOME/lkguard, else ~/.cache/lkguard].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile every run; write no cache.
    #[arg(long)]
    no_cache: bool,
    /// Wall-clock budget of one policy evaluation.
    #[arg(long, value_name = "MS", default_value_t = 5_000)]
    deadline_ms: u64,
    /// Memory cap of one policy instance.
    #[arg(long, value_name = "MIB", default_value_t = 256)]
    memory_mib: usize,
}

impl EngineArgs {
    fn cache_dir(&self) -> Option<PathBuf> {
        if self.no_cache {
            return None;
        }
        let env = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        self.cache_dir
            .clone()
            .or_else(|| env("LKGUARD_CACHE_DIR"))
            .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("lkguard")))
            .or_else(|| env("HOME").map(|d| d.join(".cache").join("lkguard")))
    }

    fn registry(&self) -> Result<lkguard::policy::Registry, lkguard::policy::PolicyError> {
        check::registry(
            &self.policies,
            self.cache_dir(),
            self.limits(),
            Lifetime::OneShot,
        )
    }

    fn limits(&self) -> Limits {
        Limits {
            deadline: Duration::from_millis(self.deadline_ms),
            memory_bytes: self.memory_mib << 20,
        }
    }
}

fn parse_settings(raw: &[String]) -> anyhow::Result<BTreeMap<String, serde_json::Value>> {
    let mut out = BTreeMap::new();
    for item in raw {
        let (id, json) = item
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--settings takes ID=JSON, got `{item}`"))?;
        let value: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| anyhow::anyhow!("--settings {id}: not valid JSON: {e}"))?;
        out.insert(id.to_string(), value);
    }
    Ok(out)
}

/// Writes to stdout; a reader that went away (`lkguard check ... | head`) is
/// not an error worth a message.
fn emit(out: &mut impl Write, text: &str) -> anyhow::Result<()> {
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    let mut stdout = std::io::stdout().lock();
    match cli.command {
        Command::Check {
            paths,
            format,
            settings,
            kustomize,
            engine,
        } => {
            let opts = Options {
                paths,
                policies: engine.policies.clone(),
                settings: parse_settings(&settings)?,
                cache_dir: engine.cache_dir(),
                limits: engine.limits(),
                load: lkguard::load::LoadOptions { kustomize },
            };
            let outcome = check::run(&opts)?;
            let text = match format {
                Format::Human => report::human::render(&outcome, color()),
                Format::Json => report::json::render(&outcome),
            };
            emit(&mut stdout, &text)?;
            Ok(outcome.exit_code() as u8)
        }
        Command::Policies { format, engine } => {
            let registry = engine.registry()?;
            let text = match format {
                Format::Human => report::policies::human(&registry),
                Format::Json => report::policies::json(&registry),
            };
            emit(&mut stdout, &text)?;
            Ok(0)
        }
        Command::Explain { rule, engine } => {
            let registry = engine.registry()?;
            match report::policies::explain(&registry, &rule) {
                Some(text) => {
                    emit(&mut stdout, &text)?;
                    Ok(0)
                }
                None => anyhow::bail!("no rule `{rule}`; `lkguard policies` lists them"),
            }
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // Typed library errors keep their miette rendering (codes, help).
            let report = match e.downcast::<lkguard::policy::PolicyError>() {
                Ok(p) => miette::Report::new(p),
                Err(e) => miette::miette!("{e:#}"),
            };
            eprintln!("{report:?}");
            ExitCode::from(2)
        }
    }
}
