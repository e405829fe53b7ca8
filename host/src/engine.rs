//! The only module that touches wasmtime: compile, cache, instantiate, call.
//!
//! One `Engine` with epoch interruption; one `InstancePre` per policy; every
//! evaluation gets a fresh `Store` (no state carried between batches), a
//! memory cap, an epoch deadline, and a WASI context with no capabilities: no
//! preopened directories, no env, no sockets, no clock a policy can read.
//!
//! Calls are async (wasmtime runs the guest on a fiber): the webhook awaits
//! an evaluation on its own tokio worker, with no hand-off to a blocking
//! thread, and a policy that runs long yields the worker at every epoch tick
//! until its deadline traps it. One-shot callers block on the same future
//! ([`Runtime::validate_blocking`]).

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits,
    StoreLimitsBuilder, Trap, UpdateDeadline,
};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use crate::model::{Batch, Finding, Metadata, RuleInfo, Severity};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "policy",
        exports: { default: async },
    });
}

mod set_bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "policy-set",
        exports: { default: async },
        with: { "lkguard:policy/types": super::bindings::lkguard::policy::types },
    });
}

use bindings::lkguard::policy::types as wit;
use bindings::PolicyPre;
use set_bindings::{PolicySet, PolicySetPre};

/// The version of `wit/policy.wit` this host speaks.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// How often the epoch ticks; deadlines are rounded up to it.
const TICK: Duration = Duration::from_millis(2);
const METADATA_DEADLINE: Duration = Duration::from_secs(1);

/// The most a policy may hand back from one call, counted as wasmtime lifts
/// it out of the sandbox (its "hostcall fuel": bytes of text plus the host
/// size of every list element), so a flood is refused before the host has
/// allocated more than this. A whole render's worth of findings is a few
/// MiB.
pub const OUTPUT_LIMIT: usize = 64 << 20;

/// The longest text one finding field (or a policy's error) may be: a
/// message is one sentence, and a report, a terminal, a webhook response
/// and a log line all carry it.
pub const TEXT_LIMIT: usize = 64 << 10;

/// Limits every evaluation runs under.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub deadline: Duration,
    pub memory_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            deadline: Duration::from_millis(5_000),
            memory_bytes: 256 << 20,
        }
    }
}

/// How long the process lives, which decides how instance slots are recycled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// One batch per policy, then exit (`lkguard check`).
    OneShot,
    /// Many batches per policy (a server, a benchmark).
    Serving,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("not a policy component: {0}")]
    Compile(String),
    #[error("the component does not implement lkguard:policy@{CONTRACT_VERSION}: {0}")]
    Link(String),
    #[error("exceeded its deadline of {0} ms")]
    Deadline(u128),
    #[error("exceeded its memory cap of {0} MiB")]
    Memory(usize),
    #[error("trapped: {0}")]
    Trap(String),
    #[error("returned an error: {0}")]
    Policy(String),
    #[error("could not be loaded: {0}")]
    Unloadable(String),
    #[error("returned more than {} MiB of findings, lkguard's limit on what one evaluation may return", OUTPUT_LIMIT >> 20)]
    Output,
    #[error("returned {what} of {bytes} bytes, over the {} KiB limit for one text", TEXT_LIMIT >> 10)]
    TooLong { what: &'static str, bytes: usize },
}

struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The shared engine and linker.
pub struct Runtime {
    engine: Engine,
    /// The engine's settings without its instance pool, for compiling.
    compile_config: Config,
    linker: Linker<State>,
    cache_dir: Option<PathBuf>,
    limits: Limits,
    ticker: OnceLock<()>,
}

/// A compiled policy, ready to instantiate.
pub struct LoadedComponent {
    pre: PolicyPre<State>,
    /// Where its metadata is cached, next to the compiled code.
    metadata_cache: Option<PathBuf>,
}

/// A compiled policy set (`lkguard:policy-set`), ready to instantiate.
pub struct LoadedSet {
    pre: PolicySetPre<State>,
    /// Where its members' metadata is cached, next to the compiled code.
    metadata_cache: Option<PathBuf>,
}

/// Runs an evaluation future to completion on the calling thread, which must
/// not be a tokio worker: `lkguard review`, a benchmark.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    wasmtime_wasi::runtime::in_tokio(f)
}

