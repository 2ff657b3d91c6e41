//! The life of `occi-so serve`: assemble the parts from the settings,
//! replay the journal, serve, and shut down cleanly on SIGTERM/SIGINT.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use occi_so_sdk::StackBackend;
use tokio_util::sync::CancellationToken;

use crate::config::{LogFormat, Settings};
use occi_so_framework::lifecycle::{Lifecycle, LifecycleOptions};
use occi_so_framework::mixins::Mixins;
use occi_so_framework::registry::Registry;
use occi_so_framework::store::{JournalOptions, Store};
use occi_so_http::auth::Authenticator;
use occi_so_http::metrics::{MeteredBackend, Metrics};
use occi_so_http::routes::{query::QueryCache, App};
use occi_so_http::server;

/// Why the server could not start (each names what is wrong).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A file or setting is unusable.
    #[error("{0}")]
    Setup(String),
    /// The listen address.
    #[error(transparent)]
    Bind(#[from] std::io::Error),
}

/// Sets up logging (stderr) in the configured format. Call once.
pub fn init_logging(settings: &Settings) -> Result<(), String> {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = match &settings.log {
        Some(f) => EnvFilter::try_new(f).map_err(|e| format!("log filter {f:?}: {e}"))?,
        None => EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| EnvFilter::new("info,hyper=warn,h2=warn,reqwest=warn,rustls=warn")),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let r = match settings.log_format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
        LogFormat::Pretty => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
    r.map_err(|e| format!("logging: {e}"))
}

/// The admin token: the first non-empty line of `file`.
fn read_admin_token(file: &std::path::Path) -> Result<occi_so_sdk::Secret, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("--admin-token-file {}: {e}", file.display()))?;
    let token = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    if token.len() < 16 || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "--admin-token-file {}: the first line must be a token of at least 16 characters without spaces",
            file.display()
        ));
    }
    Ok(occi_so_sdk::Secret::new(token))
}

