//! Parser for the subset of the LAMMPS input language that `bench/in.lj`
//! uses. Anything else is an error naming the command and its line.

use std::collections::HashMap;
use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum InputError {
    #[error("line {line}: unknown or unsupported command `{command}`")]
    Unknown { line: usize, command: String },
    #[error("line {line}: `{command}`: {msg}")]
    Bad {
        line: usize,
        command: String,
        msg: String,
    },
    #[error("input: {0}")]
    Missing(String),
}

/// Everything a run needs, in LJ reduced units.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub rho: f64,
    /// Region in lattice units: xlo xhi ylo yhi zlo zhi.
    pub region: [f64; 6],
    pub ntypes: usize,
    /// Atom type given to every created atom (1-based).
    pub create_type: usize,
    /// Type of each of the 4 fcc basis atoms (1-based; `basis I T`).
    pub basis_types: [usize; 4],
    /// `atom_style charge`.
    pub charge_style: bool,
    /// Charge of each type (`set type T charge Q`).
    pub charges: Vec<f64>,
    /// `lj/cut/coul/dsf ALPHA CUT_LJ CUT_COUL`: (alpha, cut_coul).
    pub coul_dsf: Option<(f64, f64)>,
    /// Shoal's `lj/cut/coul/rf RC EPS_RF`: reaction-field Coulomb with the
    /// same cutoff as LJ; EPS_RF = 0 means a conducting (infinite) dielectric.
    pub coul_rf: Option<(f64, f64)>,
    pub mass: Vec<f64>,
    pub temp: f64,
    pub seed: i32,
    pub loop_geom: bool,
    pub cut_global: f64,
    /// Per type pair (row-major ntypes×ntypes, 0-based): epsilon, sigma, cutoff.
    pub coeff: Vec<Option<[f64; 3]>>,
    pub skin: f64,
    pub neigh_every: u64,
    pub neigh_delay: u64,
    pub neigh_check: bool,
    pub dt: f64,
    pub thermo: u64,
    pub run: u64,
}

#[derive(Debug, Clone)]
enum Var {
    Index(String),
    Equal(String),
}

struct Parser {
    vars: HashMap<String, Var>,
    line: usize,
    command: String,
}

impl Parser {
    /// `variable NAME index|equal …`.
    fn variable(&mut self, args: &[&str]) -> Result<(), InputError> {
        need(self, args, 3)?;
        let name = args[0].to_string();
        match args[1] {
            "index" => {
                self.vars
                    .entry(name)
                    .or_insert_with(|| Var::Index(args[2].to_string()));
            }
            "equal" => {
                self.vars.insert(name, Var::Equal(args[2..].join(" ")));
            }
            s => return Err(self.bad(format!("variable style `{s}` is not supported"))),
        }
        Ok(())
    }

    fn bad(&self, msg: impl Into<String>) -> InputError {
        InputError::Bad {
            line: self.line,
            command: self.command.clone(),
            msg: msg.into(),
        }
    }

    fn value(&self, name: &str, depth: usize) -> Result<String, InputError> {
        if depth > 32 {
            return Err(self.bad(format!("variable `{name}` is recursive")));
        }
        match self.vars.get(name) {
            None => Err(self.bad(format!("undefined variable `{name}`"))),
            Some(Var::Index(s)) => Ok(s.clone()),
            Some(Var::Equal(e)) => {
                let e = self.substitute(e, depth + 1)?;
                let v = Expr {
                    s: e.as_bytes(),
                    pos: 0,
                    p: self,
                    depth: depth + 1,
                }
                .parse()?;
                Ok(format_num(v))
            }
        }
    }

