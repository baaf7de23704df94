//! Turns measurements into rows with percentiles and ratios, as a table or
//! JSON.

use serde::Serialize;

use crate::plan::ClientEra;
use crate::run::Measurement;

/// One (target, concurrency) result.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub target: String,
    pub url: String,
    /// How the client spoke to the target.
    pub client: ClientEra,
    pub concurrency: usize,
    /// Successful calls inside the measured window.
    pub requests: u64,
    pub errors: u64,
    pub duration_s: f64,
    pub throughput_rps: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub mean_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// Throughput divided by the first target's at the same concurrency.
    pub throughput_ratio: Option<f64>,
    /// p50 divided by the first target's at the same concurrency.
    pub p50_ratio: Option<f64>,
    /// The target's second reference (`--target-reference`), and the same
    /// two ratios against it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throughput_vs_reference: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50_vs_reference: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

/// All rows of a run, in run order (each concurrency level, then each
/// target in the order given).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub baseline: String,
    pub tool: String,
    pub warmup_s: f64,
    pub rows: Vec<Row>,
}

/// The `q`-quantile (0..=1) of sorted values, nearest rank.
pub fn percentile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

impl Row {
    pub fn from_measurement(m: &Measurement) -> Row {
        let lat = &m.latencies_ns;
        let secs = m.window.as_secs_f64();
        let requests = lat.len() as u64;
        let mean = (!lat.is_empty())
            .then(|| lat.iter().map(|&n| n as f64).sum::<f64>() / lat.len() as f64 / 1e6);
        Row {
            target: m.target.clone(),
            url: m.url.clone(),
            client: m.era,
            concurrency: m.concurrency,
            requests,
            errors: m.errors,
            duration_s: secs,
            throughput_rps: if secs > 0.0 {
                requests as f64 / secs
            } else {
                0.0
            },
            p50_ms: percentile(lat, 0.50).map(ms),
            p99_ms: percentile(lat, 0.99).map(ms),
            mean_ms: mean,
            max_ms: lat.last().copied().map(ms),
            throughput_ratio: None,
            p50_ratio: None,
            reference: m.reference.clone(),
            throughput_vs_reference: None,
            p50_vs_reference: None,
            first_error: m.first_error.clone(),
        }
    }
}

