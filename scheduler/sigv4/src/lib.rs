//! AWS Signature Version 4 (`AWS4-HMAC-SHA256`), both sides: the scheduler
//! verifies requests with [`KeyStore::verify`], and the client
//! (`shoal-client`, used by the CLI and the benchmarks) signs them with
//! [`sign`]. The one HMAC-SHA256 of Shoal ([`hmac_sha256`], on `ring`) lives
//! here too: the scheduler's job tokens and log grants use it, and the
//! workers check them with it. Both build the canonical request with the same code,
//! the way AWS does for non-S3 services:
//!
//! ```text
//! METHOD \n CANONICAL-URI \n CANONICAL-QUERY \n CANONICAL-HEADERS \n
//! SIGNED-HEADERS \n hex(sha256(body))
//! ```
//!
//! * the URI path as sent, with dot segments and empty segments removed,
//!   URI-encoded once more (every byte but `A-Z a-z 0-9 - _ . ~ /`);
//! * the query parameters decoded, re-encoded strictly and sorted by name,
//!   then value;
//! * each signed header as `name:value\n`, the name lowercased, the value
//!   trimmed with runs of whitespace collapsed, repeated headers joined by
//!   `,`.
//!
//! The string to sign is `AWS4-HMAC-SHA256 \n X-Amz-Date \n SCOPE \n
//! hex(sha256(canonical request))` with the credential scope as the client
//! gave it (`DATE/REGION/SERVICE/aws4_request`: any region and service are
//! accepted; boto3 signs Batch calls as service `batch`). The key is the HMAC
//! chain `"AWS4" + secret → date → region → service → "aws4_request"`.

use ring::{digest, hmac};
use std::collections::HashMap;
use std::path::Path;

/// The only algorithm there is.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// A request's `X-Amz-Date` may differ from the scheduler's clock by at
/// most this much (AWS's own limit).
pub const MAX_SKEW_SECS: i64 = 15 * 60;

/// hex(sha256("")).
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// One access key: what a client signs with.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The access key id (`AKIA…`), sent in the clear.
    pub access_key_id: String,
    /// The secret access key, never sent.
    pub secret_access_key: String,
    /// A session token, sent as `x-amz-security-token` (and signed).
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// A credentials file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The file cannot be read.
    #[error("cannot read the credentials file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line is not `ACCESS_KEY_ID SECRET`.
    #[error("credentials file {path}, line {line}: {message}")]
    Line {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// No keys at all.
    #[error("credentials file {path} holds no keys; add lines `ACCESS_KEY_ID SECRET`")]
    Empty {
        /// The file.
        path: String,
    },
}

/// The access keys a scheduler accepts, in file order.
#[derive(Clone, Default)]
pub struct KeyStore {
    keys: Vec<(String, String)>,
    by_id: HashMap<String, usize>,
    /// Where the keys came from (for messages): a file name or "the
    /// environment".
    pub source: String,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("KeyStore")
            .field("access_key_ids", &ids)
            .field("source", &self.source)
            .finish()
    }
}

fn valid_key_id(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b',')
}

