//! Container images on a worker: pulled through the OCI distribution
//! protocol by Debian's `skopeo` (manifests and blobs verified by digest,
//! Docker-style credentials), unpacked by `umoci` (layers in order, with
//! their whiteouts) into a read-only root filesystem, cached per manifest
//! digest under the worker's state directory.
//!
//! Layout of the cache (`DIR`):
//! - `DIR/layouts/KEY/`: the OCI layout an image name was pulled into (its
//!   blobs are kept while its image is, so pulling the name again fetches
//!   only what changed);
//! - `DIR/roots/sha256-HEX/rootfs`, `DIR/roots/sha256-HEX/config.json`,
//!   `DIR/roots/sha256-HEX/size`: the unpacked root filesystem, the image's
//!   configuration, and the root's size in bytes;
//! - `DIR/names/KEY`: the manifest digest an image name was pulled as (a
//!   name is pulled once; it is looked up again only when it is gone from
//!   the cache).
//!
//! Concurrent requests for one name make one pull; the others wait for it.
//! With `cache_mib`, the least recently used images go first (their root,
//! their names and their layouts), never one a task holds (an [`Image`] is
//! held until it is dropped).

use shoal_model::ImageRef;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

/// The prefix of AWS Batch's reason for an image that cannot be pulled.
pub const CANNOT_PULL: &str = "CannotPullContainerError";

/// How a worker treats container images.
#[derive(Debug, Clone, Default)]
pub struct ImageSettings {
    /// `--images off`: jobs with an image fail (their reason names the
    /// flag).
    pub disabled: bool,
    /// `--insecure-registry HOST:PORT`: registries reached over plain HTTP.
    pub insecure: Vec<String>,
    /// A Docker-style `config.json` with registry credentials.
    pub auth_file: Option<PathBuf>,
    /// `--image-cache-mib N`: the most the unpacked roots may hold.
    pub cache_mib: Option<u64>,
}

/// Why an image is not there, as the attempt's reason shows it.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The worker takes no image jobs.
    #[error("{CANNOT_PULL}: this worker runs no container images (it was started with --images off); submit to a queue of workers without it, or remove `image` from the job definition to run on the host")]
    Disabled,
    /// The registry refused, or the image is not there, or it could not be
    /// unpacked.
    #[error("{CANNOT_PULL}: {image}: {reason}")]
    Pull {
        /// The image, in full.
        image: String,
        /// The registry's or the tool's words.
        reason: String,
    },
}

/// The image configuration a job runs with (OCI image config `config`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageConfig {
    /// `NAME=VALUE` entries.
    #[serde(default, deserialize_with = "nullable")]
    pub env: Vec<String>,
    /// Prepended to the command.
    #[serde(default, deserialize_with = "nullable")]
    pub entrypoint: Vec<String>,
    /// The command when the job gives none.
    #[serde(default, deserialize_with = "nullable")]
    pub cmd: Vec<String>,
    /// Where the command starts.
    #[serde(default)]
    pub working_dir: Option<String>,
    /// `user[:group]` the image runs as.
    #[serde(default)]
    pub user: Option<String>,
}

fn nullable<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    use serde::Deserialize;
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// An image ready to run: its root filesystem and configuration. Held by a
/// task while it runs; the cache does not evict it meanwhile.
#[derive(Debug)]
pub struct Image {
    /// Its manifest digest.
    pub digest: String,
    /// The unpacked root filesystem (read-only to tasks).
    pub rootfs: PathBuf,
    /// Its configuration.
    pub config: ImageConfig,
    held: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for Image {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = held.get_mut(&self.digest) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.digest);
            }
        }
    }
}

/// A worker's image cache.
#[derive(Debug)]
pub struct Images {
    dir: PathBuf,
    settings: ImageSettings,
    /// One lock per image name: one pull at a time per name.
    pulls: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// Digests held by tasks, with how many hold each.
    held: Arc<Mutex<HashMap<String, usize>>>,
}

