//! The worker's image cache against a real registry (Debian's
//! `docker-registry`, started on loopback by each test) holding Shoal's
//! test image (`scripts/make-test-image.sh`, built here, pushed with
//! `skopeo`): one pull for many requests, the registry's refusals as
//! `CannotPullContainerError`, the cache's size limit, and a task run
//! inside its image.

mod common;

use common::registry::{build_layout, skopeo_copy, Registry};
use shoal_model::wire::{StartTask, TaskEvent, TaskRef};
use shoal_model::{EnvVar, ImageRef, LaunchSpec, Resources};
use shoal_worker::cgroup::Cgroups;
use shoal_worker::images::{ImageSettings, Images};
use shoal_worker::task::{NodeSettings, Tasks};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The digests of the unpacked images (`roots/sha256-HEX`).
fn roots(cache: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(cache.join("roots"))
        .map(|es| {
            es.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .map(|n| n.replacen('-', ":", 1))
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

/// Run `argv` as a task in `image` (None: on the host) on a worker of its
/// own; its exit code, reason and log.
fn run_task(
    images: Arc<Images>,
    image: Option<ImageRef>,
    argv: &[&str],
    environment: Vec<EnvVar>,
) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let leaf = format!("shoal-image-test-{}", std::process::id());
    let tasks = Tasks::new(
        dir.path().to_path_buf(),
        Cgroups::detect(&leaf),
        &[0],
        tx,
        None,
        NodeSettings {
            node: "imagetest".into(),
            address: "127.0.0.1".into(),
            policy: Default::default(),
            exec_wait: Duration::from_secs(1),
            ca_pem: None,
            images,
        },
    );
    let task = TaskRef {
        job_id: "image-job".parse().unwrap(),
        attempt: 0,
        node_index: 0,
    };
    tasks.start(StartTask {
        task: task.clone(),
        launch: LaunchSpec {
            image,
            argv: argv.iter().map(|a| a.to_string()).collect(),
            environment,
            shm_mib: 48,
            ..Default::default()
        },
        hostfile: String::new(),
        alloc: Resources {
            vcpus: 1,
            memory_mib: 256,
            shm_mib: 48,
        },
        job_token: None,
    });
    let (code, reason) = loop {
        let r = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the task's reports");
        match r.event {
            TaskEvent::Exited {
                exit_code, reason, ..
            } => break (exit_code, reason),
            TaskEvent::NotStarted { reason } => break (None, reason),
            TaskEvent::Started => {}
        }
    };
    let log = std::fs::read_to_string(tasks.log_path(&task)).unwrap_or_default();
    tasks.stop_all(Duration::from_secs(1));
    let layer_left = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .any(|d| d.path().join("layer").exists());
    assert!(!layer_left, "the task's layer is removed when it ends");
    (code, reason, log)
}

#[test]
fn a_task_runs_inside_its_image_with_the_images_environment_and_a_sized_dev_shm() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: tasks run in images on root workers only (run the tests as root)");
        return;
    }
    let reg = Registry::start();
    reg.push("shoal/test", "1", 0);
    let cache = tempfile::tempdir().unwrap();
    let images = Arc::new(Images::new(cache.path().to_path_buf(), reg.settings()));
    let script = "cat /shoal-image-marker; echo FOO=$FOO BAR=$BAR IMAGE=$SHOAL_IMAGE; \
                  echo PWD=$(pwd); df -m /dev/shm | tail -1; touch /dev/shm/from-the-job; \
                  test -e /etc/os-release && echo HOST-ROOT || echo IMAGE-ROOT; \
                  echo written > /tmp/shoal-in-the-layer && cat /tmp/shoal-in-the-layer";
    let (code, reason, log) = run_task(
        images.clone(),
        Some(reg.image("shoal/test:1")),
        &["sh", "-c", script],
        vec![EnvVar::new("FOO", "job"), EnvVar::new("BAR", "x")],
    );
    assert_eq!(code, Some(0), "{reason}\n{log}");
    assert!(
        log.contains("only in the image"),
        "a file only the image holds: {log}"
    );
    assert!(
        log.contains("FOO=job BAR=x IMAGE=1"),
        "the image's Env under the job's: {log}"
    );
    assert!(log.contains("PWD=/work"), "the image's WorkingDir: {log}");
    assert!(
        log.contains("IMAGE-ROOT"),
        "the host's / is not the job's: {log}"
    );
    let df = log
        .lines()
        .find(|l| l.contains("/dev/shm"))
        .expect("df's line");
    let total: u64 = df
        .split_whitespace()
        .nth(1)
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    assert_eq!(total, 48, "a 48 MiB /dev/shm: {df}");
    assert!(
        !Path::new("/dev/shm/from-the-job").exists(),
        "the host's /dev/shm is untouched"
    );
    assert!(
        log.contains("written"),
        "the job writes in its own layer: {log}"
    );
    assert!(
        !Path::new("/tmp/shoal-in-the-layer").exists(),
        "the host's / is untouched"
    );
    let root = images
        .get(&reg.image("shoal/test:1"))
        .unwrap()
        .rootfs
        .clone();
    assert!(
        !root.join("tmp/shoal-in-the-layer").exists(),
        "the image's root is untouched"
    );
    // A command that is not in the image cannot start.
    let (code, reason, _) = run_task(
        images,
        Some(reg.image("shoal/test:1")),
        &["no-such-program"],
        vec![],
    );
    assert_ne!(code, Some(0));
    assert!(
        reason.starts_with("CannotStartContainerError: "),
        "{reason}"
    );
    assert!(reason.contains("no-such-program"), "{reason}");
}

