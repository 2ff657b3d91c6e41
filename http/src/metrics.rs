//! Prometheus metrics (`GET /metrics`, OpenMetrics text): HTTP requests
//! by method and status, lifecycle operations by plugin and outcome,
//! instances by plugin and state, and stack-backend latency by call.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use occi_so_sdk::{
    BackendError, Credentials, EventInfo, ResourceInfo, StackBackend, StackInfo, StackPreview,
    StackRef, StackSpec, StackUpdate, ValidateInfo, ValidateRequest,
};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use occi_so_framework::lifecycle::{Lifecycle, LifecycleObserver};
use occi_so_framework::store;

/// The `Content-Type` of `/metrics`.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    plugin: String,
    operation: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InstanceLabels {
    plugin: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabels {
    backend: &'static str,
    call: &'static str,
    outcome: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.25 ms .. ~8 s
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

fn operation_histogram() -> Histogram {
    // 10 ms .. ~45 min
    Histogram::new(exponential_buckets(0.01, 2.0, 18))
}

/// All metrics of one server.
pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Histogram,
    operations: Family<OperationLabels, Counter>,
    operation_seconds: HistogramFamily<OperationLabels>,
    instances: Family<InstanceLabels, Gauge>,
    running: Gauge,
    backend_seconds: HistogramFamily<BackendLabels>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// A method as a static label (no allocation per request).
fn method_label(m: &http::Method) -> &'static str {
    match *m {
        http::Method::GET => "GET",
        http::Method::HEAD => "HEAD",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::DELETE => "DELETE",
        http::Method::OPTIONS => "OPTIONS",
        http::Method::PATCH => "PATCH",
        _ => "OTHER",
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("occi_so");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method and status",
            requests.clone(),
        );
        let request_seconds = latency_histogram();
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request (until the response head)",
            request_seconds.clone(),
        );
        let operations = Family::<OperationLabels, Counter>::default();
        registry.register(
            "operations",
            "Finished lifecycle operations, by plugin, operation and outcome (ok, failed, panicked)",
            operations.clone(),
        );
        let operation_seconds: HistogramFamily<OperationLabels> =
            Family::new_with_constructor(operation_histogram);
        registry.register(
            "operation_duration_seconds",
            "Duration of lifecycle operations, by plugin, operation and outcome",
            operation_seconds.clone(),
        );
        let instances = Family::<InstanceLabels, Gauge>::default();
        registry.register(
            "instances",
            "Service-orchestrator instances, by plugin and state (initialised, deployed, provisioned, busy, failed)",
            instances.clone(),
        );
        let running = Gauge::default();
        registry.register(
            "operations_running",
            "Lifecycle operations running now",
            running.clone(),
        );
        let backend_seconds: HistogramFamily<BackendLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "backend_call_duration_seconds",
            "Stack-backend call latency, by backend, call and outcome",
            backend_seconds.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            requests,
            request_seconds,
            operations,
            operation_seconds,
            instances,
            running,
            backend_seconds,
        }
    }

    /// Counts one answered request.
    pub(crate) fn request(&self, method: &http::Method, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method_label(method),
                status,
            })
            .inc();
        self.request_seconds.observe(elapsed.as_secs_f64());
    }

    /// Renders every metric, instance counts taken from `lifecycle` now.
    pub(crate) fn render(&self, lifecycle: &Lifecycle) -> String {
        self.instances.clear();
        for ((plugin, state), n) in store::count_by_phase(lifecycle.store()) {
            self.instances
                .get_or_create(&InstanceLabels { plugin, state })
                .set(n as i64);
        }
        self.running.set(lifecycle.running() as i64);
        let mut out = String::with_capacity(4096);
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        out
    }

    fn backend_call(&self, backend: &'static str, call: &'static str, ok: bool, since: Instant) {
        self.backend_seconds
            .get_or_create(&BackendLabels {
                backend,
                call,
                outcome: if ok { "ok" } else { "error" },
            })
            .observe(since.elapsed().as_secs_f64());
    }
}

impl LifecycleObserver for Metrics {
    fn operation_finished(&self, plugin: &str, operation: &str, outcome: &str, elapsed: Duration) {
        let labels = OperationLabels {
            plugin: plugin.to_string(),
            operation: operation.to_string(),
            outcome: outcome.to_string(),
        };
        self.operations.get_or_create(&labels).inc();
        self.operation_seconds
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }
}