impl Images {
    /// The cache in `dir` (created when needed).
    pub fn new(dir: PathBuf, settings: ImageSettings) -> Images {
        Images {
            dir,
            settings,
            pulls: Mutex::new(HashMap::new()),
            held: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// `image`, from the cache or pulled now.
    pub fn get(&self, image: &ImageRef) -> Result<Image, ImageError> {
        if self.settings.disabled {
            return Err(ImageError::Disabled);
        }
        let name = image.to_string();
        let fail = |reason: String| ImageError::Pull {
            image: name.clone(),
            reason,
        };
        let key = cache_key(&name);
        let lock = self.name_lock(&key);
        let _one_pull = lock.lock().unwrap_or_else(|e| e.into_inner());
        let digest = match self.cached(&key) {
            Some(d) => d,
            None => self.pull(image, &key).map_err(fail)?,
        };
        let root = self.root_of(&digest);
        let config: ImageConfig = std::fs::read(root.join("config.json"))
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            .map_err(|e| fail(format!("its cached configuration is unreadable: {e}")))?;
        // Used now: the least recently used go first.
        let _ = std::fs::File::options()
            .write(true)
            .open(root.join("config.json"))
            .and_then(|f| f.set_modified(std::time::SystemTime::now()));
        *self
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(digest.clone())
            .or_default() += 1;
        let got = Image {
            digest,
            rootfs: root.join("rootfs"),
            config,
            held: self.held.clone(),
        };
        self.evict();
        Ok(got)
    }

    /// Put an image from an archive or layout into the cache, for sites
    /// that reach no registry: `source` is a `docker save` archive, an OCI
    /// archive or an OCI layout directory. Jobs name it by `name`, or by
    /// the name the archive gives it (`docker save`'s `RepoTags`, an OCI
    /// reference annotation that is a full image name). Returns the name
    /// and its digest.
    pub fn load(
        &self,
        source: &Path,
        name: Option<&ImageRef>,
    ) -> Result<(ImageRef, String), ImageError> {
        let shown = source.display().to_string();
        let fail = |reason: String| ImageError::Pull {
            image: shown.clone(),
            reason,
        };
        let (transport, given) = archive_kind(source).map_err(fail)?;
        let name = match (name, given) {
            (Some(n), _) => n.clone(),
            (None, Some(g)) => ImageRef::parse("name", &g).map_err(|e| fail(e.to_string()))?,
            (None, None) => {
                return Err(fail(
                    "it names no image: give its name with --name REGISTRY/REPOSITORY:TAG".into(),
                ))
            }
        };
        let key = cache_key(&name.to_string());
        let lock = self.name_lock(&key);
        let _one = lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut copy = Command::new("skopeo");
        copy.args(["copy", "--quiet"])
            .arg(format!("{transport}:{}", source.display()));
        let digest = self.store(&key, copy, |_| {}).map_err(fail)?;
        tracing::info!("loaded {name} ({digest}) from {shown}");
        Ok((name, digest))
    }

    /// Where the image of `digest` is unpacked: `roots/ALG-HEX` (no `:`,
    /// which overlayfs' options cannot hold).
    fn root_of(&self, digest: &str) -> PathBuf {
        self.dir.join("roots").join(digest.replace(':', "-"))
    }

    /// The digest name `key` was pulled as, if its root is still here.
    fn cached(&self, key: &str) -> Option<String> {
        let digest = std::fs::read_to_string(self.dir.join("names").join(key)).ok()?;
        let digest = digest.trim().to_string();
        self.root_of(&digest)
            .join("config.json")
            .exists()
            .then_some(digest)
    }

    /// Pull `image` into its layout, unpack it (unless its digest is
    /// already unpacked), and record its digest.
    fn pull(&self, image: &ImageRef, key: &str) -> Result<String, String> {
        let started = std::time::Instant::now();
        let source = match &image.digest {
            Some(d) => format!("docker://{}/{}@{d}", image.registry, image.repository),
            None => format!("docker://{image}"),
        };
        tracing::info!("pulling {image}");
        let mut copy = Command::new("skopeo");
        copy.arg("copy");
        if self.settings.insecure.contains(&image.registry) {
            copy.arg("--src-tls-verify=false");
        }
        if let Some(a) = &self.settings.auth_file {
            copy.arg("--authfile").arg(a);
        }
        copy.arg(&source);
        // Its progress (each blob as it is copied) goes to the worker's log.
        let name = image.to_string();
        let digest = self.store(key, copy, |line| tracing::info!("pulling {name}: {line}"))?;
        tracing::info!(
            "pulled {image} ({digest}, {} MiB unpacked) in {:.1} s",
            root_size(&self.root_of(&digest)) >> 20,
            started.elapsed().as_secs_f64()
        );
        Ok(digest)
    }

    /// The lock of the name `key`: one pull (or load) of a name at a time.
    fn name_lock(&self, key: &str) -> Arc<Mutex<()>> {
        let mut pulls = self.pulls.lock().unwrap_or_else(|e| e.into_inner());
        pulls.entry(key.to_string()).or_default().clone()
    }

    /// Finish `copy` (a `skopeo copy` given its source) into the layout of
    /// the name `key`, each line of its output to `progress`; unpack the
    /// image unless its digest already is; record the name's digest.
    fn store(
        &self,
        key: &str,
        mut copy: Command,
        progress: impl Fn(&str),
    ) -> Result<String, String> {
        let layout = self.dir.join("layouts").join(key);
        for d in [&layout, &self.dir.join("names"), &self.dir.join("roots")] {
            std::fs::create_dir_all(d)
                .map_err(|e| format!("cannot create {}: {e}", d.display()))?;
        }
        copy.arg(format!("oci:{}:image", layout.display()));
        run_tool_with(copy, "skopeo", progress)?;
        let (digest, config) = read_layout(&layout)?;
        let root = self.root_of(&digest);
        if !root.join("config.json").exists() {
            self.unpack(&layout, &root, &config)?;
        }
        std::fs::write(self.dir.join("names").join(key), &digest)
            .map_err(|e| format!("cannot record the image: {e}"))?;
        Ok(digest)
    }

    /// Unpack the layout's image into `root`, all or nothing.
    fn unpack(&self, layout: &Path, root: &Path, config: &ImageConfig) -> Result<(), String> {
        let tmp = root.with_extension(format!("unpacking-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp)
            .map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
        let mut unpack = Command::new("umoci");
        unpack.args(["raw", "unpack"]);
        if !nix::unistd::geteuid().is_root() {
            unpack.arg("--rootless");
        }
        unpack
            .arg("--image")
            .arg(format!("{}:image", layout.display()))
            .arg(tmp.join("rootfs"));
        if let Err(e) = run_tool(unpack, "umoci") {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        let body = serde_json::to_vec(config).map_err(|e| e.to_string())?;
        // Its size, measured once here, not at every eviction check.
        let size = dir_size(&tmp.join("rootfs")).to_string();
        std::fs::write(tmp.join("size"), size)
            .and_then(|_| std::fs::write(tmp.join("config.json"), body))
            .and_then(|_| std::fs::rename(&tmp, root))
            .map_err(|e| {
                let _ = std::fs::remove_dir_all(&tmp);
                format!("cannot store the unpacked image: {e}")
            })
    }

    /// Remove the least recently used roots while the cache holds more
    /// than `cache_mib`, never one a task holds.
    fn evict(&self) {
        let Some(limit) = self.settings.cache_mib else {
            return;
        };
        let roots = self.dir.join("roots");
        let Ok(entries) = std::fs::read_dir(&roots) else {
            return;
        };
        let mut all: Vec<(std::time::SystemTime, String, u64)> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                // The directory of sha256:HEX is sha256-HEX.
                let name = name.replacen('-', ":", 1);
                let used = std::fs::metadata(e.path().join("config.json"))
                    .and_then(|m| m.modified())
                    .ok()?;
                Some((used, name, root_size(&e.path())))
            })
            .collect();
        all.sort();
        let mut total: u64 = all.iter().map(|a| a.2).sum();
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for (_, digest, size) in all {
            if total <= limit << 20 {
                break;
            }
            if held.contains_key(&digest) {
                continue;
            }
            tracing::info!(
                "image cache over {limit} MiB: removing {digest} ({} MiB)",
                size >> 20
            );
            if std::fs::remove_dir_all(self.root_of(&digest)).is_ok() {
                total -= size;
                self.forget_names_of(&digest);
            }
        }
    }
}

impl Images {
    /// Forget the names pulled as `digest`, with their layouts (their
    /// blobs go with the image), except a name being pulled right now.
    fn forget_names_of(&self, digest: &str) {
        let names = self.dir.join("names");
        let Ok(entries) = std::fs::read_dir(&names) else {
            return;
        };
        let pulls = self.pulls.lock().unwrap_or_else(|e| e.into_inner());
        for e in entries.flatten() {
            let Ok(key) = e.file_name().into_string() else {
                continue;
            };
            let busy = pulls.get(&key).is_some_and(|l| l.try_lock().is_err());
            if busy || std::fs::read_to_string(e.path()).ok().as_deref() != Some(digest) {
                continue;
            }
            let _ = std::fs::remove_file(e.path());
            let _ = std::fs::remove_dir_all(self.dir.join("layouts").join(&key));
        }
    }
}

/// `PATH` of a task in an image whose configuration sets none (Docker's).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Look up `user` (`NAME`, `UID`, `NAME:GROUP` or `UID:GID`, as an image's
/// `User` and a definition's `user` give it) in the image whose root is
/// `root`: (uid, gid).
pub fn lookup_user_in(root: &Path, user: &str) -> Result<(u32, u32), String> {
    let (name, group) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let table =
        |file: &str| std::fs::read_to_string(root.join("etc").join(file)).unwrap_or_default();
    let passwd = table("passwd");
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 3 && (f[0] == name || f[2] == name));
    let uid = match (name.parse::<u32>(), &entry) {
        (Ok(uid), _) => uid,
        (Err(_), Some(f)) => f[2].parse().map_err(|_| format!("user {name:?} has a bad uid in the image's /etc/passwd"))?,
        (Err(_), None) => {
            return Err(format!(
                "CannotStartContainerError: user {name:?} does not exist in the image (its /etc/passwd); use a user the image has, or a numeric uid"
            ))
        }
    };
    let gid = match group {
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => table("group")
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() > 2 && f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| format!("CannotStartContainerError: group {g:?} does not exist in the image (its /etc/group)"))?,
        },
        None => entry.and_then(|f| f[3].parse().ok()).unwrap_or(uid),
    };
    Ok((uid, gid))
}

