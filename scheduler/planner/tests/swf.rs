//! SWF reader edge cases.

use std::io::Write;

use shoal_planner::swf::{self, SwfError};
use shoal_planner::workload::{build, Conventions, CLAMPED, NEG_SUBMIT, NO_PROCS, NO_RUNTIME};

const LINE: &str = "1 0 5 100 4 -1 -1 4 200 -1 1 1 1 -1 -1 -1 -1 -1";

#[test]
fn max_nodes_with_text_and_missing_max_procs() {
    let text = format!(
        "; Version: 2.2\n; MaxNodes: 338 (batch partition; 512 total)\n; UnixStartTime: 820454400\n;   Note: a comment: with colons\n{LINE}\n"
    );
    let (h, recs) = swf::read(text.as_bytes()).unwrap();
    assert_eq!(h.max_nodes, Some(338));
    assert_eq!(h.max_procs, None);
    assert_eq!(h.machine_procs(), Some(338));
    assert_eq!(h.unix_start_time, Some(820454400));
    assert_eq!(h.get("maxnodes"), Some("338 (batch partition; 512 total)"));
    assert_eq!(h.get("Note"), Some("a comment: with colons"));
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].line, 5);
}

#[test]
fn max_procs_wins_over_max_nodes() {
    let text = format!("; MaxNodes: 64\n; MaxProcs: 128\n{LINE}\n");
    let (h, _) = swf::read(text.as_bytes()).unwrap();
    assert_eq!(h.machine_procs(), Some(128));
}

#[test]
fn no_header_at_all() {
    let (h, recs) = swf::read(format!("{LINE}\n{LINE}").as_bytes()).unwrap();
    assert_eq!(h.machine_procs(), None);
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[1].index, 1);
}

#[test]
fn minus_one_fields_and_decimals() {
    let text = "; MaxProcs: 8\n\n1 10 -1 50 -1 12.75 -1 3 -1 -1 1 -1 -1 -1 -1 -1 -1 -1\n2 11 -1 50 2 -1 -1 -1 -1 -1 1 -1 -1 -1 -1 -1 -1 -1\n";
    let (h, recs) = swf::read(text.as_bytes()).unwrap();
    assert_eq!(recs[0].alloc_procs, -1);
    assert_eq!(recs[0].req_procs, 3);
    assert_eq!(recs[0].avg_cpu, 13);
    assert_eq!(recs[0].req_time, -1);
    // Field 5 missing: a placeholder (field 8 is ignored).
    let w = build(
        &recs,
        &Conventions::reference(h.machine_procs().unwrap() as u32),
    );
    assert_eq!(
        (w.jobs[0].width, w.jobs[0].actual, w.jobs[0].estimate),
        (1, 1, 1)
    );
    // Requested time missing: the run time is the estimate.
    assert_eq!(
        (w.jobs[1].width, w.jobs[1].actual, w.jobs[1].estimate),
        (2, 50, 50)
    );
    assert_eq!(w.placeholders.get(NO_PROCS), Some(&1));
}

#[test]
fn conventions_placeholders_and_clamping() {
    let text = "; MaxProcs: 4\n\
        1 -5 0 100 2 -1 -1 -1 200 -1 1 1 1 -1 -1 -1 -1 -1\n\
        2 3 0 0 3 -1 -1 -1 200 -1 1 1 1 -1 -1 -1 -1 -1\n\
        3 4 0 300 9 -1 -1 -1 200 -1 1 1 1 -1 -1 -1 -1 -1\n\
        4 5 0 30 1 -1 -1 -1 0 -1 1 1 1 -1 -1 -1 -1 -1\n";
    let (_, recs) = swf::read(text.as_bytes()).unwrap();
    let w = build(&recs, &Conventions::reference(4));
    let j: Vec<_> = w
        .jobs
        .iter()
        .map(|j| (j.submit, j.width, j.actual, j.estimate))
        .collect();
    assert_eq!(
        j,
        vec![
            (1, 2, 1, 1),     // submit < 0: placeholder at t = 1
            (3, 3, 1, 1),     // run time 0: placeholder (width kept, as the reference does)
            (4, 4, 200, 300), // overran its request: cut at it; width clamped to 4
            (5, 1, 1, 30),    // requested 0: actual max(min(0, 30), 1)
        ]
    );
    assert_eq!(w.placeholders.get(NEG_SUBMIT), Some(&1));
    assert_eq!(w.placeholders.get(NO_RUNTIME), Some(&1));
    assert_eq!(w.placeholders.get(CLAMPED), Some(&1));
}

#[test]
fn malformed_line_names_line_and_field() {
    let text = format!("; MaxProcs: 4\n{LINE}\n1 0 5 1O0 4 -1 -1 4 200 -1 1 1 1 -1 -1 -1 -1 -1\n");
    let err = swf::read(text.as_bytes()).unwrap_err();
    match &err {
        SwfError::BadField {
            line, field, name, ..
        } => {
            assert_eq!((*line, *field, *name), (3, 4, "run time"));
        }
        e => panic!("unexpected {e}"),
    }
    assert!(err.to_string().contains("line 3"), "{err}");
    assert!(err.to_string().contains("run time"), "{err}");
}

#[test]
fn short_line_names_the_first_missing_field() {
    let text = format!("{LINE}\n{LINE}\n1 0 5 100 4 -1 -1 4\n");
    let err = swf::read(text.as_bytes()).unwrap_err();
    match err {
        SwfError::FieldCount {
            line,
            found,
            first_missing,
        } => assert_eq!((line, found, first_missing), (3, 8, "requested time")),
        e => panic!("unexpected {e}"),
    }
}

#[test]
fn streaming_reader_stops_after_an_error() {
    let text = format!("{LINE}\nbad\n{LINE}\n");
    let r = swf::SwfReader::new(text.as_bytes()).unwrap();
    let items: Vec<_> = r.collect();
    assert_eq!(items.len(), 2);
    assert!(items[0].is_ok());
    assert!(items[1].is_err());
}

#[test]
fn gzip_and_plain_files_read_the_same() {
    let dir = std::env::temp_dir().join(format!("shoal-planner-swf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = format!("; MaxProcs: 16\n{LINE}\n{LINE}\n");
    let plain = dir.join("t.swf");
    std::fs::write(&plain, &text).unwrap();
    let gz = dir.join("t.swf.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::default(),
    );
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap();
    let a = swf::read_file(&plain).unwrap();
    let b = swf::read_file(&gz).unwrap();
    assert_eq!(a, b);
    assert_eq!(b.0.machine_procs(), Some(16));
    assert_eq!(b.1.len(), 2);
    let missing = swf::read_file(&dir.join("nope.swf")).unwrap_err();
    assert!(matches!(missing, SwfError::Io { .. }));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn shared_traces_headers() {
    let base = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/traces/");
    let ctc = swf::open(std::path::Path::new(&format!(
        "{base}CTC-SP2-1996-3.1-cln.swf.gz"
    )))
    .unwrap();
    assert_eq!(ctc.header().machine_procs(), Some(338));
    let kth = swf::read_file(std::path::Path::new(&format!(
        "{base}KTH-SP2-1996-2.1-cln.swf.gz"
    )))
    .unwrap();
    assert_eq!(kth.0.machine_procs(), Some(100));
    assert_eq!(kth.1.len(), 28476);
}
