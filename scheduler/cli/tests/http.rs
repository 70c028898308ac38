//! The API's HTTP as clients meet it: bodies that stall or are too large,
//! and paths or methods that are no operation, all answered in AWS's error
//! shape, with the connection neither held nor broken.

mod common;

use common::{start_scheduler, Proc, SHOAL};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn scheduler() -> (Proc, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (p, endpoint) = start_scheduler(&dir.path().join("s"), &[]);
    let addr = endpoint.trim_start_matches("http://").to_string();
    (p, addr, dir)
}

/// Send `head` and `body` on a fresh connection; the whole reply (to EOF).
fn raw(addr: &str, head: &str, body: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).to_string()
}

fn post_head(addr: &str, path: &str, len: usize) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {len}\r\nConnection: close\r\n\r\n"
    )
}

#[test]
fn a_stalled_body_is_cut_off_and_stalled_clients_do_not_stop_others() {
    let (_s, addr, _d) = scheduler();
    // 200 clients that declare 100 bytes and send 10.
    let stalled: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).unwrap();
            s.write_all(post_head(&addr, "/v1/describejobs", 100).as_bytes())
                .unwrap();
            s.write_all(b"{\"jobs\":[").unwrap();
            s
        })
        .collect();
    // A normal request is served meanwhile.
    let ok = raw(&addr, &post_head(&addr, "/v1/describejobqueues", 2), b"{}");
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    // The first stalled one is answered and closed within 30 s (and a bit).
    let started = Instant::now();
    let mut first = stalled.into_iter().next().unwrap();
    first
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut reply = Vec::new();
    let _ = first.read_to_end(&mut reply);
    let waited = started.elapsed();
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert!(reply.contains("ClientException"), "{reply}");
    assert!(reply.contains("did not arrive within 30 s"), "{reply}");
    assert!(waited < Duration::from_secs(33), "closed after {waited:?}");
}

#[test]
fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let (_s, addr, _d) = scheduler();
    let mut s = TcpStream::connect(&addr).unwrap();
    s.write_all(b"POST /v1/describejobqueues HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let started = Instant::now();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(33), "closed after {waited:?}");
    assert!(
        waited >= Duration::from_secs(25),
        "not before its time: {waited:?}"
    );
}

#[test]
fn a_huge_body_sent_whole_gets_its_client_exception() {
    let (_s, addr, dir) = scheduler();
    let mut body = b"{\"jobs\":[\"".to_vec();
    body.resize(10 << 20, b'x');
    body.extend_from_slice(b"\"]}");
    let reply = raw(
        &addr,
        &post_head(&addr, "/v1/describejobs", body.len()),
        &body,
    );
    assert!(
        reply.starts_with("HTTP/1.1 400"),
        "{}",
        &reply[..reply.len().min(300)]
    );
    assert!(reply.contains("ClientException"), "{reply}");
    assert!(reply.contains("larger than 1024 KiB"), "{reply}");
    // The CLI shows that reason, not "cannot reach the scheduler".
    let file = dir.path().join("big.json");
    let mut def = br#"{"jobDefinitionName":"big","type":"container","parameters":{"p":""#.to_vec();
    def.resize(10 << 20, b'x');
    def.extend_from_slice(br#""},"containerProperties":{"command":["true"]}}"#);
    std::fs::write(&file, def).unwrap();
    let o = std::process::Command::new(SHOAL)
        .arg("register")
        .arg(&file)
        .args(["--endpoint", &format!("http://{addr}")])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("larger than 1024 KiB"), "{err}");
    assert!(!err.contains("cannot reach"), "{err}");
}

#[test]
fn every_refusal_has_a_json_body_in_aws_shape() {
    let (_s, addr, _d) = scheduler();
    let get = raw(
        &addr,
        &format!("GET /v1/submitjob HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
        b"",
    );
    assert!(get.starts_with("HTTP/1.1 405"), "{get}");
    assert!(
        get.contains("\"__type\":\"UnknownOperationException\""),
        "{get}"
    );
    assert!(get.contains("POST"), "{get}");
    // aws batch tag-resource (POST /v1/tags/ARN) without tags: a client
    // error naming the field.
    let tag = raw(
        &addr,
        &post_head(&addr, "/v1/tags/arn:aws:batch:us-east-1:0:job-queue/q", 2),
        b"{}",
    );
    assert!(tag.starts_with("HTTP/1.1 400"), "{tag}");
    assert!(tag.contains("\"__type\":\"ClientException\""), "{tag}");
    assert!(tag.contains("tags"), "{tag}");
    // PUT on it is no method of the tags path.
    let put = raw(
        &addr,
        &format!("PUT /v1/tags/x HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n"),
        b"{}",
    );
    assert!(put.starts_with("HTTP/1.1 405"), "{put}");
    assert!(put.contains("UnknownOperationException"), "{put}");
    let op = raw(&addr, &post_head(&addr, "/v1/nosuchop", 2), b"{}");
    assert!(op.starts_with("HTTP/1.1 404"), "{op}");
    assert!(op.contains("UnknownOperationException"), "{op}");
}