/// How skopeo reads `source`, and the image name it carries, if any: an
/// OCI layout directory (`oci`), an OCI archive (`oci-archive`: a tar with
/// `oci-layout`) or a `docker save` archive (`docker-archive`: a tar with
/// `manifest.json`).
fn archive_kind(source: &Path) -> Result<(&'static str, Option<String>), String> {
    let ref_name = |index: &[u8]| -> Option<String> {
        let v: serde_json::Value = serde_json::from_slice(index).ok()?;
        let n = v["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"].as_str()?;
        // Only a full name (a bare tag names no image).
        n.contains('/').then(|| n.to_string())
    };
    if source.is_dir() {
        let index = std::fs::read(source.join("index.json"))
            .map_err(|e| format!("not an OCI layout (no index.json: {e})"))?;
        return Ok(("oci", ref_name(&index)));
    }
    let member = |name: &str| -> Option<Vec<u8>> {
        let out = Command::new("tar")
            .arg("-xOf")
            .arg(source)
            .arg(name)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        out.status.success().then_some(out.stdout)
    };
    if let Some(m) = member("manifest.json") {
        let v: serde_json::Value = serde_json::from_slice(&m)
            .map_err(|e| format!("its manifest.json is not JSON: {e}"))?;
        let tag = v[0]["RepoTags"][0].as_str().map(str::to_string);
        return Ok(("docker-archive", tag));
    }
    if member("oci-layout").is_some() {
        let index = member("index.json").unwrap_or_default();
        return Ok(("oci-archive", ref_name(&index)));
    }
    Err("neither a `docker save` archive, an OCI archive nor an OCI layout".into())
}