    /// Replace `${name}` and `$c` references.
    fn substitute(&self, text: &str, depth: usize) -> Result<String, InputError> {
        let mut out = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c != '$' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some((_, '{')) => {
                    let rest = &text[i + 2..];
                    let end = rest
                        .find('}')
                        .ok_or_else(|| self.bad("unterminated `${`"))?;
                    let name = &rest[..end];
                    out.push_str(&self.value(name, depth)?);
                    for _ in 0..=end {
                        chars.next();
                    }
                }
                Some((_, n)) => out.push_str(&self.value(&n.to_string(), depth)?),
                None => return Err(self.bad("`$` at end of line")),
            }
        }
        Ok(out)
    }
}

fn format_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Recursive-descent evaluator for `equal`-style variables: numbers,
/// `v_name`, + - * / ^, unary minus, parentheses, sqrt/exp/ln/abs.
struct Expr<'a> {
    s: &'a [u8],
    pos: usize,
    p: &'a Parser,
    depth: usize,
}

impl Expr<'_> {
    fn parse(mut self) -> Result<f64, InputError> {
        let v = self.sum()?;
        self.ws();
        if self.pos != self.s.len() {
            return Err(self.p.bad(format!(
                "cannot evaluate `{}`",
                String::from_utf8_lossy(self.s)
            )));
        }
        Ok(v)
    }
    fn ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.pos).copied()
    }
    fn sum(&mut self) -> Result<f64, InputError> {
        let mut v = self.product()?;
        while let Some(c @ (b'+' | b'-')) = self.peek() {
            self.pos += 1;
            let r = self.product()?;
            v = if c == b'+' { v + r } else { v - r };
        }
        Ok(v)
    }
    fn product(&mut self) -> Result<f64, InputError> {
        let mut v = self.unary()?;
        while let Some(c @ (b'*' | b'/')) = self.peek() {
            self.pos += 1;
            let r = self.unary()?;
            v = if c == b'*' { v * r } else { v / r };
        }
        Ok(v)
    }
    fn unary(&mut self) -> Result<f64, InputError> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
            return Ok(-self.unary()?);
        }
        let b = self.atom()?;
        if self.peek() == Some(b'^') {
            self.pos += 1;
            let e = self.unary()?;
            return Ok(b.powf(e));
        }
        Ok(b)
    }
    fn atom(&mut self) -> Result<f64, InputError> {
        let err = |p: &Parser, s: &[u8]| {
            p.bad(format!("cannot evaluate `{}`", String::from_utf8_lossy(s)))
        };
        match self.peek() {
            Some(b'(') => {
                self.pos += 1;
                let v = self.sum()?;
                if self.peek() != Some(b')') {
                    return Err(err(self.p, self.s));
                }
                self.pos += 1;
                Ok(v)
            }
            Some(c) if c.is_ascii_digit() || c == b'.' => {
                let start = self.pos;
                while self.pos < self.s.len() {
                    let c = self.s[self.pos];
                    let exp_sign = (c == b'+' || c == b'-')
                        && self.pos > start
                        && matches!(self.s[self.pos - 1], b'e' | b'E');
                    if c.is_ascii_digit() || c == b'.' || c == b'e' || c == b'E' || exp_sign {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                std::str::from_utf8(&self.s[start..self.pos])
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .ok_or_else(|| err(self.p, self.s))
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.pos;
                while self.pos < self.s.len()
                    && (self.s[self.pos].is_ascii_alphanumeric() || self.s[self.pos] == b'_')
                {
                    self.pos += 1;
                }
                let word = String::from_utf8_lossy(&self.s[start..self.pos]).into_owned();
                if let Some(name) = word.strip_prefix("v_") {
                    let v = self.p.value(name, self.depth + 1)?;
                    return v.trim().parse().map_err(|_| {
                        self.p
                            .bad(format!("variable `{name}` is not numeric: `{v}`"))
                    });
                }
                let f: fn(f64) -> f64 = match word.as_str() {
                    "sqrt" => f64::sqrt,
                    "exp" => f64::exp,
                    "ln" => f64::ln,
                    "abs" => f64::abs,
                    _ => return Err(err(self.p, self.s)),
                };
                if self.peek() != Some(b'(') {
                    return Err(err(self.p, self.s));
                }
                Ok(f(self.atom()?))
            }
            _ => Err(err(self.p, self.s)),
        }
    }
}

fn num<T: std::str::FromStr>(
    p: &Parser,
    w: &[&str],
    i: usize,
    what: &str,
) -> Result<T, InputError> {
    let s = w.get(i).ok_or_else(|| p.bad(format!("missing {what}")))?;
    s.parse()
        .map_err(|_| p.bad(format!("{what} `{s}` is not a valid number")))
}

/// Parse an input script. `cli_vars` are `-var NAME VALUE` pairs from the
/// command line; as in LAMMPS they take precedence over `index` variables.
pub fn parse(text: &str, cli_vars: &[(String, String)]) -> Result<Input, InputError> {
    let mut p = Parser {
        vars: HashMap::new(),
        line: 0,
        command: String::new(),
    };
    for (k, v) in cli_vars {
        p.vars.insert(k.clone(), Var::Index(v.clone()));
    }
    let mut draft = Draft::default();
    for (line, joined) in logical_lines(text) {
        p.line = line;
        p.command = joined.split_whitespace().next().unwrap_or("").to_string();
        if p.command.is_empty() {
            continue;
        }
        // `variable` lines are stored unsubstituted for `equal` (LAMMPS
        // substitutes `$x` immediately, which we do too, but `v_` later).
        let line = p.substitute(&joined, 0)?;
        let words: Vec<&str> = line.split_whitespace().collect();
        draft.command(&mut p, words[0], &words[1..])?;
    }
    draft.finish()
}

/// The input's commands, each with the number of the line it starts on:
/// comments (`#` to the end of the line) removed, a line ending in `&`
/// joined with the next.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending = String::new();
    let mut start_line = 0;
    for (n, raw) in text.lines().enumerate() {
        if pending.is_empty() {
            start_line = n + 1;
        }
        let body = match raw.find('#') {
            Some(i) => &raw[..i],
            None => raw,
        };
        let t = body.trim_end();
        if let Some(s) = t.strip_suffix('&') {
            pending.push_str(s);
            pending.push(' ');
            continue;
        }
        pending.push_str(t);
        out.push((start_line, std::mem::take(&mut pending)));
    }
    out
}