impl KeyStore {
    /// Parse a credentials file's text: one `ACCESS_KEY_ID SECRET` per line
    /// (separated by spaces or tabs); blank lines and lines starting with
    /// `#` are ignored. `path` names the file in errors.
    pub fn parse(text: &str, path: &str) -> Result<KeyStore, CredentialsError> {
        let mut store = KeyStore {
            source: path.to_string(),
            ..KeyStore::default()
        };
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |message: String| CredentialsError::Line {
                path: path.to_string(),
                line: i + 1,
                message,
            };
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [id, secret] = fields[..] else {
                return Err(err(format!(
                    "expected `ACCESS_KEY_ID SECRET` (two fields), found {} field{}",
                    fields.len(),
                    if fields.len() == 1 { "" } else { "s" }
                )));
            };
            if !valid_key_id(id) {
                return Err(err(
                    "the access key id must be printable ASCII without `/` or `,`".into(),
                ));
            }
            if !secret.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(err("the secret must be printable ASCII".into()));
            }
            store
                .insert(id, secret)
                .map_err(|()| err(format!("access key id {id} appears twice")))?;
        }
        if store.keys.is_empty() {
            return Err(CredentialsError::Empty {
                path: path.to_string(),
            });
        }
        Ok(store)
    }

    /// Read and parse a credentials file (see [`KeyStore::parse`]).
    pub fn from_file(path: &Path) -> Result<KeyStore, CredentialsError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| CredentialsError::Read {
            path: name.clone(),
            source,
        })?;
        KeyStore::parse(&text, &name)
    }

    /// One key (e.g. from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`).
    pub fn single(access_key_id: &str, secret: &str, source: &str) -> KeyStore {
        let mut s = KeyStore {
            source: source.to_string(),
            ..KeyStore::default()
        };
        let _ = s.insert(access_key_id, secret);
        s
    }

    fn insert(&mut self, id: &str, secret: &str) -> Result<(), ()> {
        if self.by_id.contains_key(id) {
            return Err(());
        }
        self.by_id.insert(id.to_string(), self.keys.len());
        self.keys.push((id.to_string(), secret.to_string()));
        Ok(())
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// No keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The first key (a client signs with it).
    pub fn first(&self) -> Option<Credentials> {
        self.keys.first().map(|(id, secret)| Credentials {
            access_key_id: id.clone(),
            secret_access_key: secret.clone(),
            session_token: None,
        })
    }

    fn secret(&self, id: &str) -> Option<&str> {
        self.by_id.get(id).map(|&i| self.keys[i].1.as_str())
    }

    /// Verify `req`'s signature at time `now` (Unix seconds); the access
    /// key id that signed it.
    pub fn verify(&self, req: &HttpRequest<'_>, now: i64) -> Result<String, AuthError> {
        let Some(auth) = req.header("authorization") else {
            return Err(AuthError::Unrecognized(
                "the request is not signed (it has no Authorization header)".into(),
            ));
        };
        let auth = String::from_utf8_lossy(&auth);
        let auth = auth.trim();
        let Some(rest) = auth.strip_prefix(ALGORITHM) else {
            let scheme = auth.split_whitespace().next().unwrap_or("");
            return Err(AuthError::Unrecognized(format!(
                "the Authorization header uses {scheme:?}, not AWS Signature Version 4 ({ALGORITHM})"
            )));
        };
        let parsed = parse_authorization(rest)?;
        let Some(secret) = self.secret(&parsed.access_key_id) else {
            return Err(AuthError::Unrecognized(format!(
                "access key id {:?} is not one of this scheduler's keys",
                parsed.access_key_id
            )));
        };
        let Some(date) = req.header("x-amz-date") else {
            return Err(AuthError::InvalidSignature(
                "the request has no X-Amz-Date header".into(),
            ));
        };
        let date = String::from_utf8_lossy(&date).trim().to_string();
        let Some(when) = parse_amz_date(&date) else {
            return Err(AuthError::InvalidSignature(format!(
                "X-Amz-Date {date:?} is not of the form YYYYMMDDTHHMMSSZ"
            )));
        };
        if !date.starts_with(&parsed.scope_date) {
            return Err(AuthError::InvalidSignature(format!(
                "the credential scope's date {} is not X-Amz-Date's day ({date})",
                parsed.scope_date
            )));
        }
        if !parsed.signed_headers.iter().any(|h| h == "host") {
            return Err(AuthError::InvalidSignature(
                "SignedHeaders must include host".into(),
            ));
        }
        let body_hash = sha256_hex(req.body);
        if let Some(claimed) = req.header("x-amz-content-sha256") {
            if claimed.trim_ascii() != body_hash.as_bytes() {
                return Err(AuthError::InvalidSignature(
                    "X-Amz-Content-Sha256 is not the SHA-256 of the body (an unsigned payload is not accepted)"
                        .into(),
                ));
            }
        }
        let mut lines = String::new();
        for name in &parsed.signed_headers {
            match req.header(name) {
                Some(v) => {
                    lines.push_str(name);
                    lines.push(':');
                    lines.push_str(&String::from_utf8_lossy(&v));
                    lines.push('\n');
                }
                None => {
                    return Err(AuthError::InvalidSignature(format!(
                        "signed header {name:?} is not in the request"
                    )))
                }
            }
        }
        let creq = format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            req.method,
            canonical_uri(req.path),
            canonical_query(req.query),
            lines,
            parsed.signed_headers.join(";"),
            body_hash
        );
        let scope = format!(
            "{}/{}/{}/aws4_request",
            parsed.scope_date, parsed.region, parsed.service
        );
        let sts = string_to_sign(&date, &scope, &creq);
        let key = signing_key(secret, &parsed.scope_date, &parsed.region, &parsed.service);
        let Ok(provided) = hex::decode(&parsed.signature) else {
            return Err(AuthError::InvalidSignature(
                "Signature is not hexadecimal".into(),
            ));
        };
        // Constant time (ring's verify).
        let key = hmac::Key::new(hmac::HMAC_SHA256, &key);
        if hmac::verify(&key, sts.as_bytes(), &provided).is_err() {
            return Err(AuthError::InvalidSignature(
                "The request signature we calculated does not match the signature you provided. \
                 Check your secret access key and signing method"
                    .into(),
            ));
        }
        if (now - when).abs() > MAX_SKEW_SECS {
            let (verb, bound) = if when < now {
                ("expired", "earlier")
            } else {
                ("not yet current", "later")
            };
            return Err(AuthError::InvalidSignature(format!(
                "Signature {verb}: {date} is {bound} than 15 minutes from the scheduler's clock ({}); \
                 check the client's clock",
                amz_date(now)
            )));
        }
        Ok(parsed.access_key_id)
    }
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Unsigned, or signed with a key the scheduler does not know:
    /// `UnrecognizedClientException`.
    #[error("{0}")]
    Unrecognized(String),
    /// A known key, but the signature is wrong, malformed or expired:
    /// `InvalidSignatureException`.
    #[error("{0}")]
    InvalidSignature(String),
}

