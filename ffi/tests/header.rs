//! The committed header must be what cbindgen generates from the current source (rustls-ffi's
//! `ensure-header-updated`). To update it: `TOKENGATE_BLESS=1 cargo test -p tokengate-ffi --test header`.

use std::path::Path;

#[test]
fn committed_header_is_up_to_date() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("ffi/cbindgen.toml is readable and valid");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen can generate the header")
        .write(&mut generated);
    let generated = String::from_utf8(generated).expect("the header is UTF-8");

    let path = crate_dir.join("include/tokengate.h");
    if std::env::var_os("TOKENGATE_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("can write ffi/include/tokengate.h");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "ffi/include/tokengate.h is stale: run `TOKENGATE_BLESS=1 cargo test -p tokengate-ffi \
         --test header` and commit the result"
    );
}
