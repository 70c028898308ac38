//! The worker's image cache against a real registry (Debian's
//! `docker-registry`, started on loopback by each test) holding Shoal's
//! test image (`scripts/make-test-image.sh`, built here, pushed with
//! `skopeo`): one pull for many requests, the registry's refusals as
//! `CannotPullContainerError`, and the cache's size limit.

use shoal_model::ImageRef;
use shoal_worker::images::{ImageSettings, Images};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// A registry on 127.0.0.1 with its access log (one line per request).
struct Registry {
    child: Child,
    addr: String,
    access_log: PathBuf,
    dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:0\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let access_log = dir.path().join("access.log");
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(std::fs::File::create(&access_log).unwrap())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker-registry (scripts/install-deps.sh installs it)");
        // The port it took is in its log: "listening on 127.0.0.1:PORT".
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let addr: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                        .collect();
                    let _ = tx.send(addr);
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the registry says where it listens");
        Registry {
            child,
            addr,
            access_log,
            dir,
        }
    }

    /// Build the test image (`extra_mib` of ballast) and push it as
    /// `repo:tag`; the digest of its layer.
    fn push(&self, repo: &str, tag: &str, extra_mib: u32) -> String {
        let layout = self
            .dir
            .path()
            .join(format!("layout-{}-{tag}", repo.replace('/', "_")));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/make-test-image.sh");
        let out = Command::new("bash")
            .arg(script)
            .arg(&layout)
            .arg(tag)
            .arg(extra_mib.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let layer = String::from_utf8_lossy(&out.stdout)
            .trim()
            .strip_prefix("layer ")
            .expect("the layer's digest")
            .to_string();
        let push = Command::new("skopeo")
            .args(["copy", "--quiet", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}/{repo}:{tag}", self.addr))
            .output()
            .expect("skopeo (scripts/install-deps.sh installs it)");
        assert!(
            push.status.success(),
            "{}",
            String::from_utf8_lossy(&push.stderr)
        );
        layer
    }

    /// How many times the blob `digest` of `repo` was fetched.
    fn blob_gets(&self, repo: &str, digest: &str) -> usize {
        let want = format!("\"GET /v2/{repo}/blobs/{digest} ");
        std::fs::read_to_string(&self.access_log)
            .unwrap()
            .lines()
            .filter(|l| l.contains(&want))
            .count()
    }

    fn image(&self, repo_tag: &str) -> ImageRef {
        ImageRef::parse("image", &format!("{}/{repo_tag}", self.addr)).unwrap()
    }

    fn settings(&self) -> ImageSettings {
        ImageSettings {
            insecure: vec![self.addr.clone()],
            ..Default::default()
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn roots(cache: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(cache.join("roots"))
        .map(|es| {
            es.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn concurrent_requests_for_one_image_make_one_pull() {
    let reg = Registry::start();
    let layer = reg.push("shoal/test", "1", 0);
    let cache = tempfile::tempdir().unwrap();
    let images = Arc::new(Images::new(cache.path().to_path_buf(), reg.settings()));
    let image = reg.image("shoal/test:1");
    let got: Vec<_> = (0..8)
        .map(|_| {
            let (images, image) = (images.clone(), image.clone());
            std::thread::spawn(move || images.get(&image))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap().expect("pulled"))
        .collect();
    assert_eq!(
        reg.blob_gets("shoal/test", &layer),
        1,
        "one pull for eight requests"
    );
    let first = &got[0];
    assert!(got.iter().all(|i| i.digest == first.digest));
    assert!(first.digest.starts_with("sha256:"));
    let marker = std::fs::read_to_string(first.rootfs.join("shoal-image-marker")).unwrap();
    assert!(marker.contains("only in the image"), "{marker}");
    assert!(first.rootfs.join("bin/busybox").is_file());
    assert!(
        first.config.env.contains(&"FOO=image".to_string()),
        "{:?}",
        first.config
    );
    assert_eq!(first.config.working_dir.as_deref(), Some("/work"));
    assert_eq!(first.config.cmd, ["/bin/sh"]);
    // Warm: nothing is fetched again.
    drop(got);
    images.get(&image).unwrap();
    assert_eq!(reg.blob_gets("shoal/test", &layer), 1);
    assert_eq!(roots(cache.path()).len(), 1);
}

#[test]
fn what_the_registry_refuses_fails_as_cannot_pull_and_leaves_nothing() {
    let reg = Registry::start();
    reg.push("shoal/test", "1", 0);
    let cache = tempfile::tempdir().unwrap();
    let images = Images::new(cache.path().to_path_buf(), reg.settings());
    let e = images
        .get(&reg.image("shoal/missing:1"))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("CannotPullContainerError: "), "{e}");
    assert!(e.contains("shoal/missing:1"), "names the image: {e}");
    assert!(
        e.to_lowercase().contains("manifest unknown"),
        "the registry's reason: {e}"
    );
    assert!(roots(cache.path()).is_empty());
    // Plain HTTP without --insecure-registry: refused, with why.
    let strict = Images::new(cache.path().to_path_buf(), ImageSettings::default());
    let e = strict
        .get(&reg.image("shoal/test:1"))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("CannotPullContainerError: "), "{e}");
    assert!(e.contains("HTTP"), "says it is not HTTPS: {e}");
    assert!(roots(cache.path()).is_empty());
}

#[test]
fn the_cache_keeps_to_its_size_and_never_drops_an_image_in_use() {
    let reg = Registry::start();
    let a_layer = reg.push("shoal/a", "1", 3);
    reg.push("shoal/b", "1", 3);
    let cache = tempfile::tempdir().unwrap();
    let images = Images::new(
        cache.path().to_path_buf(),
        ImageSettings {
            cache_mib: Some(5),
            ..reg.settings()
        },
    );
    let a = images.get(&reg.image("shoal/a:1")).unwrap();
    let b = images.get(&reg.image("shoal/b:1")).unwrap();
    // Over 5 MiB with both, but both are in use.
    assert_eq!(roots(cache.path()).len(), 2);
    let (a_digest, b_digest) = (a.digest.clone(), b.digest.clone());
    drop(a);
    drop(b);
    // b is used again: a, the least recently used, goes.
    let b = images.get(&reg.image("shoal/b:1")).unwrap();
    assert_eq!(roots(cache.path()), [b_digest]);
    drop(b);
    // a comes back (pulled again: its blobs went with it), and b goes.
    assert_eq!(reg.blob_gets("shoal/a", &a_layer), 1);
    let a = images.get(&reg.image("shoal/a:1")).unwrap();
    assert_eq!(reg.blob_gets("shoal/a", &a_layer), 2);
    assert_eq!(a.digest, a_digest);
    assert!(a.rootfs.join("extra").is_file());
    assert_eq!(roots(cache.path()), [a_digest]);
}
