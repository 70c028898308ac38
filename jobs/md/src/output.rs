//! LAMMPS-style number formatting and a reader for LAMMPS' thermo output.

/// C's `%.{prec}g`.
pub fn fmt_g(v: f64, prec: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if !v.is_finite() {
        return format!("{v}");
    }
    let prec = prec.max(1);
    let e = format!("{:.*e}", prec - 1, v);
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= prec as i32 {
        let mant = trim_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        trim_zeros(&format!("{v:.decimals$}")).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Thermo rows (column name → value) of the first run in a LAMMPS log.
pub fn parse_lammps_thermo(log: &str) -> Vec<Vec<(String, f64)>> {
    let mut rows = Vec::new();
    let mut header: Option<Vec<String>> = None;
    for line in log.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.first() == Some(&"Step") {
            header = Some(w.iter().map(|s| s.to_string()).collect());
            continue;
        }
        if let Some(h) = &header {
            let vals: Option<Vec<f64>> = w.iter().map(|s| s.parse().ok()).collect();
            match vals {
                Some(v) if v.len() == h.len() && !v.is_empty() => {
                    rows.push(h.iter().cloned().zip(v).collect());
                }
                _ => {
                    if !rows.is_empty() {
                        break;
                    }
                }
            }
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g_format() {
        assert_eq!(fmt_g(1.44, 8), "1.44");
        assert_eq!(fmt_g(-6.773368121, 8), "-6.7733681");
        assert_eq!(fmt_g(0.20726105362, 8), "0.20726105");
        assert_eq!(fmt_g(1.5e-7, 8), "1.5e-07");
        assert_eq!(fmt_g(123456789.0, 8), "1.2345679e+08");
        assert_eq!(fmt_g(0.0, 8), "0");
        assert_eq!(fmt_g(100.0, 8), "100");
    }

    #[test]
    fn reads_lammps_thermo() {
        let log = "Per MPI rank memory\nStep Temp E_pair E_mol TotEng Press \n       0         1.44   -6.7733681            0   -4.6134356   -5.0197073 \n     100    0.7574531   -5.7585055            0   -4.6223613   0.20726105 \nLoop time of 1.8 on 1 procs\n";
        let r = parse_lammps_thermo(log);
        assert_eq!(r.len(), 2);
        assert_eq!(r[1][0], ("Step".to_string(), 100.0));
        assert_eq!(r[1][5], ("Press".to_string(), 0.20726105));
    }
}
