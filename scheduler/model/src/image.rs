//! Container image references as Docker and AWS Batch read `image`:
//! `[registry/]repository[:tag][@digest]`.
//!
//! The first `/`-separated component names a registry when it holds a `.`
//! or a `:` (a port) or is `localhost`; otherwise the image is on Docker
//! Hub (`docker.io`), where a one-component name is in `library/`. The
//! repository is lowercase path components of `[a-z0-9]` joined by `.`,
//! `_`, `__` or runs of `-`; a tag is up to 128 of `[A-Za-z0-9_.-]` not
//! starting with `.` or `-`; a digest is `sha256:` and 64 lowercase hex
//! digits. With neither a tag nor a digest the tag is `latest`.

use crate::error::ClientError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Docker Hub, the registry of a name that names none.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The tag of a name that gives neither a tag nor a digest.
pub const DEFAULT_TAG: &str = "latest";
/// Longest image name (AWS Batch's limit).
pub const MAX_IMAGE_LEN: usize = 255;

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ImageRef {
    /// `HOST[:PORT]`, e.g. `docker.io` or `127.0.0.1:5000`.
    pub registry: String,
    /// `library/debian`, `shoal/test`.
    pub repository: String,
    /// The tag, if given (or implied: `latest` when no digest is given).
    pub tag: Option<String>,
    /// `sha256:…`, if given.
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parse `s`; an error names `field` and says what is wrong.
    pub fn parse(field: &str, s: &str) -> Result<ImageRef, ClientError> {
        let bad = |why: String| {
            ClientError::new(
                field,
                format!("{s:?} is not an image name ({why}); give [REGISTRY/]REPOSITORY[:TAG][@sha256:DIGEST], e.g. debian:bookworm or 127.0.0.1:5000/shoal/test:1"),
            )
        };
        if s.is_empty() {
            return Err(bad("it is empty".into()));
        }
        if s.len() > MAX_IMAGE_LEN {
            return Err(bad(format!("longer than {MAX_IMAGE_LEN} characters")));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                check_digest(d).map_err(bad)?;
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        // A tag follows the last ':' after the last '/' (a ':' before it
        // is a registry's port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let t = &rest[last_slash + i + 1..];
                check_tag(t).map_err(bad)?;
                (&rest[..last_slash + i], Some(t.to_string()))
            }
            None => (rest, None),
        };
        let (registry, path) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                check_registry(first).map_err(bad)?;
                (first.to_string(), path.to_string())
            }
            _ if !name.contains('/') => (DEFAULT_REGISTRY.to_string(), format!("library/{name}")),
            _ => (DEFAULT_REGISTRY.to_string(), name.to_string()),
        };
        for c in path.split('/') {
            check_component(c).map_err(bad)?;
        }
        let tag = match (tag, &digest) {
            (None, None) => Some(DEFAULT_TAG.to_string()),
            (t, _) => t,
        };
        Ok(ImageRef {
            registry,
            repository: path,
            tag,
            digest,
        })
    }

    /// What a registry is asked for: the digest when there is one, else the
    /// tag.
    pub fn reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or(DEFAULT_TAG)
    }
}

impl fmt::Display for ImageRef {
    /// The full name: `REGISTRY/REPOSITORY[:TAG][@DIGEST]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

fn check_digest(d: &str) -> Result<(), String> {
    let hex = d
        .strip_prefix("sha256:")
        .ok_or_else(|| format!("digest {d:?} is not sha256:HEX"))?;
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!(
            "digest {d:?} needs 64 lowercase hexadecimal digits after sha256:"
        ));
    }
    Ok(())
}

fn check_tag(t: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    match t.chars().next() {
        None => Err("the tag after ':' is empty".into()),
        Some('.' | '-') => Err(format!("tag {t:?} starts with '.' or '-'")),
        _ if t.len() > 128 => Err(format!("tag {t:?} is longer than 128 characters")),
        _ if !t.chars().all(ok_char) => Err(format!(
            "tag {t:?} may hold only letters, digits, '_', '.' and '-'"
        )),
        _ => Ok(()),
    }
}

fn check_registry(r: &str) -> Result<(), String> {
    let (host, port) = match r.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (r, None),
    };
    if let Some(p) = port {
        if p.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!("registry port {p:?} is not a port number"));
        }
    }
    let ok = !host.is_empty()
        && host.split('.').all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !ok {
        return Err(format!("registry {host:?} is not a host name or address"));
    }
    Ok(())
}

/// One path component: `[a-z0-9]+` runs joined by `.`, `_`, `__` or runs
/// of `-`.
fn check_component(c: &str) -> Result<(), String> {
    if c.is_empty() {
        return Err("a repository path component is empty".into());
    }
    if c.chars().any(|ch| ch.is_ascii_uppercase()) {
        return Err(format!("repository component {c:?} must be lowercase"));
    }
    let bytes = c.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return Err(format!(
            "repository component {c:?} must start and end with a letter or digit"
        ));
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|b| b == b'-');
        if !ok {
            return Err(format!(
                "repository component {c:?} may join letters and digits only with '.', '_', '__' or '-'"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> ImageRef {
        ImageRef::parse("image", s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn names_read_as_docker_reads_them() {
        let r = parse("debian");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("docker.io", "library/debian", Some("latest"))
        );
        assert_eq!(r.to_string(), "docker.io/library/debian:latest");
        let r = parse("gromacs/gromacs:2023.3");
        assert_eq!(r.registry, "docker.io");
        assert_eq!(r.repository, "gromacs/gromacs");
        assert_eq!(r.reference(), "2023.3");
        let r = parse("127.0.0.1:5000/shoal/test:1");
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "shoal/test");
        assert_eq!(r.tag.as_deref(), Some("1"));
        let r = parse("localhost/x");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("localhost", "x")
        );
        let r = parse("localhost:5000/x");
        assert_eq!(r.registry, "localhost:5000");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = parse(&format!(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/md@{d}"
        ));
        assert_eq!(r.registry, "123456789012.dkr.ecr.us-east-1.amazonaws.com");
        assert_eq!(r.tag, None, "a digest alone implies no tag");
        assert_eq!(r.reference(), d);
        let r = parse(&format!("a/b-c__d.e:v1.0@{d}"));
        assert_eq!(
            (r.tag.as_deref(), r.reference()),
            (Some("v1.0"), d.as_str())
        );
    }

    #[test]
    fn malformed_names_say_what_is_wrong() {
        for (s, why) in [
            ("", "empty"),
            ("Debian", "lowercase"),
            ("debian:", "tag after ':' is empty"),
            ("debian:-x", "starts with"),
            ("debian:a/b", "port"),
            ("a//b", "empty"),
            ("a/-b", "start and end"),
            ("a/b..c", "'.', '_'"),
            ("debian@sha256:abc", "64 lowercase"),
            ("debian@md5:00", "sha256:HEX"),
            ("host:0/x", "port"),
            ("host:99999/x", "port"),
            ("-bad.host/x", "host name"),
        ] {
            let e = ImageRef::parse("containerProperties.image", s)
                .expect_err(s)
                .to_string();
            assert!(e.contains(why), "{s:?}: {e}");
            assert!(e.contains("containerProperties.image"), "{e}");
        }
        assert!(ImageRef::parse("image", &"a".repeat(256)).is_err());
    }
}