/// A batch in the contract's types, built once and shared by all policies.
pub struct PreparedBatch(wit::Batch);

impl Runtime {
    pub fn new(
        cache_dir: Option<PathBuf>,
        limits: Limits,
        lifetime: Lifetime,
    ) -> Result<Arc<Self>, EngineError> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        // Findings and failures name the policy and the trap; a backtrace of a
        // stripped component names nothing, so it is not captured.
        config.wasm_backtrace_max_frames(None);
        config.wasm_component_model(true);
        if std::env::var_os("LKGUARD_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        // Compiling uses an engine of its own, dropped when done: wasmtime
        // keeps Cranelift's working buffers for reuse as long as its engine
        // lives, sized for the largest function compiled (100 MiB and more),
        // and a server would carry them for its whole life.
        let compile_config = config.clone();
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool(limits, lifetime)));
        let engine = Engine::new(&config).map_err(|e| EngineError::Compile(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| frozen_sleeps(&mut linker))
            .map_err(|e| EngineError::Link(format!("{e:#}")))?;
        Ok(Arc::new(Runtime {
            engine,
            compile_config,
            linker,
            cache_dir,
            limits,
            ticker: OnceLock::new(),
        }))
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Compiles (or loads from the cache) and pre-links a component.
    pub fn load(&self, wasm: &[u8]) -> Result<LoadedComponent, EngineError> {
        self.load_hashed(wasm, Sha256::digest(wasm).into())
    }

    /// As [`Runtime::load`], with the wasm's sha256 already known (the
    /// embedded bundle's is computed at build time: hashing megabytes of
    /// wasm would dominate a warm start).
    pub fn load_hashed(
        &self,
        wasm: &[u8],
        sha256: [u8; 32],
    ) -> Result<LoadedComponent, EngineError> {
        let (pre, metadata_cache) = self.pre_linked(wasm, &sha256)?;
        let pre = PolicyPre::new(pre).map_err(|e| EngineError::Link(format!("{e:#}")))?;
        Ok(LoadedComponent {
            pre,
            metadata_cache,
        })
    }

    /// As [`Runtime::load_hashed`], for a component of the `policy-set` world.
    pub fn load_set(&self, wasm: &[u8], sha256: [u8; 32]) -> Result<LoadedSet, EngineError> {
        let (pre, metadata_cache) = self.pre_linked(wasm, &sha256)?;
        let pre = PolicySetPre::new(pre).map_err(|e| EngineError::Link(format!("{e:#}")))?;
        Ok(LoadedSet {
            pre,
            metadata_cache,
        })
    }

    fn pre_linked(
        &self,
        wasm: &[u8],
        sha256: &[u8; 32],
    ) -> Result<(wasmtime::component::InstancePre<State>, Option<PathBuf>), EngineError> {
        let component = self
            .component(wasm, sha256)
            .map_err(|e| self.memory_or(e))?;
        self.contract_version(&component)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| EngineError::Link(format!("{e:#}")))?;
        let metadata_cache = self
            .cache_path(sha256)
            .map(|p| p.with_extension("meta.json"));
        Ok((pre, metadata_cache))
    }

    /// A component built from the contract imports its `types` interface by
    /// versioned name. The component model checks types by structure, so a
    /// component of another version with the same shapes would link, and
    /// run under a contract it was not written for: refuse it by name.
    fn contract_version(&self, component: &Component) -> Result<(), EngineError> {
        for (name, _) in component.component_type().imports(&self.engine) {
            let Some((interface, version)) = name.split_once('@') else {
                continue;
            };
            // The contract's rule: another major or minor is another
            // contract; a patch release is compatible.
            if interface.starts_with("lkguard:policy/")
                && !version
                    .split('.')
                    .take(2)
                    .eq(CONTRACT_VERSION.split('.').take(2))
            {
                return Err(EngineError::Link(format!(
                    "it is built against lkguard:policy@{version} (it imports {name})"
                )));
            }
        }
        Ok(())
    }

    fn cache_path(&self, wasm: &[u8]) -> Option<PathBuf> {
        let dir = self.cache_dir.as_ref()?;
        let mut h = Sha256::new();
        h.update(wasm);
        h.update(compat_hash(&self.engine).to_le_bytes());
        let key: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Some(dir.join(format!("{key}.cwasm")))
    }

    fn component(&self, wasm: &[u8], sha256: &[u8; 32]) -> Result<Component, EngineError> {
        let cached = self.cache_path(sha256);
        if let Some(path) = &cached {
            // SAFETY: the file was written by `precompile_component` of an
            // engine with the same compatibility hash (it is in the file name)
            // into lkguard's own cache directory.
            if let Ok(c) = unsafe { Component::deserialize_file(&self.engine, path) } {
                return Ok(c);
            }
        }
        let compiled = self
            .compiler()
            .and_then(|compiler| compiler.precompile_component(wasm))
            .map_err(|e| EngineError::Compile(format!("{e:#}")))?;
        if let Some(path) = &cached {
            // Mapped from the file, as a warm start does: clean pages the
            // kernel can share and drop, not an anonymous copy.
            if write_cache(path, &compiled) {
                // SAFETY: written just now from this engine's compiled code.
                if let Ok(c) = unsafe { Component::deserialize_file(&self.engine, path) } {
                    return Ok(c);
                }
            }
        }
        // SAFETY: bytes just produced by an engine of the same compatibility
        // hash (`compiler` checks it).
        unsafe { Component::deserialize(&self.engine, &compiled) }
            .map_err(|e| EngineError::Compile(format!("{e:#}")))
    }

    /// A short-lived engine that compiles exactly as `self.engine` would.
    fn compiler(&self) -> wasmtime::Result<Engine> {
        let compiler = Engine::new(&self.compile_config)?;
        Ok(if compat_hash(&compiler) == compat_hash(&self.engine) {
            compiler
        } else {
            self.engine.clone()
        })
    }

    fn store(&self, deadline: Duration) -> Store<State> {
        self.ticker.get_or_init(|| {
            let engine = self.engine.clone();
            std::thread::spawn(move || loop {
                std::thread::sleep(TICK);
                engine.increment_epoch();
            });
        });
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.memory_bytes)
            .trap_on_grow_failure(true)
            .build();
        let state = State {
            wasi: sandbox(),
            table: ResourceTable::new(),
            limits,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_hostcall_fuel(OUTPUT_LIMIT);
        arm(&mut store, deadline);
        store
    }

    /// A component whose initial memory is larger than the cap does not fit a
    /// pool slot; that is the memory cap, not a broken component.
    fn memory_or(&self, e: EngineError) -> EngineError {
        match &e {
            EngineError::Compile(m) | EngineError::Link(m)
                if m.contains("pooling allocator") && m.contains("memory") =>
            {
                EngineError::Memory(self.limits.memory_bytes >> 20)
            }
            _ => e,
        }
    }

    fn classify(&self, e: wasmtime::Error, deadline: Duration) -> EngineError {
        if let Some(Trap::Interrupt) = e.downcast_ref::<Trap>() {
            return EngineError::Deadline(deadline.as_millis());
        }
        let text = format!("{e:#}");
        if text.contains("forcing trap when growing memory") || text.contains("memory minimum size")
        {
            return EngineError::Memory(self.limits.memory_bytes >> 20);
        }
        if text.contains("fuel allocated for hostcalls has been exhausted") {
            return EngineError::Output;
        }
        // The trap itself ("wasm `unreachable` instruction executed", which is
        // how a Rust panic ends under panic=abort), not a backtrace of
        // unnamed functions in a stripped component. The panic message stays
        // out: it can quote the data the policy was reading.
        match e.downcast_ref::<Trap>() {
            Some(trap) => {
                EngineError::Trap(trap.to_string().trim_start_matches("wasm trap: ").into())
            }
            None => EngineError::Trap(text.lines().last().unwrap_or_default().trim().to_string()),
        }
    }

    /// Metadata is constant work, not input-sized, so it gets at least a
    /// second even when evaluations run under a tighter deadline.
    /// Cached next to the compiled code (same key: the wasm's hash), so a
    /// warm start instantiates nothing until there is a batch.
    pub fn metadata(&self, c: &LoadedComponent) -> Result<Metadata, EngineError> {
        let mut all = self.cached_metadata(&c.metadata_cache, |mut store| async move {
            let policy = c.pre.instantiate_async(&mut store).await?;
            Ok(vec![policy.call_metadata(&mut store).await?])
        })?;
        all.pop()
            .ok_or_else(|| EngineError::Trap("returned no metadata".into()))
    }

    /// The metadata of each member of a set, in member order.
    pub fn members(&self, c: &LoadedSet) -> Result<Vec<Metadata>, EngineError> {
        self.cached_metadata(&c.metadata_cache, |mut store| async move {
            let set = c.pre.instantiate_async(&mut store).await?;
            set.call_members(&mut store).await
        })
    }

    fn cached_metadata<F>(
        &self,
        cache: &Option<PathBuf>,
        call: impl FnOnce(Store<State>) -> F,
    ) -> Result<Vec<Metadata>, EngineError>
    where
        F: std::future::Future<Output = wasmtime::Result<Vec<wit::Metadata>>>,
    {
        if let Some(m) = cache.as_deref().and_then(read_metadata) {
            return Ok(m);
        }
        let deadline = self.limits.deadline.max(METADATA_DEADLINE);
        let all = block_on(call(self.store(deadline))).map_err(|e| self.classify(e, deadline))?;
        let all: Vec<Metadata> = all
            .into_iter()
            .map(|m| Metadata {
                id: m.id,
                version: m.version,
                rules: m
                    .rules
                    .into_iter()
                    .map(|r| RuleInfo {
                        id: r.id,
                        summary: r.summary,
                        rationale: r.rationale,
                    })
                    .collect(),
                settings_schema: m.settings_schema,
            })
            .collect();
        if let Some(path) = cache {
            let _ = write_cache(path, write_metadata(&all).as_bytes());
        }
        Ok(all)
    }

    /// Converts a batch once for every policy that evaluates it.
    pub fn prepare(&self, batch: &Batch) -> PreparedBatch {
        PreparedBatch(wit::Batch {
            origins: batch
                .origins
                .iter()
                .map(|o| wit::Origin {
                    name: o.name.clone(),
                    deployable: o.deployable,
                    complete: o.complete,
                })
                .collect(),
            resources: batch
                .resources
                .iter()
                .map(|r| wit::Resource {
                    api_version: r.api_version.clone(),
                    kind: r.kind.clone(),
                    name: r.name.clone(),
                    namespace: r.namespace.clone(),
                    origin: r.origin,
                    json: r.json.clone(),
                })
                .collect(),
        })
    }

    /// As [`Runtime::validate`], blocking the calling thread, which must not
    /// be a tokio worker (a one-shot check, a benchmark, a blocking thread).
    pub fn validate_blocking(
        &self,
        c: &LoadedComponent,
        batch: &PreparedBatch,
        settings: &str,
    ) -> Result<Vec<Finding>, EngineError> {
        block_on(self.validate(c, batch, settings))
    }

    /// Evaluates one batch in a fresh instance. Dropping the future ends the
    /// evaluation and frees its instance.
    pub async fn validate(
        &self,
        c: &LoadedComponent,
        batch: &PreparedBatch,
        settings: &str,
    ) -> Result<Vec<Finding>, EngineError> {
        let deadline = self.limits.deadline;
        let mut store = self.store(deadline);
        let result = async {
            let policy = c.pre.instantiate_async(&mut store).await?;
            policy.call_validate(&mut store, &batch.0, settings).await
        }
        .await
        .map_err(|e| self.classify(e, deadline))?;
        returned(result)
    }

    /// Evaluates one batch with the given members of a set, in order, each
    /// with its settings: one fresh instance receives the batch once, then
    /// each member gets a call of its own, under a deadline of its own. A
    /// member that traps or overruns leaves the instance unusable, so the
    /// members after it get a fresh one. Each result comes with the member's
    /// time; the first member's includes creating the instance and handing
    /// it the batch.
    pub async fn validate_set(
        &self,
        c: &LoadedSet,
        batch: &PreparedBatch,
        members: &[(u32, &str)],
    ) -> Vec<(Result<Vec<Finding>, EngineError>, Duration)> {
        let deadline = self.limits.deadline;
        let mut live: Option<(Store<State>, PolicySet)> = None;
        let mut results = Vec::with_capacity(members.len());
        for &(member, settings) in members {
            let started = Instant::now();
            let result = async {
                let (store, set) = match &mut live {
                    Some((store, set)) => {
                        arm(store, deadline);
                        (store, set)
                    }
                    None => {
                        let mut store = self.store(deadline);
                        let set = c.pre.instantiate_async(&mut store).await?;
                        set.call_load(&mut store, &batch.0).await?;
                        let (store, set) = live.insert((store, set));
                        (store, set)
                    }
                };
                set.call_validate(store, member, settings).await
            }
            .await;
            let result = match result {
                Ok(r) => returned(r),
                Err(e) => {
                    live = None;
                    Err(self.classify(e, deadline))
                }
            };
            results.push((result, started.elapsed()));
        }
        results
    }
}

