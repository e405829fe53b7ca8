//! The command line: every subcommand and flag, as clap parses them. A
//! front door of its own is only a transport; what each command does is in
//! the library. Public so the tests can parse the README's commands.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::check::{self, Options};
use crate::engine::Lifetime;
use crate::report::Format;

#[derive(Parser)]
#[command(
    name = "lkguard",
    version = env!("LKGUARD_VERSION_LINE"),
    about = "LiveKit-on-Kubernetes policies as WebAssembly components"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Check manifests: files, directories (recursively, *.yaml/*.yml) or `-` for stdin.
    Check {
        #[arg(required_unless_present = "changed_since", value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// human (terminal), json, sarif (code scanning), junit (CI test views), github (workflow annotations).
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
        /// Write the --format report to FILE; the human summary still goes to the terminal.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Check only what changed since the merge base of REF and HEAD (e.g. origin/main), as the pre-commit hook does.
        #[arg(long, value_name = "REF")]
        changed_since: Option<String>,
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
        format: ListFormat,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Print why a rule exists and what it checks.
    Explain {
        rule: String,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Serve the validating admission webhook (HTTPS, POST /validate).
    Serve {
        /// PEM certificate chain (re-read when the file changes).
        #[arg(long, value_name = "FILE")]
        tls_cert: PathBuf,
        /// PEM private key (re-read when the file changes).
        #[arg(long, value_name = "FILE")]
        tls_key: PathBuf,
        #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8443")]
        listen: std::net::SocketAddr,
        /// Answer every request within this (below the webhook's timeoutSeconds).
        #[arg(long, value_name = "MS", default_value_t = 8_000)]
        request_deadline_ms: u64,
        /// Evaluations at once [default: the number of cores].
        #[arg(long, value_name = "N")]
        concurrency: Option<usize>,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Review one AdmissionReview (file or -) as the webhook would; prints the response.
    Review {
        #[arg(value_name = "FILE")]
        file: PathBuf,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// lkguard.yaml, the repository configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Print a shell completion script (e.g. `lkguard completions bash > /etc/bash_completion.d/lkguard`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff; e.g. `lkguard man > /usr/local/share/man/man1/lkguard.1`).
    Man,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ListFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Print the JSON Schema of lkguard.yaml (for editors' YAML support).
    Schema,
    /// Validate an lkguard.yaml [default: the one found up from the working directory].
    Validate { file: Option<PathBuf> },
}

#[derive(Args)]
pub struct EngineArgs {
    /// A policy component (.wasm) to add, or to replace the embedded policy with the same id. Repeatable.
    #[arg(long = "policy", value_name = "FILE.wasm")]
    pub policies: Vec<PathBuf>,
    /// Where compiled components are cached [default: $LKGUARD_CACHE_DIR, else $XDG_CACHE_HOME/lkguard, else ~/.cache/lkguard].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Compile every run; write no cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Wall-clock budget of one policy evaluation [default: lkguard.yaml's limits.deadline_ms, else 5000].
    #[arg(long, value_name = "MS")]
    pub deadline_ms: Option<u64>,
    /// Memory cap of one wasm instance (the embedded policies share one) [default: lkguard.yaml's limits.memory_mib, else 256].
    #[arg(long, value_name = "MIB")]
    pub memory_mib: Option<usize>,
    /// The repository configuration [default: the nearest lkguard.yaml up from the first path].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl EngineArgs {
    pub fn cache_dir(&self) -> Option<PathBuf> {
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

    pub fn options(
        &self,
        paths: Vec<PathBuf>,
        settings: BTreeMap<String, serde_json::Value>,
        kustomize: Option<String>,
    ) -> Options {
        Options {
            paths,
            policies: self.policies.clone(),
            settings,
            cache_dir: self.cache_dir(),
            deadline_ms: self.deadline_ms,
            memory_mib: self.memory_mib,
            config: self.config.clone(),
            load: crate::load::LoadOptions {
                kustomize,
                ..Default::default()
            },
        }
    }

    /// The policies `lkguard.yaml` (found from the working directory) and
    /// the flags select.
    pub fn registry(&self) -> Result<crate::policy::Registry, check::CheckError> {
        let resolved = self.options(Vec::new(), BTreeMap::new(), None).resolve()?;
        Ok(check::registry(
            &resolved.selection,
            self.cache_dir(),
            resolved.limits,
            Lifetime::OneShot,
        )?)
    }
}
