//! A real OCI registry for tests: Debian's `docker-registry` on
//! 127.0.0.1 (a free port), with Shoal's test image pushed by `skopeo`.
//! Shared by the worker's tests and the end-to-end tests
//! (`scheduler/cli/tests/images.rs` includes this file by path).
#![allow(dead_code)]

use shoal_model::ImageRef;
use shoal_worker::images::ImageSettings;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A registry on 127.0.0.1 with its access log (one line per request).
pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    access_log: PathBuf,
    dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Registry {
        Registry::start_on("127.0.0.1:0")
    }

    /// A registry listening on `addr` (`IP:PORT`, port 0 for any).
    pub fn start_on(listen: &str) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {listen}\n",
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
    pub fn push(&self, repo: &str, tag: &str, extra_mib: u32) -> String {
        let layout = self.layout_dir(repo, tag);
        let layer = build_layout(&layout, tag, extra_mib);
        self.push_layout(&layout, repo, tag);
        layer
    }

    /// Where the layout of `repo:tag` is built.
    fn layout_dir(&self, repo: &str, tag: &str) -> PathBuf {
        self.dir
            .path()
            .join(format!("layout-{}-{tag}", repo.replace('/', "_")))
    }

    /// Push the layout at `layout` (tagged `tag`) as `repo:tag`.
    fn push_layout(&self, layout: &Path, repo: &str, tag: &str) {
        skopeo_copy_to(
            &format!("oci:{}:{tag}", layout.display()),
            &format!("docker://{}/{repo}:{tag}", self.addr),
            &["--dest-tls-verify=false"],
        );
    }

    /// Build the MPI test image (`scripts/make-mpi-image.sh`, with
    /// `programs` in /usr/local/bin) and push it as `repo:tag`.
    pub fn push_mpi(&self, repo: &str, tag: &str, programs: &[&Path]) {
        let layout = self.layout_dir(repo, tag);
        let out = Command::new("bash")
            .arg(script("make-mpi-image.sh"))
            .arg(&layout)
            .arg(tag)
            .args(programs)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.push_layout(&layout, repo, tag);
    }

    /// How many times the blob `digest` of `repo` was fetched.
    pub fn blob_gets(&self, repo: &str, digest: &str) -> usize {
        let want = format!("\"GET /v2/{repo}/blobs/{digest} ");
        std::fs::read_to_string(&self.access_log)
            .unwrap()
            .lines()
            .filter(|l| l.contains(&want))
            .count()
    }

    pub fn image(&self, repo_tag: &str) -> ImageRef {
        ImageRef::parse("image", &format!("{}/{repo_tag}", self.addr)).unwrap()
    }

    pub fn settings(&self) -> ImageSettings {
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

/// A script of the project's `scripts/`, found from the crate's folder up
/// (worker/ or scheduler/cli/).
fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|d| d.join("scripts").join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("scripts/{name} above the crate"))
}

/// Build the test image (`extra_mib` of ballast) as an OCI layout at
/// `layout`, tagged `tag`; the digest of its layer.
pub fn build_layout(layout: &Path, tag: &str, extra_mib: u32) -> String {
    let out = Command::new("bash")
        .arg(script("make-test-image.sh"))
        .arg(layout)
        .arg(tag)
        .arg(extra_mib.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .strip_prefix("layer ")
        .expect("the layer's digest")
        .to_string()
}

/// Copy an image with skopeo (`from` and `to` are skopeo references, e.g.
/// `oci:DIR:TAG`, `docker-archive:FILE:NAME`).
pub fn skopeo_copy(from: &str, to: &str) {
    skopeo_copy_to(from, to, &[]);
}

fn skopeo_copy_to(from: &str, to: &str, flags: &[&str]) {
    let out = Command::new("skopeo")
        .args(["copy", "--quiet"])
        .args(flags)
        .args([from, to])
        .output()
        .expect("skopeo (scripts/install-deps.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