/// `args` has at least `k` words.
fn need(p: &Parser, args: &[&str], k: usize) -> Result<(), InputError> {
    if args.len() < k {
        Err(p.bad(format!("needs {k} arguments, got {}", args.len())))
    } else {
        Ok(())
    }
}

/// What the commands so far have set, in LJ reduced units;
/// [`Draft::finish`] checks that it is complete and makes the [`Input`].
struct Draft {
    rho: Option<f64>,
    region: Option<[f64; 6]>,
    ntypes: usize,
    /// `create_atoms`' type.
    created: Option<usize>,
    mass: Vec<Option<f64>>,
    /// `velocity`: temperature, seed, `loop geom`.
    velocity: Option<(f64, i32, bool)>,
    cut_global: Option<f64>,
    charge_style: bool,
    basis_types: [usize; 4],
    charges: Vec<f64>,
    coul_dsf: Option<(f64, f64)>,
    coul_rf: Option<(f64, f64)>,
    coeff: Vec<Option<[f64; 3]>>,
    skin: f64,
    every: u64,
    delay: u64,
    check: bool,
    fix_nve: bool,
    dt: f64,
    thermo: u64,
    run: Option<u64>,
}

impl Default for Draft {
    /// LAMMPS' defaults for `lj` units.
    fn default() -> Self {
        Draft {
            rho: None,
            region: None,
            ntypes: 0,
            created: None,
            mass: Vec::new(),
            velocity: None,
            cut_global: None,
            charge_style: false,
            basis_types: [0; 4],
            charges: Vec::new(),
            coul_dsf: None,
            coul_rf: None,
            coeff: Vec::new(),
            skin: 0.3,
            every: 1,
            delay: 0,
            check: true,
            fix_nve: false,
            dt: 0.005,
            thermo: 0,
            run: None,
        }
    }
}