#[test]
fn an_image_that_cannot_be_pulled_fails_the_task_with_cannot_pull() {
    let reg = Registry::start();
    let cache = tempfile::tempdir().unwrap();
    let images = Arc::new(Images::new(cache.path().to_path_buf(), reg.settings()));
    let (code, reason, log) =
        run_task(images, Some(reg.image("shoal/absent:1")), &["true"], vec![]);
    assert_ne!(code, Some(0));
    assert!(reason.contains("CannotPullContainerError: "), "{reason}");
    assert!(
        log.contains("CannotPullContainerError"),
        "and in the job's log: {log}"
    );
}

#[test]
fn an_image_loads_from_an_archive_or_a_layout_with_no_registry() {
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    build_layout(&layout, "1", 0);
    let docker = work.path().join("saved.tar");
    let oci = work.path().join("oci.tar");
    skopeo_copy(
        &format!("oci:{}:1", layout.display()),
        &format!("docker-archive:{}:shoal/offline:1", docker.display()),
    );
    skopeo_copy(
        &format!("oci:{}:1", layout.display()),
        &format!("oci-archive:{}:1", oci.display()),
    );
    let cache = tempfile::tempdir().unwrap();
    // No registry anywhere: a get that tried to pull would fail.
    let images = Images::new(cache.path().to_path_buf(), ImageSettings::default());
    let (name, digest) = images.load(&docker, None).unwrap();
    assert_eq!(
        name.to_string(),
        "docker.io/shoal/offline:1",
        "docker save's RepoTags"
    );
    let got = images
        .get(&ImageRef::parse("image", "shoal/offline:1").unwrap())
        .unwrap();
    assert_eq!(got.digest, digest);
    assert!(got.rootfs.join("shoal-image-marker").is_file());
    // An OCI archive tagged only "1" names no image: --name does.
    let e = images.load(&oci, None).unwrap_err().to_string();
    assert!(e.contains("--name"), "{e}");
    let named = ImageRef::parse("image", "registry.example:5000/site/tool:1").unwrap();
    images.load(&oci, Some(&named)).unwrap();
    let got = images.get(&named).unwrap();
    assert!(got.rootfs.join("shoal-image-marker").is_file());
    // A layout directory, too; and what is neither is refused.
    let other = ImageRef::parse("image", "site/layout:1").unwrap();
    images.load(&layout, Some(&other)).unwrap();
    images.get(&other).unwrap();
    let junk = work.path().join("junk.tar");
    std::fs::write(&junk, b"not an archive").unwrap();
    let e = images.load(&junk, Some(&other)).unwrap_err().to_string();
    assert!(e.starts_with("CannotPullContainerError: "), "{e}");
    assert!(e.contains("neither"), "{e}");
}
