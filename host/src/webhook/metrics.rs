//! `GET /metrics`: requests by verdict, evaluation latency per policy,
//! denials per rule, in the Prometheus text format.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerdictLabel {
    pub verdict: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabel {
    pub policy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabel {
    pub rule: String,
}

pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<VerdictLabel, Counter>,
    latency: Family<PolicyLabel, Histogram>,
    denials: Family<RuleLabel, Counter>,
}

fn latency_histogram() -> Histogram {
    // 50 µs .. ~1.6 s: a policy evaluation is around a millisecond.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.000_05, 2.0, 16,
    ))
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("lkguard");
        let requests = Family::<VerdictLabel, Counter>::default();
        let latency = Family::<PolicyLabel, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let denials = Family::<RuleLabel, Counter>::default();
        registry.register(
            "admission_requests",
            "AdmissionReview requests by verdict (allowed, denied, invalid)",
            requests.clone(),
        );
        registry.register(
            "policy_evaluation_seconds",
            "Wall time of one policy evaluation",
            latency.clone(),
        );
        registry.register("denials", "Denied requests per rule", denials.clone());
        Metrics {
            registry: Mutex::new(registry),
            requests,
            latency,
            denials,
        }
    }

    pub fn request(&self, verdict: &str) {
        self.requests
            .get_or_create(&VerdictLabel {
                verdict: verdict.into(),
            })
            .inc();
    }

    pub fn evaluation(&self, policy: &str, took: Duration) {
        self.latency
            .get_or_create(&PolicyLabel {
                policy: policy.into(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn denial(&self, rule: &str) {
        self.denials
            .get_or_create(&RuleLabel { rule: rule.into() })
            .inc();
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Ok(registry) = self.registry.lock() {
            let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
