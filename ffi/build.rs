//! The shared library's SONAME on Linux: `libtokengate.so.0`, the name the dynamic linker looks
//! for, whatever the file is called (cargo names it `libtokengate_ffi.so`; `install.sh` installs it
//! as `libtokengate.so.0.x.y`). Which symbols it exports needs nothing here: rustc's own version
//! script for a cdylib exports the `#[no_mangle]` functions (all `tokengate_*`) and nothing else,
//! and `tests/install.rs` checks that with `nm -D`. The header is not generated here either: see
//! `tests/header.rs`.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" {
        let major = std::env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets the version");
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libtokengate.so.{major}");
    }
}