/// A stack backend whose every call is timed into [`Metrics`].
pub struct MeteredBackend {
    inner: Arc<dyn StackBackend>,
    metrics: Arc<Metrics>,
}

impl MeteredBackend {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn StackBackend>, metrics: Arc<Metrics>) -> Self {
        MeteredBackend { inner, metrics }
    }

    fn done<T>(
        &self,
        call: &'static str,
        since: Instant,
        r: Result<T, BackendError>,
    ) -> Result<T, BackendError> {
        self.metrics
            .backend_call(self.inner.kind(), call, r.is_ok(), since);
        r
    }
}

#[async_trait]
impl StackBackend for MeteredBackend {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    async fn create(
        &self,
        creds: &Credentials,
        spec: &StackSpec,
    ) -> Result<StackRef, BackendError> {
        let t = Instant::now();
        let r = self.inner.create(creds, spec).await;
        self.done("create", t, r)
    }

    async fn get(&self, creds: &Credentials, stack: &StackRef) -> Result<StackInfo, BackendError> {
        let t = Instant::now();
        let r = self.inner.get(creds, stack).await;
        self.done("get", t, r)
    }

    async fn find(
        &self,
        creds: &Credentials,
        name: &str,
    ) -> Result<Option<StackRef>, BackendError> {
        let t = Instant::now();
        let r = self.inner.find(creds, name).await;
        self.done("find", t, r)
    }

    async fn update(
        &self,
        creds: &Credentials,
        stack: &StackRef,
        update: &StackUpdate,
    ) -> Result<(), BackendError> {
        let t = Instant::now();
        let r = self.inner.update(creds, stack, update).await;
        self.done("update", t, r)
    }

    async fn delete(&self, creds: &Credentials, stack: &StackRef) -> Result<(), BackendError> {
        let t = Instant::now();
        let r = self.inner.delete(creds, stack).await;
        self.done("delete", t, r)
    }

    async fn cancel(&self, creds: &Credentials, stack: &StackRef) -> Result<(), BackendError> {
        let t = Instant::now();
        let r = self.inner.cancel(creds, stack).await;
        self.done("cancel", t, r)
    }

    async fn preview_create(
        &self,
        creds: &Credentials,
        spec: &StackSpec,
    ) -> Result<StackPreview, BackendError> {
        let t = Instant::now();
        let r = self.inner.preview_create(creds, spec).await;
        self.done("preview_create", t, r)
    }

    async fn preview_update(
        &self,
        creds: &Credentials,
        stack: &StackRef,
        update: &StackUpdate,
    ) -> Result<StackPreview, BackendError> {
        let t = Instant::now();
        let r = self.inner.preview_update(creds, stack, update).await;
        self.done("preview_update", t, r)
    }

    async fn resources(
        &self,
        creds: &Credentials,
        stack: &StackRef,
    ) -> Result<Vec<ResourceInfo>, BackendError> {
        let t = Instant::now();
        let r = self.inner.resources(creds, stack).await;
        self.done("resources", t, r)
    }

    async fn events(
        &self,
        creds: &Credentials,
        stack: &StackRef,
    ) -> Result<Vec<EventInfo>, BackendError> {
        let t = Instant::now();
        let r = self.inner.events(creds, stack).await;
        self.done("events", t, r)
    }

    async fn validate(
        &self,
        creds: &Credentials,
        request: &ValidateRequest,
    ) -> Result<ValidateInfo, BackendError> {
        let t = Instant::now();
        let r = self.inner.validate(creds, request).await;
        self.done("validate", t, r)
    }

    async fn watch(
        &self,
        creds: &Credentials,
        stack: &StackRef,
    ) -> Result<watch::Receiver<StackInfo>, BackendError> {
        let t = Instant::now();
        let r = self.inner.watch(creds, stack).await;
        self.done("watch", t, r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_operations_appear_in_the_text() {
        let m = Metrics::new();
        m.request(&http::Method::GET, 200, Duration::from_millis(2));
        m.request(&http::Method::PUT, 201, Duration::from_millis(3));
        m.operation_finished("sample", "deploy", "ok", Duration::from_secs(2));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &m.registry.lock().unwrap()).unwrap();
        assert!(
            out.contains("occi_so_http_requests_total{method=\"GET\",status=\"200\"} 1"),
            "{out}"
        );
        assert!(out.contains(
            "occi_so_operations_total{plugin=\"sample\",operation=\"deploy\",outcome=\"ok\"} 1"
        ));
    }
}
