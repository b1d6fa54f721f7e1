//! What a run of measurements comes to: samples, medians, percentiles, and
//! their cells in the report's tables.

use std::time::Duration;

/// One measurement of closed-loop load.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub rps: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    /// Every request answered in the run, warm-ups included.
    pub requests: u64,
    /// The server's CPU time per request, where it was measured.
    pub server_cpu: Option<Duration>,
}

impl Sample {
    /// A run that could not be made (a tool failed): printed as n/a.
    pub const NONE: Sample = Sample {
        rps: f64::NAN,
        p50: Duration::ZERO,
        p99: Duration::ZERO,
        max: Duration::ZERO,
        requests: 0,
        server_cpu: None,
    };

    /// Throughput and latencies from the sorted times of the requests
    /// measured over `duration`, of `requests` in all.
    pub fn from_sorted(latencies: &[Duration], duration: Duration, requests: u64) -> Sample {
        Sample {
            rps: latencies.len() as f64 / duration.as_secs_f64(),
            p50: percentile(latencies, 0.5),
            p99: percentile(latencies, 0.99),
            max: latencies.last().copied().unwrap_or_default(),
            requests,
            server_cpu: None,
        }
    }

    /// The server's CPU µs per request, one cell.
    pub fn cpu_cell(&self) -> String {
        self.server_cpu.map_or_else(|| "n/a".into(), micros)
    }

    /// `req/s | p50 / p99 / max` (µs), two cells.
    pub fn cells(&self) -> String {
        if self.rps.is_nan() {
            return "n/a | n/a".into();
        }
        format!(
            "{:.0} | {} / {} / {}",
            self.rps,
            micros(self.p50),
            micros(self.p99),
            micros(self.max)
        )
    }

    /// `self.rps / other.rps`, or n/a when either run is missing.
    pub fn ratio(&self, other: &Sample, digits: usize) -> String {
        let ratio = self.rps / other.rps;
        match ratio.is_finite() {
            true => format!("{ratio:.digits$}"),
            false => "n/a".into(),
        }
    }
}

/// Whole microseconds.
pub fn micros(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e6)
}

/// Milliseconds to two places.
pub fn millis(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

/// The value at quantile `q` of sorted durations.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted
        .get((sorted.len().saturating_sub(1) as f64 * q).round() as usize)
        .copied()
        .unwrap_or_default()
}

/// The median of some durations (zero if there are none).
pub fn median(mut times: Vec<Duration>) -> Duration {
    times.sort_unstable();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

/// `samples | p50 | p99 | max` in ms of some durations, four cells.
pub fn latency_cells(mut times: Vec<Duration>) -> String {
    times.sort_unstable();
    format!(
        "{} | {} | {} | {}",
        times.len(),
        millis(percentile(&times, 0.5)),
        millis(percentile(&times, 0.99)),
        millis(times.last().copied().unwrap_or_default())
    )
}

/// Runs each target once per repeat, interleaved, and keeps the median by
/// throughput: on a shared machine a slow moment then hurts every target
/// alike, not the one that happened to run in it.
pub fn interleaved(targets: &[&dyn Fn() -> Sample], repeats: usize) -> Vec<Sample> {
    let mut runs: Vec<Vec<Sample>> = vec![Vec::new(); targets.len()];
    for _ in 0..repeats {
        for (target, samples) in targets.iter().zip(&mut runs) {
            samples.push(target());
        }
    }
    runs.into_iter()
        .map(|mut samples| {
            samples.sort_by(|a, b| a.rps.total_cmp(&b.rps));
            samples[samples.len() / 2]
        })
        .collect()
}