impl Draft {
    /// One command, by its name.
    fn command(&mut self, p: &mut Parser, cmd: &str, args: &[&str]) -> Result<(), InputError> {
        match cmd {
            "variable" => p.variable(args),
            "units" => self.units(p, args),
            "atom_style" => self.atom_style(p, args),
            "dimension" => self.dimension(p, args),
            "boundary" => self.boundary(p, args),
            "newton" => self.newton(p, args),
            "lattice" => self.lattice(p, args),
            "region" => self.region(p, args),
            "create_box" => self.create_box(p, args),
            "create_atoms" => self.create_atoms(p, args),
            "mass" => self.mass(p, args),
            "velocity" => self.velocity(p, args),
            "set" => self.set(p, args),
            "pair_style" if args.first() == Some(&"lj/cut/coul/dsf") => {
                self.pair_style_dsf(p, args)
            }
            "pair_style" if args.first() == Some(&"lj/cut/coul/rf") => self.pair_style_rf(p, args),
            "pair_style" => self.pair_style_lj_cut(p, args),
            "pair_coeff" => self.pair_coeff(p, args),
            "neighbor" => self.neighbor(p, args),
            "neigh_modify" => self.neigh_modify(p, args),
            "fix" => self.fix(p, args),
            "timestep" => self.timestep(p, args),
            "thermo" => self.thermo(p, args),
            "run" => self.run(p, args),
            other => Err(InputError::Unknown {
                line: p.line,
                command: other.to_string(),
            }),
        }
    }

    /// `units`.
    fn units(&mut self, p: &Parser, args: &[&str]) -> Result<(), InputError> {
        need(p, args, 1)?;
        if args[0] != "lj" {
            return Err(p.bad("only `units lj` is supported"));
        }
        Ok(())
    }

    /// `atom_style`.
    fn atom_style(&mut self, p: &Parser, args: &[&str]) -> Result<(), InputError> {
        need(p, args, 1)?;
        self.charge_style = match args[0] {
            "atomic" => false,
            "charge" => true,
            _ => return Err(p.bad("only `atom_style atomic` or `charge` is supported")),
        };
        Ok(())
    }

    /// `dimension`.
    fn dimension(&mut self, p: &Parser, args: &[&str]) -> Result<(), InputError> {
        if args != ["3"] {
            return Err(p.bad("only `dimension 3` is supported"));
        }
        Ok(())
    }

    /// `boundary`.
    fn boundary(&mut self, p: &Parser, args: &[&str]) -> Result<(), InputError> {
        if args != ["p", "p", "p"] {
            return Err(p.bad("only `boundary p p p` is supported"));
        }
        Ok(())
    }

    /// `newton`.
    fn newton(&mut self, p: &Parser, args: &[&str]) -> Result<(), InputError> {
        if !args.iter().all(|a| *a == "on") {
            return Err(p.bad("only `newton on` is supported"));
        }
        Ok(())
    }

    /// `lattice`.
    fn lattice(&mut self, p: &Parser, args: &[&str]) -> Result<(), InputError> {
        need(p, args, 2)?;
        if args[0] != "fcc" || args.len() != 2 {
            return Err(p.bad("only `lattice fcc RHO` is supported"));
        }
        let r: f64 = num(p, args, 1, "density")?;
        if r.is_nan() || r <= 0.0 || r.is_infinite() {
            return Err(p.bad("density must be positive"));
        }
        self.rho = Some(r);
        Ok(())
    }

