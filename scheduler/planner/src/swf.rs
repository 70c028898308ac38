//! A streaming reader for the Standard Workload Format (SWF).
//!
//! One job per line, 18 whitespace-separated numeric fields, `-1` for
//! unknown; lines starting with `;` are header comments (`; Name: value`).
//! Plain and gzip-compressed files are both read (gzip is recognised by its
//! magic bytes, whatever the file name).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

/// Names of the 18 SWF fields, in order (used in error messages).
pub const FIELD_NAMES: [&str; 18] = [
    "job number",
    "submit time",
    "wait time",
    "run time",
    "allocated processors",
    "average CPU time used",
    "used memory",
    "requested processors",
    "requested time",
    "requested memory",
    "status",
    "user id",
    "group id",
    "executable number",
    "queue number",
    "partition number",
    "preceding job number",
    "think time",
];

/// An error reading an SWF file.
#[derive(Debug, thiserror::Error)]
pub enum SwfError {
    /// The file could not be opened or read.
    #[error("reading {what}: {source}")]
    Io {
        /// The file (or "input").
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A job line has a field that is not a number.
    #[error("line {line}: field {field} ({name}) is not a number: {text:?}")]
    BadField {
        /// 1-based line number in the file.
        line: u64,
        /// 1-based field number.
        field: usize,
        /// The field's name.
        name: &'static str,
        /// What was there.
        text: String,
    },
    /// A job line has too few or too many fields.
    #[error("line {line}: expected 18 fields, found {found} (missing from field {first_missing})")]
    FieldCount {
        /// 1-based line number.
        line: u64,
        /// Fields found.
        found: usize,
        /// Name of the first missing field, or "none" if there are too many.
        first_missing: &'static str,
    },
}

/// The header comments of an SWF file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SwfHeader {
    /// `MaxNodes` (the leading number of the value).
    pub max_nodes: Option<u64>,
    /// `MaxProcs` (the leading number of the value).
    pub max_procs: Option<u64>,
    /// `UnixStartTime`.
    pub unix_start_time: Option<i64>,
    /// Every `; Name: value` comment, in order.
    pub fields: Vec<(String, String)>,
}

impl SwfHeader {
    /// The machine size by the usual convention: `MaxProcs`, else `MaxNodes`.
    pub fn machine_procs(&self) -> Option<u64> {
        self.max_procs
            .filter(|&p| p > 0)
            .or(self.max_nodes.filter(|&n| n > 0))
    }

    /// The value of a header field (first occurrence, case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn absorb(&mut self, comment: &str) {
        let body = comment.trim_start_matches(';').trim();
        let Some((name, value)) = body.split_once(':') else {
            return;
        };
        let name = name.trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return;
        }
        let value = value.trim().to_string();
        let num = leading_number(&value);
        match name.to_ascii_lowercase().as_str() {
            "maxnodes" => self.max_nodes = self.max_nodes.or(num.map(|n| n.max(0) as u64)),
            "maxprocs" => self.max_procs = self.max_procs.or(num.map(|n| n.max(0) as u64)),
            "unixstarttime" => self.unix_start_time = self.unix_start_time.or(num),
            _ => {}
        }
        self.fields.push((name.to_string(), value));
    }
}

/// The leading integer of a header value: `338 (batch partition; 512 total)` → 338.
fn leading_number(s: &str) -> Option<i64> {
    let s = s.trim_start();
    let end = s
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && (c == '-' || c == '+'))))
        .map_or(s.len(), |(i, _)| i);
    s[..end].parse().ok()
}

/// One job line of an SWF file. Decimal fields are rounded to integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwfRecord {
    /// 1-based line number in the file.
    pub line: u64,
    /// 0-based index among job lines.
    pub index: u64,
    /// Field 1.
    pub job_number: i64,
    /// Field 2, seconds.
    pub submit: i64,
    /// Field 3, seconds.
    pub wait: i64,
    /// Field 4, seconds.
    pub run: i64,
    /// Field 5.
    pub alloc_procs: i64,
    /// Field 6, seconds per processor.
    pub avg_cpu: i64,
    /// Field 7, KB per processor.
    pub used_mem: i64,
    /// Field 8.
    pub req_procs: i64,
    /// Field 9, seconds.
    pub req_time: i64,
    /// Field 10, KB per processor.
    pub req_mem: i64,
    /// Field 11.
    pub status: i64,
    /// Field 12.
    pub user: i64,
    /// Field 13.
    pub group: i64,
    /// Field 14.
    pub executable: i64,
    /// Field 15.
    pub queue: i64,
    /// Field 16.
    pub partition: i64,
    /// Field 17.
    pub preceding: i64,
    /// Field 18, seconds.
    pub think: i64,
}

fn parse_field(text: &str, line: u64, i: usize) -> Result<i64, SwfError> {
    if let Ok(v) = text.parse::<i64>() {
        return Ok(v);
    }
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v.abs() < 9.0e18 => Ok(v.round() as i64),
        _ => Err(SwfError::BadField {
            line,
            field: i + 1,
            name: FIELD_NAMES[i],
            text: text.to_string(),
        }),
    }
}

