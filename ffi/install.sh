#!/bin/sh
# Builds the C library and installs it the way C build systems expect (Linux):
#
#   PREFIX/include/tokengate.h
#   PREFIX/lib/libtokengate.so.X.Y.Z     the shared library, SONAME libtokengate.so.X
#   PREFIX/lib/libtokengate.so.X         -> libtokengate.so.X.Y.Z (what programs load)
#   PREFIX/lib/libtokengate.so           -> libtokengate.so.X     (what -ltokengate finds)
#   PREFIX/lib/libtokengate.a            the static library
#   PREFIX/lib/pkgconfig/tokengate.pc    for pkg-config, CMake and Meson
#
# Usage: ffi/install.sh [--prefix DIR] [--libdir DIR] [--includedir DIR] [--destdir DIR]
#                       [--debug] [--features LIST] [--no-build]
#
#   --prefix DIR      where to install (default /usr/local)
#   --libdir DIR      the libraries (default PREFIX/lib)
#   --includedir DIR  the header (default PREFIX/include)
#   --destdir DIR     stage under DIR (packaging); the .pc file still names PREFIX
#   --debug           cargo's dev profile instead of release (faster to build, for tests)
#   --features LIST   cargo features of tokengate-ffi (only `abi-probe`, for its test)
#   --no-build        install what the last build left in the target directory
#
# cargo-c (`cargo cinstall`) does the same with more platforms; this script needs nothing beyond
# cargo and a POSIX shell. Run `ldconfig` after installing to a system directory.
set -eu

prefix=/usr/local
libdir=
includedir=
destdir=
profile=release
features=
build=1
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix=$2; shift 2 ;;
        --libdir) libdir=$2; shift 2 ;;
        --includedir) includedir=$2; shift 2 ;;
        --destdir) destdir=$2; shift 2 ;;
        --debug) profile=debug; shift ;;
        --features) features=$2; shift 2 ;;
        --no-build) build=; shift ;;
        -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
libdir=${libdir:-$prefix/lib}
includedir=${includedir:-$prefix/include}

if [ "$(uname -s)" != Linux ]; then
    echo "install.sh: Linux only; elsewhere use cargo-c (cargo cinstall)" >&2
    exit 2
fi

ffi=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$ffi")
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ffi/Cargo.toml" | head -n 1)
major=${version%%.*}

if [ -n "$build" ]; then
    set -- build --manifest-path "$root/Cargo.toml" -p tokengate-ffi --lib
    [ "$profile" = release ] && set -- "$@" --release
    [ -n "$features" ] && set -- "$@" --features "$features"
    cargo "$@"
fi
target=${CARGO_TARGET_DIR:-$root/target}/$profile

lib=$destdir$libdir
inc=$destdir$includedir
mkdir -p "$lib/pkgconfig" "$inc"
# Copied to a temporary name and renamed, so a program running from this directory never loads
# a half-written library.
cp "$target/libtokengate_ffi.so" "$lib/.libtokengate.so.$version.tmp"
mv -f "$lib/.libtokengate.so.$version.tmp" "$lib/libtokengate.so.$version"
ln -sf "libtokengate.so.$version" "$lib/libtokengate.so.$major"
ln -sf "libtokengate.so.$major" "$lib/libtokengate.so"
cp "$target/libtokengate_ffi.a" "$lib/libtokengate.a"
cp "$ffi/include/tokengate.h" "$inc/tokengate.h"

# Libs.private: what Rust's standard library needs when the static library is linked, from
# `cargo rustc -p tokengate-ffi --crate-type staticlib -- --print native-static-libs` (Linux).
cat > "$lib/pkgconfig/tokengate.pc" <<EOF
prefix=$prefix
libdir=$libdir
includedir=$includedir

Name: tokengate
Description: A thread-safe HTTP client that keeps its bearer token fresh
URL: https://docs.rs/tokengate
Version: $version
Libs: -L\${libdir} -ltokengate
Libs.private: -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
Cflags: -I\${includedir}
EOF
echo "installed tokengate $version into $destdir$prefix"