/// Runs the server until SIGTERM/SIGINT; returns after a clean shutdown.
pub async fn run(settings: Settings) -> Result<(), StartError> {
    let setup = |e: &dyn std::fmt::Display| StartError::Setup(e.to_string());

    // State: the journal (replayed now) and the user mixins.
    let _temporary; // kept alive for the whole run when used
    let state_dir = match &settings.state_dir {
        Some(d) => d.clone(),
        None => {
            let t = tempfile::Builder::new()
                .prefix("occi-so-state-")
                .tempdir()
                .map_err(|e| setup(&format!("temporary state directory: {e}")))?;
            let p = t.path().to_path_buf();
            tracing::warn!(dir = %p.display(), "no --state-dir: using a fresh temporary journal; instances will not survive a restart");
            _temporary = t;
            p
        }
    };
    let sealer = match &settings.secret_key {
        None => None,
        Some(crate::config::SecretKeySource::File(path)) => {
            Some(occi_so_sdk::seal::Sealer::from_file(path).map_err(|e| setup(&e))?)
        }
        Some(crate::config::SecretKeySource::Env) => {
            let text = std::env::var(crate::config::SECRET_KEY_VAR).unwrap_or_default();
            Some(
                occi_so_sdk::seal::Sealer::from_key_text(&text, crate::config::SECRET_KEY_VAR)
                    .map_err(|e| setup(&e))?,
            )
        }
    };
    if sealer.is_some() {
        tracing::info!("state files are sealed (XChaCha20-Poly1305)");
    }
    let started = Instant::now();
    let (store, replayed) = Store::open(
        &state_dir,
        JournalOptions {
            fsync: settings.journal_fsync,
            sealer: sealer.clone(),
            ..JournalOptions::default()
        },
    )
    .map_err(|e| setup(&e))?;
    let store = Arc::new(store);
    let mixins = Arc::new(
        Mixins::open(store.clone(), &state_dir)
            .await
            .map_err(|e| setup(&e))?,
    );
    tracing::info!(dir = %state_dir.display(), instances = replayed, elapsed_ms = started.elapsed().as_millis() as u64, "journal replayed");

    // Plugins.
    let registry = Arc::new(Registry::new());
    registry
        .set_default(&settings.default_service)
        .map_err(|e| setup(&e))?;
    let build = occi_so_sdk::BuildContext::new(
        settings.clouds.keys().cloned().collect(),
        settings.plugin_config.clone(),
    );
    for p in crate::builtin::plugins(&build).map_err(|e| setup(&e))? {
        let name = p.info().name.clone();
        registry.register(p).map_err(|e| setup(&e))?;
        tracing::info!(plugin = %name, "plugin registered");
    }
    for provider in build.providers() {
        registry.add_provider(provider);
    }
    let stop = CancellationToken::new();
    let plugins = occi_so_runtime::PluginSources::start(
        occi_so_runtime::SourcesConfig {
            dirs: settings.plugin_dirs.clone(),
            state_dir: state_dir.clone(),
        },
        registry.clone(),
        store.clone(),
        stop.clone(),
    )
    .await
    .map_err(|e| setup(&e))?;
    let admin_token = match &settings.admin_token_file {
        Some(f) => Some(read_admin_token(f).map_err(|e| setup(&e))?),
        None => None,
    };
    if registry.by_name(&settings.default_service).is_none() {
        tracing::warn!(service = %settings.default_service, "the default service is not registered; /orchestrator/ answers 404 until it is");
    }

    // Backend, lifecycle, metrics.
    let metrics = Arc::new(Metrics::new());
    let clouds = crate::backend::Clouds::connect(
        &settings.backend,
        &settings.clouds,
        &state_dir,
        sealer.as_ref(),
    )
    .map_err(|e| setup(&e))?;
    let backend_kind = clouds.default.backend.kind();
    let backend = Arc::new(MeteredBackend::new(
        clouds.default.backend.clone(),
        metrics.clone(),
    ));
    let mut named: BTreeMap<String, Arc<dyn StackBackend>> = BTreeMap::new();
    for (name, c) in &clouds.named {
        tracing::info!(cloud = %name, backend = c.backend.kind(), "named cloud");
        named.insert(
            name.clone(),
            Arc::new(MeteredBackend::new(c.backend.clone(), metrics.clone())),
        );
    }
    let request_timeout = settings.limits.request_timeout;
    let options = LifecycleOptions {
        stack_wait: occi_so_sdk::WaitOptions {
            timeout: settings.stack_timeout,
        },
        dispose_timeout: settings.dispose_wait,
        design_timeout: (request_timeout / 2).min(Duration::from_secs(30)),
        queue_limit: settings.queue_limit,
        event_retention: settings.event_retention,
        operation_retention: settings.operation_retention,
        operation_max_age: settings.operation_max_age,
        unavailable_retry: settings.stack_timeout,
    };
    let lifecycle = Arc::new(
        Lifecycle::new(store.clone(), registry, backend, options)
            .with_clouds(named)
            .with_observer(metrics.clone()),
    );
    let resumed = lifecycle.resume().await;
    if resumed > 0 {
        tracing::warn!(
            operations = resumed,
            "operations interrupted by the last stop are resumed from what the journal and the backends say"
        );
    }
    tokio::spawn(occi_so_http::deliver::run(
        occi_so_framework::outbox::Outbox::new(store.clone()),
        settings.public_url.clone(),
        stop.clone(),
    ));
    tokio::spawn({
        let lifecycle = lifecycle.clone();
        let stop = stop.clone();
        async move {
            let mut every = tokio::time::interval(Duration::from_secs(60));
            loop {
                tokio::select! {
                    _ = every.tick() => {
                        let pruned = lifecycle.prune_operations().await;
                        if pruned > 0 {
                            tracing::debug!(pruned, "old operation records pruned");
                        }
                    }
                    _ = stop.cancelled() => return,
                }
            }
        }
    });
    let followed = lifecycle.settle_stacks();
    if followed > 0 {
        tracing::info!(
            stacks = followed,
            "following stacks left in progress by the last stop"
        );
    }

    // HTTP.
    let auth = Authenticator::new(&settings.auth).map_err(|e| setup(&e))?;
    let tls = match &settings.tls {
        Some(t) => Some(server::tls::acceptor(t).map_err(|e| setup(&e))?),
        None => None,
    };
    let listener = server::bind(settings.listen).await?;
    let address = listener.local_addr()?;
    let auth_mode = auth.mode_name();
    let app = Arc::new(App {
        lifecycle: lifecycle.clone(),
        auth,
        metrics: metrics.clone(),
        mixins,
        query_cache: QueryCache::default(),
        public_url: settings.public_url.clone(),
        tls: tls.is_some(),
        listen: address,
        stop: stop.clone(),
        max_body: settings.limits.max_body,
        plugins: Some(plugins),
        admin_token,
    });
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(
        address = %address,
        url = %format!("{scheme}://{address}"),
        backend = backend_kind,
        auth = auth_mode,
        default_service = %settings.default_service,
        "listening"
    );
    let grace = settings.shutdown_grace;
    let limits = settings.limits.clone();
    let serving = tokio::spawn({
        let stop = stop.clone();
        async move { server::serve_app(listener, tls, app, &limits, metrics, stop, grace).await }
    });

    server::shutdown_signal().await;
    let deadline = Instant::now() + grace;
    tracing::info!(grace = ?grace, "shutting down");
    stop.cancel();
    match serving.await {
        Ok(true) => tracing::info!("all connections closed"),
        Ok(false) => {}
        Err(e) => tracing::error!(error = %e, "the accept loop failed"),
    }
    let left = deadline.saturating_duration_since(Instant::now());
    if !lifecycle.shutdown(left).await {
        tracing::warn!(running = lifecycle.running(), "operations still running at exit; the next start marks them interrupted (their stacks are journaled)");
    }
    clouds.close().await;
    store.close();
    tracing::info!("journal closed; bye");
    Ok(())
}