/// Gives the store's next call `deadline`. Every epoch tick yields to the
/// executor, so a long evaluation shares its worker; the last one traps.
fn arm(store: &mut Store<State>, deadline: Duration) {
    let mut ticks = deadline.as_millis().div_ceil(TICK.as_millis()).max(1) as u64;
    store.epoch_deadline_callback(move |_| {
        ticks -= 1;
        Ok(match ticks {
            0 => UpdateDeadline::Interrupt,
            _ => UpdateDeadline::Yield(1),
        })
    });
    store.set_epoch_deadline(1);
}

/// What a `validate` call handed back, as findings or a failure; every text
/// within [`TEXT_LIMIT`].
fn returned(r: Result<Vec<wit::Finding>, String>) -> Result<Vec<Finding>, EngineError> {
    let fits = |what: &'static str, text: &str| match text.len() {
        bytes if bytes > TEXT_LIMIT => Err(EngineError::TooLong { what, bytes }),
        _ => Ok(()),
    };
    let found = match r {
        Ok(found) => found,
        Err(message) => {
            fits("an error message", &message)?;
            return Err(EngineError::Policy(message));
        }
    };
    found
        .into_iter()
        .map(|f| {
            fits("a finding rule id", &f.rule)?;
            fits("a finding message", &f.message)?;
            fits("a finding path", &f.path)?;
            fits(
                "a finding path",
                f.embedded_path.as_deref().unwrap_or_default(),
            )?;
            fits("a finding hint", f.hint.as_deref().unwrap_or_default())?;
            Ok(Finding {
                rule: f.rule,
                severity: match f.severity {
                    wit::Severity::Error => Severity::Error,
                    wit::Severity::Warning => Severity::Warning,
                },
                message: f.message,
                resource: f.resource,
                path: f.path,
                embedded_path: f.embedded_path,
                hint: f.hint,
            })
        })
        .collect()
}

