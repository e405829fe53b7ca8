//! The `lkguard` binary: argument parsing and exit codes. `anyhow` lives here
//! only; the library reports typed errors.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

// See Cargo.toml: musl's allocator takes one lock for every thread.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use lkguard::check;
use lkguard::cli::{Cli, Command, ConfigCommand, EngineArgs, ListFormat};
use lkguard::engine::Lifetime;
use lkguard::report::{self, Format};

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
            mut paths,
            format,
            output,
            changed_since,
            settings,
            kustomize,
            engine,
        } => {
            if let Some(reference) = &changed_since {
                let changed = lkguard::changed::since(reference)?;
                if changed.is_empty() && paths.is_empty() {
                    emit(
                        &mut stdout,
                        &format!("ok: no manifests changed since {reference}\n"),
                    )?;
                    return Ok(0);
                }
                paths.extend(changed);
            }
            let opts = engine.options(paths, parse_settings(&settings)?, kustomize);
            let outcome = check::run(&opts)?;
            let render = |format: Format, color: bool| match format {
                Format::Human => report::human::render(&outcome, color),
                Format::Json => report::json::render(&outcome),
                Format::Sarif => report::sarif::render(&outcome),
                Format::Junit => report::junit::render(&outcome),
                Format::Github => report::github::render(&outcome),
            };
            match output {
                Some(file) => {
                    std::fs::write(&file, render(format, false))
                        .map_err(|e| anyhow::anyhow!("--output {}: {e}", file.display()))?;
                    emit(&mut stdout, &render(Format::Human, color()))?;
                }
                None => emit(&mut stdout, &render(format, color()))?,
            }
            Ok(outcome.exit_code() as u8)
        }
        Command::Policies { format, engine } => {
            let registry = engine.registry()?;
            if let Some(f) = registry.unloadable().first() {
                anyhow::bail!("policy {}: {}", f.policy, f.message);
            }
            let text = match format {
                ListFormat::Human => report::policies::human(&registry),
                ListFormat::Json => report::policies::json(&registry),
            };
            emit(&mut stdout, &text)?;
            Ok(0)
        }
        Command::Explain { rule, engine } => {
            let registry = engine.registry()?;
            match report::policies::explain(&registry, &rule) {
                Ok(text) => {
                    emit(&mut stdout, &text)?;
                    Ok(0)
                }
                Err(why) => anyhow::bail!("{why}"),
            }
        }
        Command::Serve {
            tls_cert,
            tls_key,
            listen,
            request_deadline_ms,
            concurrency,
            engine,
        } => {
            tracing_subscriber::fmt()
                .json()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_env("LKGUARD_LOG")
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
                )
                .with_writer(std::io::stderr)
                .init();
            let check = engine.options(Vec::new(), BTreeMap::new(), None);
            let request_deadline = std::time::Duration::from_millis(request_deadline_ms);
            if std::env::var_os(lkguard::webhook::COMPILE_ONLY_ENV).is_some() {
                lkguard::webhook::review::Reviewer::load(
                    &check,
                    Lifetime::Serving,
                    Some(request_deadline),
                )?;
                return Ok(0);
            }
            // Only a cache hands the child's work over.
            let precompile = check
                .cache_dir
                .is_some()
                .then(std::env::current_exe)
                .and_then(Result::ok)
                .map(|exe| {
                    let mut c = std::process::Command::new(exe);
                    c.args(std::env::args_os().skip(1))
                        .env(lkguard::webhook::COMPILE_ONLY_ENV, "1")
                        .stdin(std::process::Stdio::null())
                        .stdout(std::process::Stdio::null());
                    c
                });
            let opts = lkguard::webhook::ServeOptions {
                listen,
                tls_cert,
                tls_key,
                check,
                request_deadline,
                concurrency: concurrency
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
                precompile,
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(lkguard::webhook::serve(opts))?;
            Ok(0)
        }
        Command::Review { file, engine } => {
            // The server's body cap, so a review that would get 413 from the
            // server is refused here too, and a huge file is never read whole.
            use std::io::Read as _;
            let max = lkguard::webhook::MAX_BODY;
            let mut body = Vec::new();
            let input: std::io::Result<Box<dyn std::io::Read>> = if file.as_os_str() == "-" {
                Ok(Box::new(std::io::stdin()))
            } else {
                std::fs::File::open(&file).map(|f| Box::new(f) as Box<dyn std::io::Read>)
            };
            input
                .and_then(|i| i.take(max as u64 + 1).read_to_end(&mut body))
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            if body.len() > max {
                anyhow::bail!(
                    "{}: over {max} bytes, the most an AdmissionReview can be (the API server's limit)",
                    file.display()
                );
            }
            let request = lkguard::webhook::review::parse(&body)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let reviewer = lkguard::webhook::review::Reviewer::load(
                &engine.options(Vec::new(), BTreeMap::new(), None),
                Lifetime::OneShot,
                None,
            )?;
            let verdict = lkguard::engine::block_on(reviewer.review(&request, &mut Vec::new()));
            let mut text = serde_json::to_string_pretty(&request.respond(&verdict))?;
            text.push('\n');
            emit(&mut stdout, &text)?;
            Ok(if verdict.allowed { 0 } else { 1 })
        }
        Command::Completions { shell } => {
            let mut text = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "lkguard", &mut text);
            emit(&mut stdout, &String::from_utf8_lossy(&text))?;
            Ok(0)
        }
        Command::Man => {
            let mut text = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut text)?;
            emit(&mut stdout, &String::from_utf8_lossy(&text))?;
            Ok(0)
        }
        Command::Config {
            command: ConfigCommand::Schema,
        } => {
            emit(&mut stdout, lkguard::config::schema())?;
            Ok(0)
        }
        Command::Config {
            command: ConfigCommand::Validate { file },
        } => {
            let path = match file {
                Some(f) => f,
                None => lkguard::config::discover(std::path::Path::new("."))
                    .ok_or_else(|| anyhow::anyhow!("no lkguard.yaml here or above"))?,
            };
            let cache = EngineArgs {
                policies: Vec::new(),
                cache_dir: None,
                no_cache: false,
                deadline_ms: None,
                memory_mib: None,
                config: None,
            }
            .cache_dir();
            let policies = check::validate_config(&path, cache)?;
            emit(
                &mut stdout,
                &format!(
                    "ok: {} is valid; its settings and rule ids fit the {policies} {} it selects\n",
                    path.display(),
                    if policies == 1 { "policy" } else { "policies" }
                ),
            )?;
            Ok(0)
        }
    }
}