    /// `region`.
    fn region(&mut self, p: &Parser, args: &[&str]) -> Result<(), InputError> {
        need(p, args, 8)?;
        if args[1] != "block" || args.len() != 8 {
            return Err(p.bad("only `region ID block xlo xhi ylo yhi zlo zhi` is supported"));
        }
        let mut r = [0.0; 6];
        for (k, v) in r.iter_mut().enumerate() {
            *v = num(p, args, 2 + k, "bound")?;
        }
        if r[1] <= r[0] || r[3] <= r[2] || r[5] <= r[4] {
            return Err(p.bad("region bounds must have lo < hi"));
        }
        self.region = Some(r);
        Ok(())
    }

    /// `create_box`.
    fn create_box(&mut self, p: &Parser, args: &[&str]) -> Result<(), InputError> {
        need(p, args, 2)?;
        if self.region.is_none() {
            return Err(p.bad("no region defined"));
        }
        self.ntypes = num(p, args, 0, "number of types")?;
        if self.ntypes == 0 || self.ntypes > 64 {
            return Err(p.bad("number of types must be 1..64"));
        }
        self.mass = vec![None; self.ntypes];
        self.charges = vec![0.0; self.ntypes];
        self.coeff = vec![None; self.ntypes * self.ntypes];
        Ok(())
    }

    /// `create_atoms`.
    fn create_atoms(&mut self, p: &Parser, args: &[&str]) -> Result<(), InputError> {
        need(p, args, 2)?;
        if args[1] != "box" {
            return Err(p.bad("only `create_atoms TYPE box [basis I T]...` is supported"));
        }
        let t: usize = num(p, args, 0, "type")?;
        if t == 0 || t > self.ntypes {
            return Err(p.bad(format!("atom type {t} out of range (create_box first)")));
        }
        self.basis_types = [t; 4];
        let mut k = 2;
        while k < args.len() {
            if args[k] != "basis" {
                return Err(p.bad(format!("unsupported keyword `{}`", args[k])));
            }
            let b: usize = num(p, args, k + 1, "basis index")?;
            let bt: usize = num(p, args, k + 2, "basis type")?;
            if b == 0 || b > 4 || bt == 0 || bt > self.ntypes {
                return Err(p.bad(format!("basis {b} type {bt} out of range")));
            }
            self.basis_types[b - 1] = bt;
            k += 3;
        }
        if self.rho.is_none() {
            return Err(p.bad("no lattice defined"));
        }
        self.created = Some(t);
        Ok(())
    }

    /// `mass`.
    fn mass(&mut self, p: &Parser, args: &[&str]) -> Result<(), InputError> {
        need(p, args, 2)?;
        let m: f64 = num(p, args, 1, "mass")?;
        if m.is_nan() || m <= 0.0 {
            return Err(p.bad("mass must be positive"));
        }
        for t in type_range(p, args[0], self.ntypes)? {
            self.mass[t] = Some(m);
        }
        Ok(())
    }

    /// `velocity`.
    fn velocity(&mut self, p: &Parser, args: &[&str]) -> Result<(), InputError> {
        need(p, args, 4)?;
        if args[0] != "all" || args[1] != "create" {
            return Err(p.bad("only `velocity all create T SEED [loop geom]` is supported"));
        }
        let t: f64 = num(p, args, 2, "temperature")?;
        if t.is_nan() || t < 0.0 || t.is_infinite() {
            return Err(p.bad("temperature must be finite and non-negative"));
        }
        let s: i32 = num(p, args, 3, "seed")?;
        if s <= 0 {
            return Err(p.bad("seed must be positive"));
        }
        let mut geom = false;
        let mut k = 4;
        while k < args.len() {
            match (args[k], args.get(k + 1)) {
                ("loop", Some(&"geom")) => geom = true,
                ("loop", Some(&"all")) => geom = false,
                ("mom", Some(&"yes")) | ("rot", Some(&"no")) | ("dist", Some(&"uniform")) => {}
                _ => return Err(p.bad(format!("unsupported keyword `{}`", args[k]))),
            }
            k += 2;
        }
        if !geom {
            return Err(p.bad("only `loop geom` velocities are supported"));
        }
        self.velocity = Some((t, s, geom));
        Ok(())
    }