/// A file name for an image name.
fn cache_key(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Run a tool; its own words when it fails.
fn run_tool(cmd: Command, tool: &str) -> Result<(), String> {
    run_tool_with(cmd, tool, |_| {})
}

/// Run a tool, each line of its output to `progress` as it comes; its own
/// words when it fails.
fn run_tool_with(mut cmd: Command, tool: &str, progress: impl Fn(&str)) -> Result<(), String> {
    use std::io::{BufRead, Read};
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {tool} ({e}); install it (apt-get install {tool})"))?;
    let mut stderr = child.stderr.take();
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(e) = stderr.as_mut() {
            let _ = e.read_to_string(&mut text);
        }
        text
    });
    if let Some(out) = child.stdout.take() {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if !line.trim().is_empty() {
                progress(line.trim());
            }
        }
    }
    let status = child.wait().map_err(|e| format!("{tool}: {e}"))?;
    let stderr = errors.join().unwrap_or_default();
    if status.success() {
        return Ok(());
    }
    let said = stderr;
    let said = said.trim();
    // skopeo and umoci speak logrus: keep the message itself.
    let msg = said
        .rsplit_once("msg=\"")
        .map(|(_, m)| m.trim_end_matches('"').replace("\\\"", "\""))
        .unwrap_or_else(|| said.to_string());
    Err(if msg.is_empty() {
        format!("{tool} exited {status}")
    } else {
        msg
    })
}