/// What verification looks at in an HTTP request.
pub struct HttpRequest<'a> {
    /// `POST`, …
    pub method: &'a str,
    /// The path as sent (still percent-encoded).
    pub path: &'a str,
    /// The query string as sent, without `?` (empty if none).
    pub query: &'a str,
    /// Every header, names lowercased, in the order received.
    pub headers: &'a [(&'a str, &'a [u8])],
    /// The body.
    pub body: &'a [u8],
}

impl HttpRequest<'_> {
    /// The canonical value of header `name` (lowercase): every occurrence
    /// trimmed, runs of whitespace collapsed, joined by `,`.
    fn header(&self, name: &str) -> Option<Vec<u8>> {
        let mut out: Option<Vec<u8>> = None;
        for (n, v) in self.headers {
            if *n != name {
                continue;
            }
            let o = out.get_or_insert_with(Vec::new);
            if !o.is_empty() {
                o.push(b',');
            }
            o.extend(canonical_header_value(v));
        }
        out
    }
}

fn canonical_header_value(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut space = false;
    for &b in v.trim_ascii() {
        if b == b' ' || b == b'\t' {
            space = true;
        } else {
            if space {
                out.push(b' ');
                space = false;
            }
            out.push(b);
        }
    }
    out
}

struct ParsedAuth {
    access_key_id: String,
    scope_date: String,
    region: String,
    service: String,
    signed_headers: Vec<String>,
    signature: String,
}

