//! From SWF records to simulated jobs, by the reference conventions
//! (`shared/reference/README.md`):
//! - width = field 5 clamped to [1, P] (field 8 ignored);
//! - requested time -1 → the run time;
//! - estimate = max(requested, run, 1); actual = max(min(requested, run), 1);
//! - a line with run ≤ 0, allocated processors ≤ 0 or submit < 0 becomes a
//!   placeholder (submit max(submit, 1), 1 s actual and estimate; width
//!   field 5 clamped where it is > 0, else 1 processor, as the reference's
//!   start files show), kept, not dropped; counted by reason.

use std::collections::BTreeMap;

use crate::swf::SwfRecord;

/// One job as the simulator sees it. Times in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SimJob {
    /// 0-based index among the trace's job lines.
    pub index: u64,
    /// Submit time.
    pub submit: u64,
    /// Processors.
    pub width: u32,
    /// Run time in the simulation.
    pub actual: u64,
    /// Runtime estimate the scheduler sees.
    pub estimate: u64,
    /// SWF field 12, the user id (-1: unknown), for fair share.
    pub user: i64,
    /// SWF field 13, the group id (-1: unknown), for fair share.
    pub group: i64,
}

/// Reason a line became a placeholder: submit < 0.
pub const NEG_SUBMIT: &str = "submit<0";
/// Reason a line became a placeholder: run time ≤ 0 (or unknown).
pub const NO_RUNTIME: &str = "runtime<=0";
/// Reason a line became a placeholder: allocated processors ≤ 0 (or unknown).
pub const NO_PROCS: &str = "procs<=0";
/// Not a placeholder: the width was clamped to the machine size.
pub const CLAMPED: &str = "width>procs (clamped)";

/// Which estimate the scheduler gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EstimateKind {
    /// The user's request, by the conventions.
    #[default]
    Requested,
    /// Perfect estimates: the actual run time.
    Actual,
}

/// A filter on jobs, for `--shm-jobs`: `all`, or `procs` compared with a
/// number (`procs>=2`, `procs<8`, `procs==1`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobFilter {
    /// Every job.
    All,
    /// Jobs whose width compares so with the number.
    Procs(Cmp, u32),
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `==`
    Eq,
    /// `>=`
    Ge,
    /// `>`
    Gt,
}

impl std::str::FromStr for JobFilter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        if t == "all" || t == "*" {
            return Ok(JobFilter::All);
        }
        let rest = t
            .strip_prefix("procs")
            .ok_or_else(|| format!("job filter {s:?}: expected `all` or `procs<op><n>`"))?;
        let (cmp, num) = [
            ("<=", Cmp::Le),
            (">=", Cmp::Ge),
            ("==", Cmp::Eq),
            ("=", Cmp::Eq),
            ("<", Cmp::Lt),
            (">", Cmp::Gt),
        ]
        .iter()
        .find_map(|(op, c)| rest.strip_prefix(op).map(|n| (*c, n)))
        .ok_or_else(|| format!("job filter {s:?}: expected one of < <= == >= >"))?;
        let n = num
            .parse()
            .map_err(|_| format!("job filter {s:?}: {num:?} is not a number"))?;
        Ok(JobFilter::Procs(cmp, n))
    }
}

impl JobFilter {
    /// Whether a job of this width is selected.
    pub fn matches(self, width: u32) -> bool {
        match self {
            JobFilter::All => true,
            JobFilter::Procs(c, n) => match c {
                Cmp::Lt => width < n,
                Cmp::Le => width <= n,
                Cmp::Eq => width == n,
                Cmp::Ge => width >= n,
                Cmp::Gt => width > n,
            },
        }
    }
}

/// How to turn records into jobs.
#[derive(Debug, Clone, PartialEq)]
pub struct Conventions {
    /// Machine size P (widths are clamped to it).
    pub procs: u32,
    /// Which estimate.
    pub estimate: EstimateKind,
    /// Divide the run time of selected jobs by this at their width (1.0:
    /// none).
    pub speedup: crate::speedup::SpeedupCurve,
    /// Which jobs get the speedup.
    pub speedup_jobs: JobFilter,
}

impl Conventions {
    /// The reference conventions on a machine of `procs` processors.
    pub fn reference(procs: u32) -> Self {
        Conventions {
            procs,
            estimate: EstimateKind::Requested,
            speedup: crate::speedup::SpeedupCurve::constant(1.0),
            speedup_jobs: JobFilter::All,
        }
    }
}

/// Jobs ready to simulate, and what was done to the trace's lines.
#[derive(Debug, Clone, Default)]
pub struct Workload {
    /// Machine size.
    pub procs: u32,
    /// One job per line, in line order.
    pub jobs: Vec<SimJob>,
    /// Placeholders (and clamped widths) by reason.
    pub placeholders: BTreeMap<String, u64>,
}

/// Applies the conventions to one record. Returns the job and, if it was
/// altered, why.
pub fn convert(r: &SwfRecord, c: &Conventions) -> (SimJob, Option<&'static str>) {
    let reason = if r.submit < 0 {
        Some(NEG_SUBMIT)
    } else if r.run <= 0 {
        Some(NO_RUNTIME)
    } else if r.alloc_procs <= 0 {
        Some(NO_PROCS)
    } else {
        None
    };
    if let Some(why) = reason {
        // The reference's README says "1 processor", but its start files
        // keep field 5 (clamped) where it is valid (KTH-SP2 line index 2451:
        // run time 0, 5 processors, simulated with width 5).
        let width = if r.alloc_procs > 0 {
            r.alloc_procs.min(c.procs.max(1) as i64) as u32
        } else {
            1
        };
        let job = SimJob {
            index: r.index,
            submit: r.submit.max(1) as u64,
            width,
            actual: 1,
            estimate: 1,
            user: r.user,
            group: r.group,
        };
        return (job, Some(why));
    }
    let p = c.procs.max(1) as i64;
    let width = r.alloc_procs.clamp(1, p) as u32;
    let clamped = (r.alloc_procs > p).then_some(CLAMPED);
    let req = if r.req_time == -1 { r.run } else { r.req_time };
    let mut estimate = req.max(r.run).max(1) as u64;
    let mut actual = req.min(r.run).max(1) as u64;
    let speedup = c.speedup.at(width);
    if speedup != 1.0 && speedup > 0.0 && c.speedup_jobs.matches(width) {
        actual = ((actual as f64 / speedup).round() as u64).max(1);
    }
    if c.estimate == EstimateKind::Actual {
        estimate = actual;
    }
    let job = SimJob {
        index: r.index,
        submit: r.submit as u64,
        width,
        actual,
        estimate,
        user: r.user,
        group: r.group,
    };
    (job, clamped)
}

/// Applies the conventions to every record.
pub fn build(records: &[SwfRecord], c: &Conventions) -> Workload {
    let mut w = Workload {
        procs: c.procs,
        jobs: Vec::with_capacity(records.len()),
        placeholders: BTreeMap::new(),
    };
    for r in records {
        let (job, why) = convert(r, c);
        if let Some(why) = why {
            *w.placeholders.entry(why.to_string()).or_default() += 1;
        }
        w.jobs.push(job);
    }
    w
}
