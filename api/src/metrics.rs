//! HTTP metrics in the Prometheus text format: requests and latency by method, matched
//! route and status class. One short lock per request (HTTP, not the media hot path).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Latency buckets, seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Debug, Default, Clone)]
struct Series {
    count: u64,
    sum: f64,
    buckets: [u64; BUCKETS.len()],
}

/// Request counters and histograms.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    series: Mutex<BTreeMap<(String, String, String), Series>>,
}

impl HttpMetrics {
    /// Counts one request.
    pub fn record(&self, method: &str, route: &str, status: u16, secs: f64) {
        let class = format!("{}xx", status / 100);
        let mut map = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let s = map
            .entry((method.to_string(), route.to_string(), class))
            .or_default();
        s.count += 1;
        s.sum += secs;
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                s.buckets[i] += 1;
            }
        }
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let map = self
            .series
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut out = String::new();
        out.push_str("# HELP switchboard_http_requests_total HTTP requests by method, matched route and status class.\n# TYPE switchboard_http_requests_total counter\n");
        for ((m, r, c), s) in &map {
            let _ = writeln!(
                out,
                "switchboard_http_requests_total{{method=\"{m}\",route=\"{}\",status=\"{c}\"}} {}",
                escape(r),
                s.count
            );
        }
        out.push_str("# HELP switchboard_http_request_duration_seconds HTTP latency by method and matched route.\n# TYPE switchboard_http_request_duration_seconds histogram\n");
        let mut by_route: BTreeMap<(String, String), Series> = BTreeMap::new();
        for ((m, r, _), s) in &map {
            let e = by_route.entry((m.clone(), r.clone())).or_default();
            e.count += s.count;
            e.sum += s.sum;
            for i in 0..BUCKETS.len() {
                e.buckets[i] += s.buckets[i];
            }
        }
        for ((m, r), s) in &by_route {
            let labels = format!("method=\"{m}\",route=\"{}\"", escape(r));
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "switchboard_http_request_duration_seconds_bucket{{{labels},le=\"{b}\"}} {}",
                    s.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "switchboard_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "switchboard_http_request_duration_seconds_sum{{{labels}}} {}",
                s.sum
            );
            let _ = writeln!(
                out,
                "switchboard_http_request_duration_seconds_count{{{labels}}} {}",
                s.count
            );
        }
        out
    }
}

/// Escapes a label value.
pub fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_buckets() {
        let m = HttpMetrics::default();
        m.record("GET", "/api/leads", 200, 0.004);
        m.record("GET", "/api/leads", 200, 0.3);
        m.record("GET", "/api/leads", 404, 0.001);
        let t = m.render();
        assert!(t.contains("switchboard_http_requests_total{method=\"GET\",route=\"/api/leads\",status=\"2xx\"} 2"), "{t}");
        assert!(t.contains(
            "switchboard_http_requests_total{method=\"GET\",route=\"/api/leads\",status=\"4xx\"} 1"
        ));
        assert!(t.contains("switchboard_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/leads\",le=\"0.005\"} 2"));
        assert!(t.contains("switchboard_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/leads\",le=\"+Inf\"} 3"));
        assert!(t.contains("switchboard_http_request_duration_seconds_count{method=\"GET\",route=\"/api/leads\"} 3"));
    }
}