/// The manifest digest and configuration of the image tagged `image` in
/// an OCI layout.
fn read_layout(layout: &Path) -> Result<(String, ImageConfig), String> {
    #[derive(serde::Deserialize)]
    struct Index {
        manifests: Vec<Descriptor>,
    }
    #[derive(serde::Deserialize)]
    struct Descriptor {
        digest: String,
        #[serde(default)]
        annotations: HashMap<String, String>,
    }
    #[derive(serde::Deserialize)]
    struct Manifest {
        config: Descriptor,
    }
    #[derive(serde::Deserialize)]
    struct Config {
        #[serde(default)]
        config: Option<ImageConfig>,
    }
    let read = |p: PathBuf| -> Result<Vec<u8>, String> {
        std::fs::read(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    let blob = |d: &str| -> Result<Vec<u8>, String> {
        let (alg, hex) = d
            .split_once(':')
            .ok_or_else(|| format!("{d:?} is not a digest"))?;
        read(layout.join("blobs").join(alg).join(hex))
    };
    let index: Index = serde_json::from_slice(&read(layout.join("index.json"))?)
        .map_err(|e| format!("the pulled layout's index is unreadable: {e}"))?;
    let manifest = index
        .manifests
        .iter()
        .rev()
        .find(|m| {
            m.annotations
                .get("org.opencontainers.image.ref.name")
                .is_some_and(|n| n == "image")
        })
        .ok_or("the pulled layout holds no image")?;
    let m: Manifest = serde_json::from_slice(&blob(&manifest.digest)?)
        .map_err(|e| format!("the image's manifest is unreadable: {e}"))?;
    let c: Config = serde_json::from_slice(&blob(&m.config.digest)?)
        .map_err(|e| format!("the image's configuration is unreadable: {e}"))?;
    Ok((manifest.digest.clone(), c.config.unwrap_or_default()))
}

/// The size of an unpacked root: as measured when it was unpacked (its
/// `size` file), else measured now.
fn root_size(root: &Path) -> u64 {
    std::fs::read_to_string(root.join("size"))
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| dir_size(root))
}

/// Bytes under `p` (files only; links not followed).
fn dir_size(p: &Path) -> u64 {
    let Ok(m) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    if !m.is_dir() {
        return m.len();
    }
    std::fs::read_dir(p)
        .map(|es| es.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_configs_read_as_oci_writes_them() {
        let c: ImageConfig = serde_json::from_str(
            r#"{"Env":["PATH=/bin","A=1"],"Entrypoint":null,"Cmd":["sh"],"WorkingDir":"/w","User":"1000"}"#,
        )
        .unwrap();
        assert_eq!(c.env, ["PATH=/bin", "A=1"]);
        assert!(c.entrypoint.is_empty());
        assert_eq!(c.cmd, ["sh"]);
        assert_eq!(c.working_dir.as_deref(), Some("/w"));
        assert_eq!(
            cache_key("127.0.0.1:5000/shoal/test:1"),
            "127.0.0.1_5000_shoal_test_1"
        );
    }

    #[test]
    fn users_are_looked_up_in_the_image() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("etc")).unwrap();
        std::fs::write(
            root.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nrunner:x:1000:1001::/work:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(root.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        let at = |u: &str| lookup_user_in(root.path(), u);
        assert_eq!(at("runner"), Ok((1000, 1001)));
        assert_eq!(at("1000"), Ok((1000, 1001)));
        assert_eq!(at("runner:staff"), Ok((1000, 50)));
        assert_eq!(at("4242:7"), Ok((4242, 7)));
        assert_eq!(at("4242"), Ok((4242, 4242)));
        assert!(at("ghost")
            .unwrap_err()
            .contains("does not exist in the image"));
        assert!(at("runner:ghosts").unwrap_err().contains("group"));
    }

    #[test]
    fn a_disabled_cache_names_the_flag() {
        let images = Images::new(
            std::env::temp_dir(),
            ImageSettings {
                disabled: true,
                ..Default::default()
            },
        );
        let e = images
            .get(&ImageRef::parse("image", "debian").unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("CannotPullContainerError: "), "{e}");
        assert!(e.contains("--images off"), "{e}");
    }
}