    /// `set`.
    fn set(&mut self, p: &Parser, args: &[&str]) -> Result<(), InputError> {
        need(p, args, 4)?;
        if args[0] != "type" || args[2] != "charge" || args.len() != 4 {
            return Err(p.bad("only `set type T charge Q` is supported"));
        }
        if !self.charge_style {
            return Err(p.bad("charges need `atom_style charge`"));
        }
        let q: f64 = num(p, args, 3, "charge")?;
        for t in type_range(p, args[1], self.ntypes)? {
            self.charges[t] = q;
        }
        Ok(())
    }

    /// `pair_style` (dsf).
    fn pair_style_dsf(&mut self, p: &Parser, args: &[&str]) -> Result<(), InputError> {
        need(p, args, 3)?;
        if args.len() > 4 {
            return Err(p.bad("usage: pair_style lj/cut/coul/dsf ALPHA CUT_LJ [CUT_COUL]"));
        }
        if !self.charge_style {
            return Err(p.bad("lj/cut/coul/dsf needs `atom_style charge`"));
        }
        let alpha: f64 = num(p, args, 1, "alpha")?;
        let rc: f64 = num(p, args, 2, "LJ cutoff")?;
        let rcc: f64 = if args.len() > 3 {
            num(p, args, 3, "Coulomb cutoff")?
        } else {
            rc
        };
        if rc.is_nan() || rc <= 0.0 || rcc.is_nan() || rcc <= 0.0 || alpha.is_nan() || alpha < 0.0 {
            return Err(p.bad("cutoffs must be positive and alpha non-negative"));
        }
        self.cut_global = Some(rc);
        self.coul_dsf = Some((alpha, rcc));
        Ok(())
    }

    /// `pair_style` (rf).
    fn pair_style_rf(&mut self, p: &Parser, args: &[&str]) -> Result<(), InputError> {
        need(p, args, 3)?;
        if args.len() != 3 {
            return Err(p.bad("usage: pair_style lj/cut/coul/rf RC EPS_RF"));
        }
        if !self.charge_style {
            return Err(p.bad("lj/cut/coul/rf needs `atom_style charge`"));
        }
        let rc: f64 = num(p, args, 1, "cutoff")?;
        let eps: f64 = num(p, args, 2, "epsilon_rf")?;
        if rc.is_nan() || rc <= 0.0 || eps.is_nan() || (eps != 0.0 && eps < 1.0) {
            return Err(p.bad("cutoff must be positive and EPS_RF 0 (infinite) or ≥ 1"));
        }
        self.cut_global = Some(rc);
        self.coul_rf = Some((rc, eps));
        Ok(())
    }

    /// `pair_style` (lj_cut).
    fn pair_style_lj_cut(&mut self, p: &Parser, args: &[&str]) -> Result<(), InputError> {
        need(p, args, 2)?;
        if args[0] != "lj/cut" || args.len() != 2 {
            return Err(p.bad(
                "only `pair_style lj/cut RC` or `lj/cut/coul/dsf ALPHA RC [RCC]` is supported",
            ));
        }
        let rc: f64 = num(p, args, 1, "cutoff")?;
        if rc.is_nan() || rc <= 0.0 {
            return Err(p.bad("cutoff must be positive"));
        }
        self.cut_global = Some(rc);
        Ok(())
    }

    /// `pair_coeff`.
    fn pair_coeff(&mut self, p: &Parser, args: &[&str]) -> Result<(), InputError> {
        need(p, args, 4)?;
        let rc = self
            .cut_global
            .ok_or_else(|| p.bad("pair_style must come first"))?;
        let eps: f64 = num(p, args, 2, "epsilon")?;
        let sig: f64 = num(p, args, 3, "sigma")?;
        let cut: f64 = if args.len() > 4 {
            num(p, args, 4, "cutoff")?
        } else {
            rc
        };
        if args.len() > 5 {
            return Err(p.bad("too many arguments"));
        }
        let ti = type_range(p, args[0], self.ntypes)?;
        let tj = type_range(p, args[1], self.ntypes)?;
        for i in ti.clone() {
            for j in tj.clone() {
                if j >= i {
                    self.coeff[i * self.ntypes + j] = Some([eps, sig, cut]);
                    self.coeff[j * self.ntypes + i] = Some([eps, sig, cut]);
                }
            }
        }
        Ok(())
    }

