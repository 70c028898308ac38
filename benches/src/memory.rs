//! `shoal bench memory`: the scheduler's resident memory per queued job. A
//! scheduler process of its own (no workers, so every job stays RUNNABLE)
//! takes array jobs of 10,000 children until each level of `--jobs` is
//! reached; its RSS (`/proc/PID/status`) is read at each level after the
//! state has settled, against its RSS before the first job.

use crate::throughput::{definition, submit};
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use shoal_client::Client;
use shoal_model as m;
use std::io::BufRead;
use std::process::{Command, Stdio};

/// `shoal bench memory` arguments.
#[derive(clap::Args)]
pub struct MemoryBench {
    /// Queued jobs at which to read the scheduler's memory (comma-separated,
    /// ascending).
    #[arg(long, value_delimiter = ',', default_value = "100000,1000000")]
    jobs: Vec<u64>,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
}

/// The children of one array job (AWS Batch's largest).
const ARRAY: u64 = 10_000;

#[derive(serde::Serialize)]
struct Level {
    jobs: u64,
    rss_mib: f64,
    bytes_per_job: f64,
    submit_seconds: f64,
}

/// Run it.
pub fn run(b: MemoryBench) -> Result<i32> {
    if b.jobs.is_empty() || b.jobs.windows(2).any(|w| w[0] >= w[1]) || b.jobs[0] == 0 {
        bail!("--jobs takes ascending counts above 0, e.g. 100000,1000000");
    }
    let dir = std::env::temp_dir().join(format!("shoal-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut child = Command::new(std::env::current_exe()?)
        .args(["scheduler", "--listen", "127.0.0.1:0", "--state"])
        .arg(dir.join("state"))
        .env_remove(shoal_client::CREDENTIALS_ENV)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting a scheduler")?;
    let result = (|| -> Result<Vec<Level>> {
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            std::io::BufReader::new(out).read_line(&mut line)?;
        }
        let endpoint = line
            .trim()
            .strip_prefix("endpoint: ")
            .context("the scheduler did not start")?
            .to_string();
        let client = Client::new(&endpoint)?;
        client.call(&definition(None))?;
        let base = rss_bytes(child.id())?;
        let total = *b.jobs.last().unwrap_or(&0);
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("queued {bar:40} {pos}/{len} {per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let (mut queued, mut levels, mut last) = (0u64, Vec::new(), None);
        let start = std::time::Instant::now();
        for &level in &b.jobs {
            while queued < level {
                let n = (level - queued).min(ARRAY);
                let mut req = submit(format!("q{queued}"));
                if n >= 2 {
                    req.array_properties = Some(m::ArrayProperties {
                        size: Some(n as i32),
                    });
                }
                last = Some(client.call(&req)?.job_id);
                queued += n;
                bar.set_position(queued);
            }
            let submit_seconds = start.elapsed().as_secs_f64();
            // A read once the state has settled: after a call that went
            // through the state thread behind every submission.
            if let Some(id) = &last {
                let j = client
                    .describe_one(id)?
                    .context("the last job is not known")?;
                if !matches!(j.status.as_str(), "RUNNABLE" | "PENDING") {
                    bail!("job {id} is {}, not queued", j.status);
                }
            }
            let rss = rss_bytes(child.id())?;
            levels.push(Level {
                jobs: level,
                rss_mib: rss as f64 / (1024.0 * 1024.0),
                bytes_per_job: rss.saturating_sub(base) as f64 / level as f64,
                submit_seconds,
            });
        }
        bar.finish_and_clear();
        Ok(levels)
    })();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let levels = result?;
    if b.json {
        println!("{}", serde_json::to_string_pretty(&levels)?);
    } else {
        println!("scheduler RSS with RUNNABLE jobs (array jobs of {ARRAY} children, no workers):");
        println!(
            "{:>10} {:>10} {:>12} {:>10}",
            "jobs", "RSS MiB", "bytes/job", "submit s"
        );
        for l in &levels {
            println!(
                "{:>10} {:>10.1} {:>12.0} {:>10.1}",
                l.jobs, l.rss_mib, l.bytes_per_job, l.submit_seconds
            );
        }
    }
    Ok(0)
}

/// The resident set of process `pid`, bytes.
fn rss_bytes(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_rss(&status).context("no VmRSS in /proc/PID/status")
}

fn parse_rss(status: &str) -> Option<u64> {
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_resident_set_is_read_from_proc_status() {
        let status = "Name:\tshoal\nVmPeak:\t  9000 kB\nVmRSS:\t    1234 kB\nThreads:\t4\n";
        assert_eq!(super::parse_rss(status), Some(1234 * 1024));
        assert_eq!(super::parse_rss("Name:\tx\n"), None);
    }
}
