//! The committed JSON Schema files match the types. Set `VIGIE_BLESS=1` to rewrite them.

use std::path::PathBuf;

#[test]
fn committed_json_schema_matches_the_types() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schema");
    let bless = std::env::var_os("VIGIE_BLESS").is_some();
    let mut drifted = Vec::new();
    for (stem, schema) in vigie_protocol::schema::all() {
        let path = dir.join(format!("{stem}.json"));
        let fresh = vigie_protocol::schema::render(&schema);
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &fresh).unwrap();
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(committed) if committed == fresh => {}
            _ => drifted.push(path.display().to_string()),
        }
    }
    assert!(
        drifted.is_empty(),
        "JSON Schema drifted from the types in {drifted:?}; run \
         `VIGIE_BLESS=1 cargo test -p vigie-protocol --test schema` and commit the files"
    );
}