    /// `neighbor`.
    fn neighbor(&mut self, p: &Parser, args: &[&str]) -> Result<(), InputError> {
        need(p, args, 2)?;
        if args[1] != "bin" {
            return Err(p.bad("only `neighbor SKIN bin` is supported"));
        }
        self.skin = num(p, args, 0, "skin")?;
        if self.skin.is_nan() || self.skin < 0.0 {
            return Err(p.bad("skin must be non-negative"));
        }
        Ok(())
    }

    /// `neigh_modify`.
    fn neigh_modify(&mut self, p: &Parser, args: &[&str]) -> Result<(), InputError> {
        let mut k = 0;
        while k < args.len() {
            match args[k] {
                "every" => self.every = num(p, args, k + 1, "every")?,
                "delay" => self.delay = num(p, args, k + 1, "delay")?,
                "check" => {
                    self.check = match args.get(k + 1) {
                        Some(&"yes") => true,
                        Some(&"no") => false,
                        _ => return Err(p.bad("check must be yes or no")),
                    }
                }
                s => return Err(p.bad(format!("unsupported keyword `{s}`"))),
            }
            k += 2;
        }
        if self.every == 0 {
            return Err(p.bad("every must be positive"));
        }
        Ok(())
    }

    /// `fix`.
    fn fix(&mut self, p: &Parser, args: &[&str]) -> Result<(), InputError> {
        need(p, args, 3)?;
        if args[1] != "all" || args[2] != "nve" || args.len() != 3 {
            return Err(p.bad("only `fix ID all nve` is supported"));
        }
        self.fix_nve = true;
        Ok(())
    }

    /// `timestep`.
    fn timestep(&mut self, p: &Parser, args: &[&str]) -> Result<(), InputError> {
        need(p, args, 1)?;
        self.dt = num(p, args, 0, "timestep")?;
        if self.dt.is_nan() || self.dt <= 0.0 || self.dt.is_infinite() {
            return Err(p.bad("timestep must be positive"));
        }
        Ok(())
    }

    /// `thermo`.
    fn thermo(&mut self, p: &Parser, args: &[&str]) -> Result<(), InputError> {
        need(p, args, 1)?;
        self.thermo = num(p, args, 0, "thermo interval")?;
        Ok(())
    }

    /// `run`.
    fn run(&mut self, p: &Parser, args: &[&str]) -> Result<(), InputError> {
        need(p, args, 1)?;
        if self.run.is_some() {
            return Err(p.bad("only one `run` is supported"));
        }
        self.run = Some(num::<u64>(p, args, 0, "step count")?);
        Ok(())
    }