/// `Credential=ID/DATE/REGION/SERVICE/aws4_request, SignedHeaders=a;b,
/// Signature=HEX` (what follows the algorithm name).
fn parse_authorization(rest: &str) -> Result<ParsedAuth, AuthError> {
    let bad =
        |m: String| AuthError::InvalidSignature(format!("malformed Authorization header: {m}"));
    if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
        return Err(bad(format!("expected a space after {ALGORITHM}")));
    }
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((k, v)) = part.split_once('=') else {
            return Err(bad(format!("{part:?} is not NAME=VALUE")));
        };
        let slot = match k.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed,
            "Signature" => &mut signature,
            other => return Err(bad(format!("unknown component {other:?}"))),
        };
        if slot.replace(v.trim()).is_some() {
            return Err(bad(format!("{k} appears twice")));
        }
    }
    let (Some(credential), Some(signed), Some(signature)) = (credential, signed, signature) else {
        return Err(bad(
            "it needs Credential=…, SignedHeaders=… and Signature=…".into(),
        ));
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [id, date, region, service, "aws4_request"] = scope[..] else {
        return Err(bad(format!(
            "Credential {credential:?} is not ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request"
        )));
    };
    if id.is_empty()
        || date.len() != 8
        || !date.bytes().all(|b| b.is_ascii_digit())
        || region.is_empty()
        || service.is_empty()
    {
        return Err(bad(format!(
            "Credential {credential:?} is not ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request"
        )));
    }
    let signed_headers: Vec<String> = signed.split(';').map(str::to_string).collect();
    if signed_headers.iter().any(|h| {
        h.is_empty()
            || h.bytes()
                .any(|b| !b.is_ascii_graphic() || b.is_ascii_uppercase())
    }) {
        return Err(bad(format!(
            "SignedHeaders {signed:?} is not a `;`-separated list of lowercase header names"
        )));
    }
    if signature.len() != 64 {
        return Err(bad("Signature must be 64 hexadecimal digits".into()));
    }
    Ok(ParsedAuth {
        access_key_id: id.to_string(),
        scope_date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        signed_headers,
        signature: signature.to_string(),
    })
}

/// AWS's `UriEncode`: every byte but `A-Z a-z 0-9 - _ . ~` (and `/` when
/// `keep_slash`) as `%XX`, upper-case hex.
pub fn uri_encode(s: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> Vec<u8> {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// The canonical URI of a path as sent: dot segments and empty segments
/// removed (as botocore does), then URI-encoded once, `/` kept.
pub fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    let mut segs: Vec<&str> = Vec::new();
    for s in path.split('/') {
        match s {
            "" | "." => {}
            ".." => {
                segs.pop();
            }
            s => segs.push(s),
        }
    }
    let mut p = String::new();
    if path.starts_with('/') {
        p.push('/');
    }
    p.push_str(&segs.join("/"));
    if path.ends_with('/') && !segs.is_empty() {
        p.push('/');
    }
    uri_encode(p.as_bytes(), true)
}

/// The canonical query string: parameters decoded, re-encoded strictly,
/// sorted by name then value, `name=value` joined by `&`.
pub fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k), false),
                uri_encode(&percent_decode(v), false),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The string to sign for a canonical request.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// HMAC-SHA256 of `data` under `key`: the one HMAC of the scheduler, its
/// workers and its clients (SigV4's key chain and signature, the job tokens,
/// the log grants).
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// [`hmac_sha256`] in lowercase hexadecimal.
pub fn hmac_sha256_hex(key: &[u8], data: &[u8]) -> String {
    hex::encode(hmac_sha256(key, data))
}

/// SHA-256 of `data` in lowercase hexadecimal.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, data).as_ref())
}