impl Report {
    /// Builds the report; ratios are against `baseline` (and each row's
    /// reference, if any) at equal concurrency.
    pub fn new(baseline: &str, tool: &str, warmup_s: f64, measurements: &[Measurement]) -> Report {
        let mut rows: Vec<Row> = measurements.iter().map(Row::from_measurement).collect();
        let figures: Vec<(String, usize, f64, Option<f64>)> = rows
            .iter()
            .map(|r| (r.target.clone(), r.concurrency, r.throughput_rps, r.p50_ms))
            .collect();
        let ratios = |row: &Row, of: &str| {
            let &(_, _, rps, p50) = figures
                .iter()
                .find(|(t, c, _, _)| t == of && *c == row.concurrency)?;
            let throughput = (rps > 0.0).then(|| row.throughput_rps / rps);
            let p50 = match (row.p50_ms, p50) {
                (Some(a), Some(b)) if b > 0.0 => Some(a / b),
                _ => None,
            };
            Some((throughput, p50))
        };
        for row in &mut rows {
            if let Some((throughput, p50)) = ratios(row, baseline) {
                row.throughput_ratio = throughput;
                row.p50_ratio = p50;
            }
            if let Some(reference) = row.reference.clone() {
                if let Some((throughput, p50)) = ratios(row, &reference) {
                    row.throughput_vs_reference = throughput;
                    row.p50_vs_reference = p50;
                }
            }
        }
        Report {
            baseline: baseline.to_owned(),
            tool: tool.to_owned(),
            warmup_s,
            rows,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// A fixed-width table, one line per row, with the ratios against the
    /// baseline.
    pub fn to_table(&self) -> String {
        let with_references = self.rows.iter().any(|r| r.reference.is_some());
        let mut headers = vec![
            "target",
            "client",
            "conc",
            "requests",
            "req/s",
            "p50 ms",
            "p99 ms",
            "errors",
            "req/s vs base",
            "p50 vs base",
        ];
        if with_references {
            headers.extend(["reference", "req/s vs ref", "p50 vs ref"]);
        }
        let opt = |v: Option<f64>, digits: usize| match v {
            Some(v) => format!("{v:.digits$}"),
            None => "-".to_owned(),
        };
        let ratio = |v: Option<f64>| match v {
            Some(v) => format!("{v:.2}x"),
            None => "-".to_owned(),
        };
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| {
                let mut cells = vec![
                    r.target.clone(),
                    r.client.as_str().to_owned(),
                    r.concurrency.to_string(),
                    r.requests.to_string(),
                    format!("{:.1}", r.throughput_rps),
                    opt(r.p50_ms, 3),
                    opt(r.p99_ms, 3),
                    r.errors.to_string(),
                    ratio(r.throughput_ratio),
                    ratio(r.p50_ratio),
                ];
                if with_references {
                    cells.extend([
                        r.reference.clone().unwrap_or_else(|| "-".to_owned()),
                        ratio(r.throughput_vs_reference),
                        ratio(r.p50_vs_reference),
                    ]);
                }
                cells
            })
            .collect();
        let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
        for row in &cells {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |fields: &mut dyn Iterator<Item = &str>| {
            let mut out = String::new();
            for (i, (f, w)) in fields.zip(&widths).enumerate() {
                if i > 0 {
                    out.push_str("  ");
                }
                if i == 0 {
                    out.push_str(&format!("{f:<w$}"));
                } else {
                    out.push_str(&format!("{f:>w$}"));
                }
            }
            out.push('\n');
            out
        };
        let mut out = line(&mut headers.iter().copied());
        for row in &cells {
            out.push_str(&line(&mut row.iter().map(String::as_str)));
        }
        out.push_str(&format!(
            "\nbaseline: {} (ratios compare each target with it at the same concurrency)\n",
            self.baseline
        ));
        if with_references {
            out.push_str(
                "reference: a second comparison for some targets, also at the same concurrency\n",
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn m(target: &str, concurrency: usize, lat_ms: &[u64]) -> Measurement {
        Measurement {
            target: target.into(),
            url: format!("http://{target}/mcp"),
            era: ClientEra::Session,
            reference: None,
            concurrency,
            window: Duration::from_secs(2),
            latencies_ns: lat_ms.iter().map(|l| l * 1_000_000).collect(),
            errors: 0,
            first_error: None,
        }
    }

    #[test]
    fn percentiles_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), Some(50));
        assert_eq!(percentile(&v, 0.99), Some(99));
        assert_eq!(percentile(&v, 1.0), Some(100));
        assert_eq!(percentile(&[7], 0.99), Some(7));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn ratios_against_the_baseline_at_equal_concurrency() {
        let report = Report::new(
            "up",
            "echo",
            1.0,
            &[
                m("up", 1, &[1, 1, 1, 1]),
                m("gw", 1, &[2, 2]),
                m("up", 8, &[4; 8]),
                m("gw", 8, &[]),
            ],
        );
        let gw1 = &report.rows[1];
        assert_eq!(gw1.throughput_rps, 1.0);
        assert_eq!(gw1.throughput_ratio, Some(0.5));
        assert_eq!(gw1.p50_ratio, Some(2.0));
        assert_eq!(report.rows[0].throughput_ratio, Some(1.0));
        assert_eq!(report.rows[3].p50_ratio, None);
        assert_eq!(report.rows[3].throughput_ratio, Some(0.0));
        let table = report.to_table();
        assert!(table.lines().next().unwrap().starts_with("target"));
        assert!(table.contains("0.50x"));
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["rows"][1]["p50_ratio"], 2.0);
    }

    #[test]
    fn ratios_against_a_reference_beside_the_baseline() {
        let mut modern = m("gw-modern", 1, &[4; 3]);
        modern.era = ClientEra::Modern;
        modern.reference = Some("gw".into());
        let report = Report::new(
            "up",
            "echo",
            1.0,
            &[m("up", 1, &[1; 6]), m("gw", 1, &[2; 2]), modern],
        );
        let row = &report.rows[2];
        assert_eq!(row.throughput_ratio, Some(0.5));
        assert_eq!(row.p50_ratio, Some(4.0));
        assert_eq!(row.throughput_vs_reference, Some(1.5));
        assert_eq!(row.p50_vs_reference, Some(2.0));
        assert_eq!(report.rows[1].throughput_vs_reference, None);
        let table = report.to_table();
        assert!(table.lines().next().unwrap().contains("req/s vs ref"));
        assert!(table.contains("modern") && table.contains("1.50x"));
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["rows"][2]["client"], "modern");
        assert_eq!(json["rows"][2]["reference"], "gw");
        assert!(json["rows"][1].get("reference").is_none());
    }
}
