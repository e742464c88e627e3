//! What the service counts for `/metrics` (Prometheus text format, `metrics_enabled`): requests
//! and their latency by route and status class, logins by outcome, signups, resets, bcrypt's
//! queue and hash time, the database pool's use and wait time, and what the cleanup purged.
//!
//! A [`Metrics`] handle is cheap to clone and passed to the layers that count (web, auth, db),
//! which call its methods and never see a Prometheus type. When metrics are off it is empty and
//! every call returns at once, so the default configuration pays nothing per request.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};

/// The `Content-Type` of a scrape.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// How a login ended.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum LoginOutcome {
    ok,
    failed,
    throttled,
    busy,
    unverified,
}

/// Which step of a password reset.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum ResetStage {
    requested,
    completed,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: LoginOutcome,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: ResetStage,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// What the cleanup purges, as [`Metrics::purged`] names it.
pub const PURGED_KINDS: [&str; 7] = [
    "sessions",
    "reset_tokens",
    "attempts",
    "devices",
    "account_tokens",
    "sign_in_steps",
    "oidc",
];

/// Load figures read at scrape time rather than counted as they change.
#[derive(Debug, Clone, Copy, Default)]
pub struct Load {
    /// Hashes admitted to bcrypt: running or waiting for a hashing thread.
    pub bcrypt_admitted: usize,
    pub pool_size: u32,
    pub pool_idle: u32,
}

type Latencies = Family<RouteLabels, Histogram, fn() -> Histogram>;

struct Inner {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Latencies,
    logins: Family<OutcomeLabels, Counter>,
    signups: Counter,
    resets: Family<StageLabels, Counter>,
    hash_seconds: Histogram,
    bcrypt_admitted: Gauge,
    pool_wait_seconds: Histogram,
    pool_size: Gauge,
    pool_in_use: Gauge,
    purged: Family<KindLabels, Counter>,
    session_cache: Family<ResultLabels, Counter>,
}

/// The service's counters; empty (and free) when metrics are off.
#[derive(Clone, Default)]
pub struct Metrics(Option<Arc<Inner>>);

/// Buckets from 0.5 ms to about 16 s, doubling: requests, pool waits.
fn short_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Registers `metric` under `name` and hands it back: the registry keeps a clone that shares
/// its value, and encodes the metrics in the order they were added.
fn add<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

impl Metrics {
    /// Counting metrics, when `enabled`; otherwise the empty handle.
    pub fn new(enabled: bool) -> Metrics {
        if !enabled {
            return Metrics(None);
        }
        let mut registry = Registry::default();
        let r = &mut registry;
        let inner = Inner {
            requests: add(
                r,
                "http_requests",
                "HTTP requests answered, by method, route and status class",
                Family::default(),
            ),
            latency: add(
                r,
                "http_request_duration_seconds",
                "Time from a request's arrival to its response, by route",
                Family::new_with_constructor(short_buckets as fn() -> Histogram),
            ),
            logins: add(
                r,
                "logins",
                "Logins by outcome (ok, failed, throttled, busy, unverified)",
                Family::default(),
            ),
            signups: add(r, "signups", "Accounts created", Counter::default()),
            resets: add(
                r,
                "password_resets",
                "Reset links requested and resets completed",
                Family::default(),
            ),
            hash_seconds: add(
                r,
                "bcrypt_hash_duration_seconds",
                "Time of one bcrypt hash or verification, waiting excluded",
                Histogram::new(exponential_buckets(0.01, 2.0, 12)),
            ),
            bcrypt_admitted: add(
                r,
                "bcrypt_admitted",
                "Hashes admitted: running or waiting for a hashing thread (at most bcrypt_queue)",
                Gauge::default(),
            ),
            pool_wait_seconds: add(
                r,
                "db_pool_wait_duration_seconds",
                "Time spent waiting for a pooled database connection",
                short_buckets(),
            ),
            pool_size: add(
                r,
                "db_pool_connections",
                "Connections the pool holds",
                Gauge::default(),
            ),
            pool_in_use: add(
                r,
                "db_pool_connections_in_use",
                "Pooled connections in use",
                Gauge::default(),
            ),
            purged: add(
                r,
                "cleanup_purged",
                "Rows the periodic cleanup deleted, by kind",
                Family::default(),
            ),
            session_cache: add(
                r,
                "session_cache_lookups",
                "Session lookups answered by this instance's session cache (hit) or the database (miss)",
                Family::default(),
            ),
            registry,
        };
        // Every series exists from the start, at zero: a rate over a series that appears
        // only with its first event misses that event.
        for outcome in [
            LoginOutcome::ok,
            LoginOutcome::failed,
            LoginOutcome::throttled,
            LoginOutcome::busy,
            LoginOutcome::unverified,
        ] {
            inner.logins.get_or_create_owned(&OutcomeLabels { outcome });
        }
        for stage in [ResetStage::requested, ResetStage::completed] {
            inner.resets.get_or_create_owned(&StageLabels { stage });
        }
        for kind in PURGED_KINDS {
            inner.purged.get_or_create_owned(&KindLabels { kind });
        }
        for result in ["hit", "miss"] {
            inner
                .session_cache
                .get_or_create_owned(&ResultLabels { result });
        }
        Metrics(Some(Arc::new(inner)))
    }