/// Parses one job line (`line` is its 1-based number, for errors).
pub fn parse_line(text: &str, line: u64, index: u64) -> Result<SwfRecord, SwfError> {
    let mut f = [0i64; 18];
    let mut n = 0;
    for tok in text.split_whitespace() {
        if n < 18 {
            f[n] = parse_field(tok, line, n)?;
        }
        n += 1;
    }
    if n != 18 {
        return Err(SwfError::FieldCount {
            line,
            found: n,
            first_missing: FIELD_NAMES.get(n).copied().unwrap_or("none"),
        });
    }
    Ok(SwfRecord {
        line,
        index,
        job_number: f[0],
        submit: f[1],
        wait: f[2],
        run: f[3],
        alloc_procs: f[4],
        avg_cpu: f[5],
        used_mem: f[6],
        req_procs: f[7],
        req_time: f[8],
        req_mem: f[9],
        status: f[10],
        user: f[11],
        group: f[12],
        executable: f[13],
        queue: f[14],
        partition: f[15],
        preceding: f[16],
        think: f[17],
    })
}

/// A streaming SWF reader: the header is read on construction, job lines
/// are parsed one at a time by the iterator.
pub struct SwfReader<R: BufRead> {
    input: R,
    header: SwfHeader,
    line: u64,
    index: u64,
    pending: Option<(u64, String)>,
    buf: String,
    failed: bool,
}

impl<R: BufRead> std::fmt::Debug for SwfReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwfReader")
            .field("header", &self.header)
            .field("line", &self.line)
            .finish()
    }
}

/// Opens a plain or gzip-compressed SWF file.
pub fn open(path: &Path) -> Result<SwfReader<Box<dyn BufRead + Send>>, SwfError> {
    let io = |source| SwfError::Io {
        what: path.display().to_string(),
        source,
    };
    let mut file = BufReader::new(File::open(path).map_err(io)?);
    let magic = file.fill_buf().map_err(io)?;
    let gz = magic.len() >= 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    let input: Box<dyn BufRead + Send> = if gz {
        Box::new(BufReader::with_capacity(1 << 16, MultiGzDecoder::new(file)))
    } else {
        Box::new(file)
    };
    SwfReader::new(input)
}

impl<R: BufRead> SwfReader<R> {
    /// Reads the header comments (up to the first job line).
    pub fn new(input: R) -> Result<Self, SwfError> {
        let mut r = SwfReader {
            input,
            header: SwfHeader::default(),
            line: 0,
            index: 0,
            pending: None,
            buf: String::new(),
            failed: false,
        };
        while let Some(l) = r.next_raw()? {
            let t = l.trim();
            if t.is_empty() {
                continue;
            }
            if t.starts_with(';') {
                r.header.absorb(t);
                continue;
            }
            r.pending = Some((r.line, l));
            break;
        }
        Ok(r)
    }

    /// The header comments.
    pub fn header(&self) -> &SwfHeader {
        &self.header
    }

    fn next_raw(&mut self) -> Result<Option<String>, SwfError> {
        self.buf.clear();
        let n = self
            .input
            .read_line(&mut self.buf)
            .map_err(|source| SwfError::Io {
                what: format!("line {}", self.line + 1),
                source,
            })?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        Ok(Some(std::mem::take(&mut self.buf)))
    }

    fn next_record(&mut self) -> Result<Option<SwfRecord>, SwfError> {
        loop {
            let (line, text) = match self.pending.take() {
                Some(p) => p,
                None => match self.next_raw()? {
                    Some(t) => (self.line, t),
                    None => return Ok(None),
                },
            };
            let t = text.trim();
            if t.is_empty() {
                continue;
            }
            if t.starts_with(';') {
                self.header.absorb(t);
                continue;
            }
            let rec = parse_line(t, line, self.index)?;
            self.index += 1;
            return Ok(Some(rec));
        }
    }
}

impl<R: BufRead> Iterator for SwfReader<R> {
    type Item = Result<SwfRecord, SwfError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_record() {
            Ok(r) => r.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Reads a whole SWF file: header and records.
pub fn read_file(path: &Path) -> Result<(SwfHeader, Vec<SwfRecord>), SwfError> {
    let mut r = open(path)?;
    let mut recs = Vec::new();
    for rec in r.by_ref() {
        recs.push(rec?);
    }
    Ok((r.header, recs))
}

/// Reads SWF text from any reader (plain text).
pub fn read<R: Read>(input: R) -> Result<(SwfHeader, Vec<SwfRecord>), SwfError> {
    let mut r = SwfReader::new(BufReader::new(input))?;
    let mut recs = Vec::new();
    for rec in r.by_ref() {
        recs.push(rec?);
    }
    Ok((r.header, recs))
}