/// What makes compiled code loadable by an engine; part of the cache key.
fn compat_hash(engine: &Engine) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    h.finish()
}

/// One JSON array for a component: a policy's one metadata, or a set's members.
fn write_metadata(all: &[Metadata]) -> String {
    serde_json::Value::Array(
        all.iter()
            .map(|m| serde_json::json!({
                "id": m.id,
                "version": m.version,
                "rules": m.rules.iter().map(|r| serde_json::json!({"id": r.id, "summary": r.summary, "rationale": r.rationale})).collect::<Vec<_>>(),
                "settingsSchema": m.settings_schema,
            }))
            .collect(),
    )
    .to_string()
}

fn read_metadata(path: &Path) -> Option<Vec<Metadata>> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let s = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    v.as_array()?
        .iter()
        .map(|m| {
            Some(Metadata {
                id: s(m, "id")?,
                version: s(m, "version")?,
                rules: m
                    .get("rules")?
                    .as_array()?
                    .iter()
                    .map(|r| {
                        Some(RuleInfo {
                            id: s(r, "id")?,
                            summary: s(r, "summary")?,
                            rationale: s(r, "rationale")?,
                        })
                    })
                    .collect::<Option<Vec<_>>>()?,
                settings_schema: s(m, "settingsSchema")?,
            })
        })
        .collect()
}