/// mimalloc commits each arena whole by default on an overcommitting
/// kernel: 38 MiB resident for an idle `serve` against glibc's 20. Commit on
/// demand instead (mimalloc.h: `mi_option_arena_eager_commit`, index 4 in
/// v2 and v3). Set before the server allocates its working memory.
#[cfg(target_env = "musl")]
fn allocator_options() {
    const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    // SAFETY: sets a process-wide option; mimalloc reads it when it next
    // reserves an arena.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0) };
}

fn main() -> ExitCode {
    #[cfg(target_env = "musl")]
    allocator_options();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // Typed library errors keep their miette rendering (codes, help).
            let e = match e.downcast::<lkguard::changed::ChangedError>() {
                Ok(c) => {
                    eprintln!("{:?}", miette::Report::new(c));
                    return ExitCode::from(2);
                }
                Err(e) => e,
            };
            let e = match e.downcast::<lkguard::webhook::ServeError>() {
                Ok(c) => {
                    eprintln!("{:?}", miette::Report::new(c));
                    return ExitCode::from(2);
                }
                Err(e) => e,
            };
            let report = match e.downcast::<check::CheckError>() {
                Ok(c) => miette::Report::new(c),
                Err(e) => match e.downcast::<lkguard::policy::PolicyError>() {
                    Ok(p) => miette::Report::new(p),
                    Err(e) => miette::miette!("{e:#}"),
                },
            };
            eprintln!("{report:?}");
            ExitCode::from(2)
        }
    }
}
