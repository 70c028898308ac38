//! Shared memory's speed-up over TCP by a job's width: one constant
//! (`--shm-speedup X`) or what a cluster measured (`--shm-speedup-from`
//! the JSON of `shoal bench md` or `shoal bench gromacs`).

use serde_json::Value;
use std::collections::BTreeMap;

/// A speed-up for each job width (total ranks), from measured points.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeedupCurve {
    /// (total ranks, speed-up), sorted by ranks, at least one.
    points: Vec<(u32, f64)>,
}

/// What is wrong with a benchmark's JSON.
#[derive(Debug, thiserror::Error)]
pub enum SpeedupError {
    /// The file is not a list of runs.
    #[error("not the JSON of `shoal bench md` or `shoal bench gromacs` (a list of runs): {0}")]
    NotJson(String),
    /// No shape has both an shm and a tcp run.
    #[error("no shape there was measured over both shm and tcp (runs with `nodes`, `ranks_per_node`, `transport` and `steps_per_s` or `ns_per_day`); run the benchmark with --transport shm,tcp")]
    NoPairs,
}

/// A run's (program, nodes, ranks per node, transport) and its speed.
fn shape(r: &Value) -> Option<(&str, u64, u64, &str, f64)> {
    let speed = r["steps_per_s"]
        .as_f64()
        .or_else(|| r["ns_per_day"].as_f64())?;
    Some((
        r["program"].as_str().unwrap_or(""),
        r["nodes"].as_u64().unwrap_or(1),
        r["ranks_per_node"]
            .as_u64()
            .or_else(|| r["ranks"].as_u64())?,
        r["transport"].as_str()?,
        speed,
    ))
}

/// For each shape of a program measured over both transports, `(program,
/// nodes, ranks per node, shm's speed / tcp's)`, in the runs' order.
pub fn shape_speedups(runs: &[Value]) -> Vec<(String, u64, u64, f64)> {
    let shapes: Vec<_> = runs.iter().filter_map(shape).collect();
    shapes
        .iter()
        .filter(|s| s.3 == "shm")
        .filter_map(|&(p, n, rpn, _, shm)| {
            let tcp = shapes
                .iter()
                .find(|t| (t.0, t.1, t.2, t.3) == (p, n, rpn, "tcp"))?
                .4;
            (tcp > 0.0 && shm > 0.0).then_some((p.to_string(), n, rpn, shm / tcp))
        })
        .collect()
}

impl SpeedupCurve {
    /// The same speed-up at every width.
    pub fn constant(x: f64) -> SpeedupCurve {
        SpeedupCurve {
            points: vec![(1, x)],
        }
    }

    /// From a benchmark's runs: the speed-up of each total rank count (the
    /// mean where several shapes have that many ranks).
    pub fn from_runs(runs: &[Value]) -> Result<SpeedupCurve, SpeedupError> {
        let mut by: BTreeMap<u32, Vec<f64>> = BTreeMap::new();
        for (_, n, rpn, s) in shape_speedups(runs) {
            by.entry((n * rpn) as u32).or_default().push(s);
        }
        if by.is_empty() {
            return Err(SpeedupError::NoPairs);
        }
        Ok(SpeedupCurve {
            points: by
                .into_iter()
                .map(|(r, v)| (r, v.iter().sum::<f64>() / v.len() as f64))
                .collect(),
        })
    }

    /// From a benchmark's JSON text.
    pub fn from_json(text: &str) -> Result<SpeedupCurve, SpeedupError> {
        let runs: Vec<Value> =
            serde_json::from_str(text).map_err(|e| SpeedupError::NotJson(e.to_string()))?;
        SpeedupCurve::from_runs(&runs)
    }

    /// The measured points, (total ranks, speed-up).
    pub fn points(&self) -> &[(u32, f64)] {
        &self.points
    }

    /// The speed-up of a job `width` ranks wide: linear between the measured
    /// counts; outside them, that of the nearest one (so one measured
    /// speed-up X is `--shm-speedup X`).
    pub fn at(&self, width: u32) -> f64 {
        let p = &self.points;
        let (first, last) = (p[0], p[p.len() - 1]);
        if width <= first.0 {
            return first.1;
        }
        if width >= last.0 {
            return last.1;
        }
        let i = p.iter().position(|q| q.0 >= width).unwrap_or(p.len() - 1);
        let (a, b) = (p[i - 1], p[i]);
        a.1 + (b.1 - a.1) * f64::from(width - a.0) / f64::from(b.0 - a.0)
    }

    /// Whether it changes nothing (1.0 everywhere).
    pub fn is_none(&self) -> bool {
        self.points.iter().all(|p| p.1 == 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(n: u64, rpn: u64, t: &str, s: f64) -> Value {
        json!({"nodes": n, "ranks_per_node": rpn, "transport": t, "steps_per_s": s})
    }

    #[test]
    fn measured_speedups_interpolate_between_counts_and_hold_outside() {
        let runs = vec![
            run(1, 1, "serial", 100.0),
            run(1, 2, "shm", 150.0),
            run(1, 2, "tcp", 100.0),
            run(2, 2, "shm", 260.0),
            run(2, 2, "tcp", 200.0),
            run(4, 1, "shm", 200.0),
            run(4, 1, "tcp", 200.0),
            run(2, 4, "shm", 100.0), // no tcp twin: not a measurement
        ];
        let c = SpeedupCurve::from_runs(&runs).unwrap();
        // 4 ranks: the mean of 2 × 2 (1.3) and 4 × 1 (1.0).
        assert_eq!(c.points(), &[(2, 1.5), (4, 1.15)]);
        assert_eq!(c.at(1), 1.5);
        assert_eq!(c.at(2), 1.5);
        assert!((c.at(3) - 1.325).abs() < 1e-12);
        assert_eq!(c.at(64), 1.15);
        assert_eq!(
            SpeedupCurve::from_runs(&runs[..1]).unwrap_err().to_string(),
            SpeedupError::NoPairs.to_string()
        );
        assert!(SpeedupCurve::from_json("{").is_err());
        let one = SpeedupCurve::from_runs(&runs[1..3]).unwrap();
        for w in [1, 2, 7, 1000] {
            assert_eq!(one.at(w), SpeedupCurve::constant(1.5).at(w));
        }
    }
}