    /// Counts an answered request: `route` is the matched route's path template
    /// (`/account/sessions/<id>`), never the request's own path, so labels stay few.
    pub fn request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let Some(inner) = &self.0 else { return };
        let labels = RequestLabels {
            method: method.to_owned(),
            route: route.to_owned(),
            status: format!("{}xx", status / 100),
        };
        inner.requests.get_or_create(&labels).inc();
        let route = RouteLabels {
            route: route.to_owned(),
        };
        inner
            .latency
            .get_or_create(&route)
            .observe(elapsed.as_secs_f64());
    }

    pub fn login(&self, outcome: LoginOutcome) {
        if let Some(inner) = &self.0 {
            inner.logins.get_or_create(&OutcomeLabels { outcome }).inc();
        }
    }

    pub fn signup(&self) {
        if let Some(inner) = &self.0 {
            inner.signups.inc();
        }
    }

    pub fn reset(&self, stage: ResetStage) {
        if let Some(inner) = &self.0 {
            inner.resets.get_or_create(&StageLabels { stage }).inc();
        }
    }

    pub fn hash_time(&self, elapsed: Duration) {
        if let Some(inner) = &self.0 {
            inner.hash_seconds.observe(elapsed.as_secs_f64());
        }
    }

    pub fn pool_wait(&self, elapsed: Duration) {
        if let Some(inner) = &self.0 {
            inner.pool_wait_seconds.observe(elapsed.as_secs_f64());
        }
    }

    /// Counts a session lookup of the session cache: a `hit`, or a miss that read the database.
    pub fn session_cache(&self, hit: bool) {
        if let Some(inner) = &self.0 {
            let result = if hit { "hit" } else { "miss" };
            inner
                .session_cache
                .get_or_create(&ResultLabels { result })
                .inc();
        }
    }

    /// Counts `count` rows of `kind` deleted by the cleanup.
    pub fn purged(&self, kind: &'static str, count: usize) {
        if let Some(inner) = &self.0 {
            let count = u64::try_from(count).unwrap_or(u64::MAX);
            inner
                .purged
                .get_or_create(&KindLabels { kind })
                .inc_by(count);
        }
    }

    /// Every metric in the Prometheus text format, with the load figures of this moment;
    /// `None` when metrics are off.
    pub fn encode(&self, load: Load) -> Option<String> {
        let inner = self.0.as_ref()?;
        let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        inner
            .bcrypt_admitted
            .set(gauge(load.bcrypt_admitted as u64));
        inner.pool_size.set(gauge(load.pool_size.into()));
        let in_use = load.pool_size.saturating_sub(load.pool_idle);
        inner.pool_in_use.set(gauge(in_use.into()));
        let mut text = String::new();
        prometheus_text::encode(&mut text, &inner.registry).ok()?;
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_counts_nothing_and_on_encodes_every_metric() {
        let off = Metrics::new(false);
        off.login(LoginOutcome::ok);
        assert_eq!(off.encode(Load::default()), None);

        let on = Metrics::new(true);
        on.request("GET", "/profile", 200, Duration::from_millis(3));
        on.login(LoginOutcome::throttled);
        on.purged("sessions", 4);
        let load = Load {
            bcrypt_admitted: 3,
            pool_size: 8,
            pool_idle: 6,
        };
        let text = on.encode(load).unwrap();
        for line in [
            "http_requests_total{method=\"GET\",route=\"/profile\",status=\"2xx\"} 1",
            "logins_total{outcome=\"throttled\"} 1",
            "cleanup_purged_total{kind=\"sessions\"} 4",
            "bcrypt_admitted 3",
            "db_pool_connections_in_use 2",
            "http_request_duration_seconds_count{route=\"/profile\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