/// The WASI context a policy gets: no preopened directories, no env, no args,
/// no network (the builder's defaults), and clocks frozen at zero so a verdict
/// cannot depend on when it was computed.
fn sandbox() -> WasiCtx {
    struct Frozen;
    impl HostWallClock for Frozen {
        fn resolution(&self) -> Duration {
            Duration::from_secs(1)
        }
        fn now(&self) -> Duration {
            Duration::ZERO
        }
    }
    impl HostMonotonicClock for Frozen {
        fn resolution(&self) -> u64 {
            1_000_000_000
        }
        fn now(&self) -> u64 {
            0
        }
    }
    let mut b = WasiCtx::builder();
    b.wall_clock(Frozen)
        .monotonic_clock(Frozen)
        .insecure_random_seed(0)
        .allow_ip_name_lookup(false);
    b.build()
}

/// The clock a policy sees is frozen, so a sleep on it is over at once.
///
/// wasmtime-wasi's own `subscribe-duration`/`subscribe-instant` wait in real
/// time inside the host call, where epoch interruption cannot reach: a policy
/// that slept would hold its thread past any deadline (and `lkguard check`
/// would wait it out). Shadowed here by pollables that are ready at once; a
/// policy that sleeps in a loop is then an ordinary loop, stopped at its
/// deadline.
fn frozen_sleeps(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    use wasmtime::component::Resource;
    use wasmtime::StoreContextMut;
    use wasmtime_wasi::p2::{subscribe, DynPollable, Pollable};

    struct Elapsed;
    impl Pollable for Elapsed {
        // What `#[async_trait]` expands `async fn ready(&mut self)` to.
        fn ready<'life0, 'async_trait>(
            &'life0 mut self,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'async_trait>>
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            Box::pin(async {})
        }
    }
    fn elapsed(
        mut store: StoreContextMut<'_, State>,
        _: (u64,),
    ) -> wasmtime::Result<(Resource<DynPollable>,)> {
        let table = &mut store.data_mut().table;
        let timer = table.push(Elapsed)?;
        Ok((subscribe(table, timer)?,))
    }
    linker.allow_shadowing(true);
    // The version wasmtime-wasi registers; guests importing any 0.2.x match it.
    let mut clock = linker.instance("wasi:clocks/monotonic-clock@0.2.12")?;
    clock.func_wrap("subscribe-duration", elapsed)?;
    clock.func_wrap("subscribe-instant", elapsed)?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Instances come from a pool: a fresh instance per evaluation then costs a
/// slot reset instead of mmap/munmap of a 4 GiB reservation. The pool holds
/// enough for every policy evaluating at once, with room for a server's
/// concurrent requests; the memory cap is also each slot's size.
fn pool(limits: Limits, lifetime: Lifetime) -> PoolingAllocationConfig {
    const INSTANCES: u32 = 128;
    let mut p = PoolingAllocationConfig::default();
    p.total_component_instances(INSTANCES)
        .total_core_instances(INSTANCES * 8)
        .total_memories(INSTANCES * 2)
        .total_tables(INSTANCES * 8)
        .total_stacks(INSTANCES)
        .max_core_instances_per_component(16)
        .max_memories_per_component(4)
        .max_tables_per_component(16)
        .max_tables_per_module(4)
        .max_memories_per_module(2)
        .table_elements(200_000)
        .max_memory_size(limits.memory_bytes);
    if lifetime == Lifetime::Serving {
        // A policy starts with 4 MiB of memory (.cargo/config.toml) and
        // touches a few hundred KiB of it on one object. When a slot is used
        // again, zeroing the touched pages in place beats returning them and
        // faulting them in on the next instance; PAGEMAP_SCAN (Linux 6.7+)
        // finds which pages were touched, so untouched ones cost nothing
        // (without it, every kept byte is memset: 19 % of the server's CPU
        // at saturation). A one-shot process never reuses a slot, and there
        // keeping pages resident only faults in pages nobody touched (+4.5 ms
        // on a warm `lkguard check`).
        p.linear_memory_keep_resident(4 << 20)
            .table_keep_resident(64 << 10)
            .pagemap_scan(wasmtime::Enabled::Auto);
    }
    p
}

/// Best effort: a cache that cannot be written only costs the next run a compile.
///
/// The temporary name is unique per write, not per process: policies load on
/// parallel threads, and a shared temporary file once let one thread rename
/// another policy's compiled code into place, so a policy ran as another and
/// its rule silently passed.
fn write_cache(path: &Path, bytes: &[u8]) -> bool {
    use std::sync::atomic::{AtomicU64, Ordering};
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return false;
    };
    if std::fs::create_dir_all(dir).is_err() {
        return false;
    }
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    if std::fs::write(&tmp, bytes).is_err() || std::fs::rename(&tmp, path).is_err() {
        let _ = std::fs::remove_file(&tmp);
        return false;
    }
    true
}
