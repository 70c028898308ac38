//! The one error kind of the model: a client mistake, reported by the daemon
//! as AWS's `ClientException` (HTTP 400,
//! `{"__type":"ClientException","message":"..."}`).

use serde::de::DeserializeOwned;
use std::fmt;

/// A request the client got wrong. `field` is the dotted path of the
/// offending field (with indices, e.g.
/// `nodeProperties.nodeRangeProperties[1].targetNodes`), empty when the
/// error is about the request as a whole; `message` says which rule was
/// broken and, where it helps, how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ClientError {
    pub field: String,
    pub message: String,
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

impl ClientError {
    /// The AWS error type name the daemon reports (`__type`).
    pub const AWS_TYPE: &'static str = "ClientException";

    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ClientError {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same error, reported against another field (e.g. to say
    /// `jobQueue` instead of a helper's default).
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = field.into();
        self
    }

    /// The AWS error body: `{"__type":"ClientException","message":"<field>: <message>"}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "__type": Self::AWS_TYPE, "message": self.to_string() })
    }
}

/// Shorthand used throughout the validators.
pub(crate) fn err<T>(
    field: impl Into<String>,
    message: impl Into<String>,
) -> Result<T, ClientError> {
    Err(ClientError::new(field, message))
}

/// Validation of a parsed request. Every request type implements it.
pub trait Validate {
    fn validate(&self) -> Result<(), ClientError>;
}

/// Deserialize a request body. JSON syntax errors, truncated bodies, wrong
/// types, unknown fields, missing required fields and out-of-range numbers
/// all become a [`ClientError`] naming the field's path. An empty (or
/// all-whitespace) body is read as `{}`. Never panics; nesting deeper than
/// serde_json's recursion limit (128) is an error.
pub fn parse_request<T: DeserializeOwned>(body: &[u8]) -> Result<T, ClientError> {
    let body: &[u8] = if body.iter().all(|b| b.is_ascii_whitespace()) {
        b"{}"
    } else {
        body
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(v) => match de.end() {
            Ok(()) => Ok(v),
            Err(e) => Err(json_error(String::new(), e)),
        },
        Err(e) => {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            Err(json_error(path, e.into_inner()))
        }
    }
}

/// [`parse_request`] followed by [`Validate::validate`].
pub fn parse_and_validate<T: DeserializeOwned + Validate>(body: &[u8]) -> Result<T, ClientError> {
    let req: T = parse_request(body)?;
    req.validate()?;
    Ok(req)
}

fn json_error(path: String, e: serde_json::Error) -> ClientError {
    use serde_json::error::Category;
    let full = e.to_string();
    let (line, column) = (e.line(), e.column());
    // serde_json appends " at line L column C"; keep the bare message.
    let bare = match full.rfind(" at line ") {
        Some(i) => full[..i].to_string(),
        None => full.clone(),
    };
    if bare.starts_with("recursion limit exceeded") {
        return ClientError::new(
            path,
            format!(
                "JSON nested too deeply (the limit is 128 levels) at line {line}, column {column}"
            ),
        );
    }
    match e.classify() {
        Category::Syntax => ClientError::new(
            "",
            format!("request body is not valid JSON: {bare} (line {line}, column {column})"),
        ),
        Category::Eof => ClientError::new(
            "",
            format!("request body is truncated JSON: {bare} (line {line}, column {column})"),
        ),
        Category::Io => ClientError::new("", format!("could not read request body: {bare}")),
        Category::Data => data_error(path, bare),
    }
}

fn data_error(path: String, bare: String) -> ClientError {
    let join = |name: &str| {
        if path.is_empty() {
            name.to_string()
        } else {
            format!("{path}.{name}")
        }
    };
    if let Some(name) = backticked(&bare, "missing field `") {
        return ClientError::new(join(&name), "required field is missing");
    }
    if let Some(name) = backticked(&bare, "unknown field `") {
        // serde_path_to_error's path already ends with the unknown key.
        let field = if path.rsplit('.').next() == Some(name.as_str()) {
            path.clone()
        } else {
            join(&name)
        };
        let expected = bare
            .split_once(", expected ")
            .map(|(_, rest)| format!("; expected {rest}"))
            .unwrap_or_default();
        return ClientError::new(field, format!("unknown field{expected}"));
    }
    if let Some(name) = backticked(&bare, "duplicate field `") {
        return ClientError::new(join(&name), "field given more than once");
    }
    ClientError::new(path, bare)
}

fn backticked(s: &str, prefix: &str) -> Option<String> {
    let rest = s.strip_prefix(prefix)?;
    let end = rest.find('`')?;
    Some(rest[..end].to_string())
}
