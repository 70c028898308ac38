//! Test figures: a test that measures something (faults, fuzzing) reports
//! one line with [`figure`]; scripts/test.sh gathers them into its
//! `faults:` summary line. Shared by the daemon's and the CLI's tests
//! (`#[path]`).

/// Report a measured figure: printed, and appended to the file named by
/// `SHOAL_FIGURES` (set by scripts/test.sh).
pub fn figure(line: &str) {
    println!("figure: {line}");
    if let Ok(path) = std::env::var("SHOAL_FIGURES") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}
