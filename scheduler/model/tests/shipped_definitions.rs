//! Every job definition Shoal ships in `jobs/definitions/` is valid.

use shoal_model::{parse_and_validate, RegisterJobDefinitionRequest};

#[test]
fn shipped_job_definitions_are_valid() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../jobs/definitions");
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "json") {
            let body = std::fs::read(&path).unwrap();
            let def: RegisterJobDefinitionRequest =
                parse_and_validate(&body).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(
                format!("{}.json", def.job_definition_name),
                path.file_name().unwrap().to_string_lossy()
            );
            n += 1;
        }
    }
    assert!(n >= 4, "found {n} definitions");
}