/// The signing key: `"AWS4" + secret → date → region → service →
/// "aws4_request"`.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k = hmac_sha256(&k, region.as_bytes());
    let k = hmac_sha256(&k, service.as_bytes());
    hmac_sha256(&k, b"aws4_request")
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYYMMDDTHHMMSSZ` → Unix seconds.
pub fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = &s[r];
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, se) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se)
}

/// Unix seconds → `YYYYMMDDTHHMMSSZ`.
pub fn amz_date(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // civil_from_days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Seconds since the Unix epoch, now.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Where and when a client signs.
pub struct SigningParams<'a> {
    /// The key.
    pub credentials: &'a Credentials,
    /// The credential scope's region (e.g. `us-east-1`).
    pub region: &'a str,
    /// The credential scope's service (`batch`).
    pub service: &'a str,
    /// The signing time, Unix seconds.
    pub time: i64,
}

/// Sign a request: `headers` are the headers it will carry (they must
/// include `host`; names in any case), all of which are signed. Returns
/// the headers to add: `x-amz-date`, `x-amz-content-sha256`,
/// `x-amz-security-token` (with a session token) and `authorization`.
pub fn sign(
    p: &SigningParams<'_>,
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<(String, String)> {
    let date = amz_date(p.time);
    let body_hash = sha256_hex(body);
    let mut added = vec![
        ("x-amz-date".to_string(), date.clone()),
        ("x-amz-content-sha256".to_string(), body_hash.clone()),
    ];
    if let Some(t) = &p.credentials.session_token {
        added.push(("x-amz-security-token".to_string(), t.clone()));
    }
    let mut all: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.as_bytes().to_vec()))
        .chain(
            added
                .iter()
                .map(|(n, v)| (n.clone(), v.as_bytes().to_vec())),
        )
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let view: Vec<(&str, &[u8])> = all
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    let req = HttpRequest {
        method,
        path,
        query,
        headers: &view,
        body,
    };
    let mut names: Vec<&str> = view.iter().map(|(n, _)| *n).collect();
    names.dedup();
    let mut lines = String::new();
    for n in &names {
        let v = req.header(n).unwrap_or_default();
        lines.push_str(&format!("{n}:{}\n", String::from_utf8_lossy(&v)));
    }
    let signed = names.join(";");
    let creq = format!(
        "{method}\n{}\n{}\n{lines}\n{signed}\n{body_hash}",
        canonical_uri(path),
        canonical_query(query)
    );
    let day = &date[..8];
    let scope = format!("{day}/{}/{}/aws4_request", p.region, p.service);
    let key = signing_key(&p.credentials.secret_access_key, day, p.region, p.service);
    let sig = hex::encode(hmac_sha256(
        &key,
        string_to_sign(&date, &scope, &creq).as_bytes(),
    ));
    added.push((
        "authorization".to_string(),
        format!(
            "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed}, Signature={sig}",
            p.credentials.access_key_id
        ),
    ));
    added
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    /// AWS's documented example (IAM ListUsers, "Create a signed AWS API
    /// request" in the IAM user guide): every intermediate value.
    #[test]
    fn the_documented_iam_example_gives_the_documented_signature() {
        let creq = format!(
            "GET\n{}\n{}\ncontent-type:application/x-www-form-urlencoded; charset=utf-8\nhost:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n{EMPTY_SHA256}",
            canonical_uri("/"),
            canonical_query("Version=2010-05-08&Action=ListUsers")
        );
        assert_eq!(
            sha256_hex(creq.as_bytes()),
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );
        let sts = string_to_sign(
            "20150830T123600Z",
            "20150830/us-east-1/iam/aws4_request",
            &creq,
        );
        assert_eq!(
            sts,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\nf536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );
        let key = signing_key(SECRET, "20150830", "us-east-1", "iam");
        assert_eq!(
            hex::encode(key),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
        assert_eq!(
            hex::encode(hmac_sha256(&key, sts.as_bytes())),
            "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
    }

    fn iam_request_headers(auth: &str) -> Vec<(&'static str, Vec<u8>)> {
        vec![
            (
                "content-type",
                b"application/x-www-form-urlencoded;   charset=utf-8  ".to_vec(),
            ),
            ("host", b"iam.amazonaws.com".to_vec()),
            ("x-amz-date", b"20150830T123600Z".to_vec()),
            ("authorization", auth.as_bytes().to_vec()),
        ]
    }

    fn verify_with(
        keys: &KeyStore,
        auth: &str,
        query: &str,
        now: i64,
    ) -> Result<String, AuthError> {
        let h = iam_request_headers(auth);
        let view: Vec<(&str, &[u8])> = h.iter().map(|(n, v)| (*n, v.as_slice())).collect();
        keys.verify(
            &HttpRequest {
                method: "GET",
                path: "/",
                query,
                headers: &view,
                body: b"",
            },
            now,
        )
    }

    const IAM_AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";

    #[test]
    fn the_verifier_accepts_the_documented_request_and_nothing_changed() {
        let keys = KeyStore::single("AKIDEXAMPLE", SECRET, "test");
        let t = parse_amz_date("20150830T123600Z").unwrap();
        // Whitespace in header values is collapsed before signing.
        assert_eq!(
            verify_with(
                &keys,
                IAM_AUTH,
                "Action=ListUsers&Version=2010-05-08",
                t + 60
            ),
            Ok("AKIDEXAMPLE".into())
        );
        // A changed query, a wrong secret, an unknown key, an old date.
        assert!(matches!(
            verify_with(&keys, IAM_AUTH, "Action=ListUsers&Version=2010-05-09", t),
            Err(AuthError::InvalidSignature(_))
        ));
        let wrong = KeyStore::single("AKIDEXAMPLE", "not-the-secret", "test");
        assert!(matches!(
            verify_with(&wrong, IAM_AUTH, "Action=ListUsers&Version=2010-05-08", t),
            Err(AuthError::InvalidSignature(_))
        ));
        let other = KeyStore::single("AKIDOTHER", SECRET, "test");
        assert!(matches!(
            verify_with(&other, IAM_AUTH, "Action=ListUsers&Version=2010-05-08", t),
            Err(AuthError::Unrecognized(_))
        ));
        let e = verify_with(
            &keys,
            IAM_AUTH,
            "Action=ListUsers&Version=2010-05-08",
            t + 16 * 60,
        );
        assert!(
            matches!(&e, Err(AuthError::InvalidSignature(m)) if m.contains("expired")),
            "{e:?}"
        );
        let e = verify_with(
            &keys,
            IAM_AUTH,
            "Action=ListUsers&Version=2010-05-08",
            t - 16 * 60,
        );
        assert!(
            matches!(&e, Err(AuthError::InvalidSignature(m)) if m.contains("not yet current")),
            "{e:?}"
        );
    }

    #[test]
    fn malformed_authorization_headers_are_refused_with_a_reason() {
        let keys = KeyStore::single("AKIDEXAMPLE", SECRET, "test");
        let t = parse_amz_date("20150830T123600Z").unwrap();
        let q = "Action=ListUsers&Version=2010-05-08";
        for (auth, want) in [
            ("", "AWS Signature Version 4"),
            ("Basic dXNlcjpwYXNz", "\"Basic\""),
            ("AWS4-HMAC-SHA256", "Credential"),
            ("AWS4-HMAC-SHA256Credential=x", "space"),
            ("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam, SignedHeaders=host, Signature=00", "Credential"),
            ("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=zz", "64"),
            ("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=", "64"),
            ("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5zz", "hexadecimal"),
            ("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7", "host"),
            ("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=host;x-missing, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7", "x-missing"),
            ("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150831/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7", "scope"),
            ("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, Credential=x, SignedHeaders=host, Signature=00", "twice"),
            ("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, Foo=1", "Foo"),
            ("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=Host, Signature=00", "lowercase"),
            ("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders, Signature=00", "NAME=VALUE"),
            ("AWS4-HMAC-SHA256 Credential=é/\u{0}/✓/,/, SignedHeaders=;;, Signature=", "malformed"),
        ] {
            let e = verify_with(&keys, auth, q, t).expect_err(auth);
            assert!(e.to_string().contains(want), "{auth:?}: {e}");
        }
        // No Authorization header at all.
        let view: Vec<(&str, &[u8])> = vec![("host", b"h")];
        let e = keys
            .verify(
                &HttpRequest {
                    method: "POST",
                    path: "/v1/x",
                    query: "",
                    headers: &view,
                    body: b"",
                },
                t,
            )
            .unwrap_err();
        assert!(matches!(e, AuthError::Unrecognized(m) if m.contains("not signed")));
    }

    #[test]
    fn sign_then_verify_round_trips_and_covers_the_body() {
        let creds = Credentials {
            access_key_id: "AKIDSHOAL".into(),
            secret_access_key: "s3cr3t".into(),
            session_token: Some("tok en".into()),
        };
        let keys = KeyStore::single("AKIDSHOAL", "s3cr3t", "test");
        let t = 1_800_000_000;
        let p = SigningParams {
            credentials: &creds,
            region: "eu-west-3",
            service: "batch",
            time: t,
        };
        let body = br#"{"jobName":"x"}"#;
        let base = [
            ("Host", "127.0.0.1:8080"),
            ("Content-Type", "application/json"),
        ];
        let added = sign(&p, "POST", "/v1/submitjob", "", &base, body);
        assert!(added
            .iter()
            .any(|(n, v)| n == "x-amz-security-token" && v == "tok en"));
        let mut all: Vec<(String, Vec<u8>)> = base
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.as_bytes().to_vec()))
            .chain(
                added
                    .iter()
                    .map(|(n, v)| (n.clone(), v.as_bytes().to_vec())),
            )
            .collect();
        let check = |all: &[(String, Vec<u8>)], path: &str, body: &[u8]| {
            let view: Vec<(&str, &[u8])> = all
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_slice()))
                .collect();
            keys.verify(
                &HttpRequest {
                    method: "POST",
                    path,
                    query: "",
                    headers: &view,
                    body,
                },
                t + 5,
            )
        };
        assert_eq!(check(&all, "/v1/submitjob", body), Ok("AKIDSHOAL".into()));
        // Another path, another body: refused.
        assert!(check(&all, "/v1/canceljob", body).is_err());
        let e = check(&all, "/v1/submitjob", br#"{"jobName":"y"}"#).unwrap_err();
        assert!(e.to_string().contains("X-Amz-Content-Sha256"), "{e}");
        // Without the content hash header the signature still covers the body.
        all.retain(|(n, _)| n != "x-amz-content-sha256");
        let e = check(&all, "/v1/submitjob", body).unwrap_err();
        assert!(e.to_string().contains("x-amz-content-sha256"), "{e}");
    }

    #[test]
    fn canonical_forms_follow_the_spec() {
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/v1/submitjob"), "/v1/submitjob");
        assert_eq!(canonical_uri("/a/./b/../c//d/"), "/a/c/d/");
        assert_eq!(canonical_uri("/a%20b"), "/a%2520b");
        assert_eq!(canonical_uri("/ü"), "/%C3%BC");
        assert_eq!(canonical_query(""), "");
        assert_eq!(canonical_query("b=2&a=1&a=0&c"), "a=0&a=1&b=2&c=");
        assert_eq!(canonical_query("k=a%20b&k2=%2f~"), "k=a%20b&k2=%2F~");
        assert_eq!(canonical_query("bad=%zz%"), "bad=%25zz%25");
        assert_eq!(canonical_header_value(b"  a   b \t c  "), b"a b c");
    }

    #[test]
    fn amz_dates_round_trip() {
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
        assert_eq!(parse_amz_date("20150830T123600Z"), Some(1_440_938_160));
        assert_eq!(amz_date(1_440_938_160), "20150830T123600Z");
        assert_eq!(amz_date(951_782_400), "20000229T000000Z");
        for t in [0, 951_782_399, 1_709_164_800, 4_102_444_799] {
            assert_eq!(parse_amz_date(&amz_date(t)), Some(t));
        }
        for bad in [
            "",
            "20150830T123600",
            "2015083OT123600Z",
            "20151330T123600Z",
            "20150830T250000Z",
            "2015-08-30T12:36:00Z",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn credentials_files_parse_with_line_numbers_in_errors() {
        let k = KeyStore::parse("# keys\n\nAKID1 secret1\n  AKID2\tsecret/2+=  \n", "f").unwrap();
        assert_eq!(k.len(), 2);
        assert_eq!(k.first().unwrap().access_key_id, "AKID1");
        assert_eq!(k.secret("AKID2"), Some("secret/2+="));
        for (text, want) in [
            (
                "AKID1 s\nonlyonefield\n",
                "line 2: expected `ACCESS_KEY_ID SECRET` (two fields), found 1 field",
            ),
            ("# c\n\nA b c\n", "line 3:"),
            ("A/B s\n", "line 1: the access key id"),
            ("A s\nA t\n", "line 2: access key id A appears twice"),
            ("# nothing\n", "holds no keys"),
        ] {
            let e = KeyStore::parse(text, "creds.txt").unwrap_err().to_string();
            assert!(e.contains(want) && e.contains("creds.txt"), "{text:?}: {e}");
        }
        assert!(!format!("{k:?}").contains("secret1"), "Debug hides secrets");
        let e = KeyStore::from_file(Path::new("/nonexistent/creds")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/creds"));
    }
}