    /// The [`Input`], once every command it needs was given.
    fn finish(self) -> Result<Input, InputError> {
        let missing = |w: &str| InputError::Missing(format!("no `{w}` command"));
        let region = self.region.ok_or_else(|| missing("region"))?;
        let create_type = self.created.ok_or_else(|| missing("create_atoms"))?;
        let (temp, seed, loop_geom) = self.velocity.ok_or_else(|| missing("velocity"))?;
        let cut_global = self.cut_global.ok_or_else(|| missing("pair_style"))?;
        if !self.fix_nve {
            return Err(missing("fix nve"));
        }
        let mass = self
            .mass
            .iter()
            .enumerate()
            .map(|(t, m)| {
                m.ok_or_else(|| InputError::Missing(format!("no mass for type {}", t + 1)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if self.coeff.iter().any(|c| c.is_none()) {
            return Err(InputError::Missing(
                "pair_coeff missing for some type pair".into(),
            ));
        }
        Ok(Input {
            rho: self.rho.ok_or_else(|| missing("lattice"))?,
            region,
            ntypes: self.ntypes,
            create_type,
            basis_types: self.basis_types,
            charge_style: self.charge_style,
            charges: self.charges,
            coul_dsf: self.coul_dsf,
            coul_rf: self.coul_rf,
            mass,
            temp,
            seed,
            loop_geom,
            cut_global,
            coeff: self.coeff,
            skin: self.skin,
            neigh_every: self.every,
            neigh_delay: self.delay,
            neigh_check: self.check,
            dt: self.dt,
            thermo: self.thermo,
            run: self.run.ok_or_else(|| missing("run"))?,
        })
    }
}

fn type_range(p: &Parser, s: &str, n: usize) -> Result<std::ops::Range<usize>, InputError> {
    if n == 0 {
        return Err(p.bad("create_box must come first"));
    }
    if s == "*" {
        return Ok(0..n);
    }
    let t: usize = s
        .parse()
        .map_err(|_| p.bad(format!("bad atom type `{s}`")))?;
    if t == 0 || t > n {
        return Err(p.bad(format!("atom type {t} out of range 1..{n}")));
    }
    Ok(t - 1..t)
}

#[cfg(test)]
mod tests {
    use super::*;

    const IN_LJ: &str = include_str!("../inputs/in.lj");

    #[test]
    fn parses_in_lj() {
        let i = parse(IN_LJ, &[]).unwrap();
        assert_eq!(i.rho, 0.8442);
        assert_eq!(i.region, [0.0, 20.0, 0.0, 20.0, 0.0, 20.0]);
        assert_eq!(i.seed, 87287);
        assert_eq!(i.temp, 1.44);
        assert_eq!(i.cut_global, 2.5);
        assert_eq!(i.coeff, vec![Some([1.0, 1.0, 2.5])]);
        assert_eq!(
            (i.neigh_every, i.neigh_delay, i.neigh_check),
            (20, 0, false)
        );
        assert_eq!((i.dt, i.thermo, i.run), (0.005, 0, 100));
    }

    #[test]
    fn cli_vars_override_index() {
        let i = parse(IN_LJ, &[("x".into(), "2".into())]).unwrap();
        assert_eq!(i.region, [0.0, 40.0, 0.0, 20.0, 0.0, 20.0]);
    }

    #[test]
    fn equal_arithmetic() {
        let src = "variable a index 3\nvariable b equal (2+v_a)*2^2/4-1\nvariable c equal -${b}*1.5e0\nlattice fcc ${c}\n";
        let e = parse(src, &[]).unwrap_err();
        // lattice -6 is rejected, proving the arithmetic: (2+3)*4/4-1 = 4 → -6
        assert!(e.to_string().contains("density must be positive"), "{e}");
        let src = "variable a index 3\nvariable b equal (2+v_a)*2^2/4-1\nlattice fcc $b\n";
        let e = parse(src, &[]).unwrap_err();
        assert!(matches!(e, InputError::Missing(_)), "{e}");
    }

    #[test]
    fn unknown_command_names_line() {
        let e = parse("units lj\n\nfoo bar\n", &[]).unwrap_err();
        assert_eq!(
            e,
            InputError::Unknown {
                line: 3,
                command: "foo".into()
            }
        );
        assert!(e.to_string().contains("line 3") && e.to_string().contains("foo"));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        for src in [
            "lattice fcc abc",
            "region box block 0 1",
            "variable x equal 1+",
            "region box block 0 ${nope} 0 1 0 1",
            "mass 1 1.0",
            "create_box 1 box",
            "$",
            "variable a equal v_a\nlattice fcc ${a}",
            "units real",
        ] {
            assert!(parse(src, &[]).is_err(), "{src}");
        }
    }
}
