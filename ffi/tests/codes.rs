//! Every code the header documents for a function is one that function returns: the header is
//! read, each function's "Codes:" list taken from its comment, and each (function, code) pair is
//! triggered here against real servers. A documented pair nobody triggers, or a code a function
//! returned without documenting it, fails the test. (`TOKENGATE_RESULT_PANIC` and
//! `TOKENGATE_RESULT_OTHER`, which any function may return, are documented once in the header's
//! preamble, not per function.)

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{c_char, c_void};
use std::ptr;
use std::sync::Mutex;
use std::time::Duration;

use tokengate_ffi::*;
use tokengate_testserver::support::temp_dir;
use tokengate_testserver::{
    ClientCerts, DEMO_PUBLIC_CLIENT_ID, Failure, RawReply, RawServer, RedirectFault, TestPki,
    TestServer, TlsFront, closed_port_url,
};

mod support;
use support::*;

/// The codes each function's comment in the header documents.
fn documented() -> BTreeMap<String, BTreeSet<String>> {
    let header = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("include/tokengate.h"),
    )
    .unwrap();
    let mut out = BTreeMap::new();
    let mut comment = String::new();
    for line in header.lines() {
        let t = line.trim_start();
        if t.starts_with("/**") {
            comment.clear();
        }
        if t.starts_with('*') || t.starts_with("/**") {
            comment.push_str(t);
            comment.push(' ');
            continue;
        }
        if let Some(rest) = t.strip_prefix("tokengate_result tokengate_") {
            let name = format!("tokengate_{}", rest.split('(').next().unwrap());
            let codes = comment
                .split_once("Codes:")
                .map(|(_, list)| {
                    list.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .filter(|w| w.starts_with("TOKENGATE_RESULT_"))
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            out.insert(name, codes);
        }
    }
    out
}

/// The name of a code.
fn name_of(code: tokengate_result) -> &'static str {
    match code {
        TOKENGATE_RESULT_NULL_ARGUMENT => "TOKENGATE_RESULT_NULL_ARGUMENT",
        TOKENGATE_RESULT_INVALID_ARGUMENT => "TOKENGATE_RESULT_INVALID_ARGUMENT",
        TOKENGATE_RESULT_PANIC => "TOKENGATE_RESULT_PANIC",
        TOKENGATE_RESULT_NOT_FOUND => "TOKENGATE_RESULT_NOT_FOUND",
        TOKENGATE_RESULT_IN_CALLBACK => "TOKENGATE_RESULT_IN_CALLBACK",
        TOKENGATE_RESULT_VERSION_MISMATCH => "TOKENGATE_RESULT_VERSION_MISMATCH",
        TOKENGATE_RESULT_LOGIN_REQUIRED => "TOKENGATE_RESULT_LOGIN_REQUIRED",
        TOKENGATE_RESULT_REFRESH_FAILED => "TOKENGATE_RESULT_REFRESH_FAILED",
        TOKENGATE_RESULT_REFRESH_TIMEOUT => "TOKENGATE_RESULT_REFRESH_TIMEOUT",
        TOKENGATE_RESULT_REFRESHER_PANICKED => "TOKENGATE_RESULT_REFRESHER_PANICKED",
        TOKENGATE_RESULT_TRANSPORT => "TOKENGATE_RESULT_TRANSPORT",
        TOKENGATE_RESULT_INVALID_URL => "TOKENGATE_RESULT_INVALID_URL",
        TOKENGATE_RESULT_INVALID_HEADER => "TOKENGATE_RESULT_INVALID_HEADER",
        TOKENGATE_RESULT_INVALID_TOKEN => "TOKENGATE_RESULT_INVALID_TOKEN",
        TOKENGATE_RESULT_CONFIG => "TOKENGATE_RESULT_CONFIG",
        TOKENGATE_RESULT_STORE => "TOKENGATE_RESULT_STORE",
        TOKENGATE_RESULT_TLS => "TOKENGATE_RESULT_TLS",
        TOKENGATE_RESULT_PROXY => "TOKENGATE_RESULT_PROXY",
        TOKENGATE_RESULT_DEADLINE => "TOKENGATE_RESULT_DEADLINE",
        TOKENGATE_RESULT_BODY_TOO_LARGE => "TOKENGATE_RESULT_BODY_TOO_LARGE",
        TOKENGATE_RESULT_REVOCATION => "TOKENGATE_RESULT_REVOCATION",
        TOKENGATE_RESULT_LOGIN_DENIED => "TOKENGATE_RESULT_LOGIN_DENIED",
        TOKENGATE_RESULT_LOGIN_EXPIRED => "TOKENGATE_RESULT_LOGIN_EXPIRED",
        TOKENGATE_RESULT_CANCELLED => "TOKENGATE_RESULT_CANCELLED",
        TOKENGATE_RESULT_LOGIN_FAILED => "TOKENGATE_RESULT_LOGIN_FAILED",
        TOKENGATE_RESULT_LOGIN_TIMEOUT => "TOKENGATE_RESULT_LOGIN_TIMEOUT",
        TOKENGATE_RESULT_OTHER => "TOKENGATE_RESULT_OTHER",
        _ => "(unknown)",
    }
}

/// What the calls returned, by function.
static SEEN: Mutex<BTreeMap<String, BTreeSet<String>>> = Mutex::new(BTreeMap::new());

/// Checks that `function` failed with `code`, and records it.
fn expect(function: &str, code: tokengate_result, result: Result<(), Failed>) {
    let failed = result.expect_err(&format!("{function} should fail with {}", name_of(code)));
    assert_eq!(
        name_of(failed.code),
        name_of(code),
        "{function}: {}",
        failed.message
    );
    SEEN.lock()
        .unwrap()
        .entry(function.to_owned())
        .or_default()
        .insert(name_of(code).to_owned());
}

const NOT_UTF8: &[u8] = b"\xff\xfe\0";
fn bad() -> *const c_char {
    NOT_UTF8.as_ptr().cast()
}

/// An entry point that sets one text on an object of type `T`.
type TextSetter<T> =
    unsafe extern "C" fn(*mut T, *const c_char, *mut *mut tokengate_error) -> tokengate_result;

/// Checks a text setter's codes: a NULL object or text is `NULL_ARGUMENT`, a text that is not
/// UTF-8 `INVALID_ARGUMENT`.
///
/// # Safety
///
/// `object` is a live object of `f`'s type, not in use by another thread.
unsafe fn expect_text_setter<T>(name: &str, f: TextSetter<T>, object: *mut T) {
    let x = c("x");
    // SAFETY: NULL, a live object, a live string or a non-UTF-8 one: each is what `f` checks.
    unsafe {
        expect(
            name,
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| f(ptr::null_mut(), x.as_ptr(), e)),
        );
        expect(
            name,
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| f(object, ptr::null(), e)),
        );
        expect(
            name,
            TOKENGATE_RESULT_INVALID_ARGUMENT,
            call(|e| f(object, bad(), e)),
        );
    }
}

type StrSetter = Box<
    dyn Fn(
        *mut tokengate_client_builder,
        *const c_char,
        *mut *mut tokengate_error,
    ) -> tokengate_result,
>;
type MsSetter =
    Box<dyn Fn(*mut tokengate_client_builder, u64, *mut *mut tokengate_error) -> tokengate_result>;

/// Wraps an entry point as a closure (the calls pass NULL, live or invalid pointers on purpose;
/// each entry point checks them).
macro_rules! w {
    ($f:expr) => {
        Box::new(|b, v, e| {
            // SAFETY: see the macro's comment.
            #[allow(unused_unsafe)]
            unsafe {
                $f(b, v, e)
            }
        })
    };
}

/// The codes of the `tokengate_check_version`, token, builder and request functions: argument
/// checks.
fn arguments() {
    let s = c("x");
    let null: *const c_char = ptr::null();
    // SAFETY: every pointer is NULL, a live object, a live string or a valid out-pointer; NULL
    // and non-UTF-8 arguments are the point.
    unsafe {
        expect(
            "tokengate_check_version",
            TOKENGATE_RESULT_VERSION_MISMATCH,
            call(|e| tokengate_check_version(0, TOKENGATE_VERSION_MINOR + 1, 0, e)),
        );
        expect(
            "tokengate_check_version",
            TOKENGATE_RESULT_VERSION_MISMATCH,
            call(|e| tokengate_check_version(1, 0, 0, e)),
        );
        ok(call(|e| tokengate_check_version(0, 0, 0, e)));

        // Tokens.
        let mut t = ptr::null_mut();
        expect(
            "tokengate_token_new",
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| tokengate_token_new(null, &mut t, e)),
        );
        expect(
            "tokengate_token_new",
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| tokengate_token_new(s.as_ptr(), ptr::null_mut(), e)),
        );
        expect(
            "tokengate_token_new",
            TOKENGATE_RESULT_INVALID_ARGUMENT,
            call(|e| tokengate_token_new(bad(), &mut t, e)),
        );
        let empty = c("");
        expect(
            "tokengate_token_new",
            TOKENGATE_RESULT_INVALID_ARGUMENT,
            call(|e| tokengate_token_new(empty.as_ptr(), &mut t, e)),
        );
        assert!(t.is_null(), "out-param untouched on failure");
        let t = token("a", 0, None);
        let nt = ptr::null_mut();
        expect(
            "tokengate_token_set_expires_in_ms",
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| tokengate_token_set_expires_in_ms(nt, 1, e)),
        );
        expect(
            "tokengate_token_set_expires_at_unix_ms",
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| tokengate_token_set_expires_at_unix_ms(nt, 1, e)),
        );
        for (name, f) in [
            (
                "tokengate_token_set_refresh_token",
                tokengate_token_set_refresh_token
                    as unsafe extern "C" fn(
                        *mut tokengate_token,
                        *const c_char,
                        *mut *mut tokengate_error,
                    ) -> tokengate_result,
            ),
            (
                "tokengate_token_set_token_type",
                tokengate_token_set_token_type,
            ),
            ("tokengate_token_set_scope", tokengate_token_set_scope),
        ] {
            expect(
                name,
                TOKENGATE_RESULT_NULL_ARGUMENT,
                call(|e| f(nt, s.as_ptr(), e)),
            );
            expect(
                name,
                TOKENGATE_RESULT_INVALID_ARGUMENT,
                call(|e| f(t, bad(), e)),
            );
        }
        expect(
            "tokengate_token_expiry",
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| tokengate_token_expiry(ptr::null(), ptr::null_mut(), ptr::null_mut(), e)),
        );
        let (mut at, mut left) = (7, 7);
        expect(
            "tokengate_token_expiry",
            TOKENGATE_RESULT_NOT_FOUND,
            call(|e| tokengate_token_expiry(t, &mut at, &mut left, e)),
        );
        assert_eq!((at, left), (7, 7), "nothing written");
        assert!(tokengate_token_access_token(ptr::null()).is_null());
        assert!(tokengate_token_refresh_token(t).is_null());
        tokengate_token_free(t);
        tokengate_token_free(ptr::null_mut());

        // Refresh outs outside a callback: only NULL can be checked (see `refresh_outs`).
        expect(
            "tokengate_refresh_out_set_token",
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| tokengate_refresh_out_set_token(ptr::null_mut(), ptr::null(), e)),
        );
        expect(
            "tokengate_refresh_out_set_message",
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| tokengate_refresh_out_set_message(ptr::null_mut(), s.as_ptr(), e)),
        );

        // Builders.
        let mut b = ptr::null_mut();
        expect(
            "tokengate_client_builder_new",
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| tokengate_client_builder_new(null, &mut b, e)),
        );
        expect(
            "tokengate_client_builder_new",
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| tokengate_client_builder_new(s.as_ptr(), ptr::null_mut(), e)),
        );
        expect(
            "tokengate_client_builder_new",
            TOKENGATE_RESULT_INVALID_ARGUMENT,
            call(|e| tokengate_client_builder_new(bad(), &mut b, e)),
        );
        let b = builder("https://api.example.com");
        let nb = ptr::null_mut();
        let strs: [(&str, StrSetter); 10] = [
            (
                "tokengate_client_builder_set_client_id",
                w!(tokengate_client_builder_set_client_id),
            ),
            (
                "tokengate_client_builder_set_client_secret",
                w!(tokengate_client_builder_set_client_secret),
            ),
            (
                "tokengate_client_builder_set_scope",
                w!(tokengate_client_builder_set_scope),
            ),
            (
                "tokengate_client_builder_set_refresh_token",
                w!(tokengate_client_builder_set_refresh_token),
            ),
            (
                "tokengate_client_builder_set_token_file",
                w!(tokengate_client_builder_set_token_file),
            ),
            (
                "tokengate_client_builder_add_root_certificates_file",
                w!(tokengate_client_builder_add_root_certificates_file),
            ),
            (
                "tokengate_client_builder_set_proxy",
                w!(tokengate_client_builder_set_proxy),
            ),
            (
                "tokengate_client_builder_set_no_proxy",
                w!(tokengate_client_builder_set_no_proxy),
            ),
            (
                "tokengate_client_builder_set_revocation_url",
                w!(tokengate_client_builder_set_revocation_url),
            ),
            (
                "tokengate_client_builder_set_token",
                w!(|b, _: *const c_char, e| tokengate_client_builder_set_token(b, ptr::null(), e)),
            ),
        ];
        for (name, f) in strs {
            expect(
                name,
                TOKENGATE_RESULT_NULL_ARGUMENT,
                call(|e| f(nb, s.as_ptr(), e)),
            );
            if name != "tokengate_client_builder_set_token" {
                expect(
                    name,
                    TOKENGATE_RESULT_NULL_ARGUMENT,
                    call(|e| f(b, null, e)),
                );
                expect(
                    name,
                    TOKENGATE_RESULT_INVALID_ARGUMENT,
                    call(|e| f(b, bad(), e)),
                );
            }
        }
        expect(
            "tokengate_client_builder_set_token",
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| tokengate_client_builder_set_token(b, ptr::null(), e)),
        );
        let positive: [(&str, MsSetter); 4] = [
            (
                "tokengate_client_builder_set_token_timeout_ms",
                w!(tokengate_client_builder_set_token_timeout_ms),
            ),
            (
                "tokengate_client_builder_set_refresh_timeout_ms",
                w!(tokengate_client_builder_set_refresh_timeout_ms),
            ),
            (
                "tokengate_client_builder_set_connect_timeout_ms",
                w!(tokengate_client_builder_set_connect_timeout_ms),
            ),
            (
                "tokengate_client_builder_set_response_timeout_ms",
                w!(tokengate_client_builder_set_response_timeout_ms),
            ),
        ];
        for (name, f) in positive {
            expect(name, TOKENGATE_RESULT_NULL_ARGUMENT, call(|e| f(nb, 1, e)));
            expect(
                name,
                TOKENGATE_RESULT_INVALID_ARGUMENT,
                call(|e| f(b, 0, e)),
            );
        }
        let any: [(&str, MsSetter); 5] = [
            (
                "tokengate_client_builder_set_refresh_before_expiry_ms",
                w!(tokengate_client_builder_set_refresh_before_expiry_ms),
            ),
            (
                "tokengate_client_builder_set_refresh_ahead_ms",
                w!(tokengate_client_builder_set_refresh_ahead_ms),
            ),
            (
                "tokengate_client_builder_set_timeout_ms",
                w!(tokengate_client_builder_set_timeout_ms),
            ),
            (
                "tokengate_client_builder_set_refresh_backoff_ms",
                w!(|b, v: u64, e| tokengate_client_builder_set_refresh_backoff_ms(b, v, v, e)),
            ),
            (
                "tokengate_client_builder_set_background_refresh",
                w!(|b, v: u64, e| tokengate_client_builder_set_background_refresh(b, v as i32, e)),
            ),
        ];
        for (name, f) in any {
            expect(name, TOKENGATE_RESULT_NULL_ARGUMENT, call(|e| f(nb, 0, e)));
            ok(call(|e| f(b, 0, e)));
        }
        expect(
            "tokengate_client_builder_disable_proxies",
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| tokengate_client_builder_disable_proxies(nb, e)),
        );
        expect(
            "tokengate_client_builder_set_oauth2",
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| tokengate_client_builder_set_oauth2(nb, 1, s.as_ptr(), e)),
        );
        expect(
            "tokengate_client_builder_set_oauth2",
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| tokengate_client_builder_set_oauth2(b, 1, null, e)),
        );
        expect(
            "tokengate_client_builder_set_oauth2",
            TOKENGATE_RESULT_INVALID_ARGUMENT,
            call(|e| tokengate_client_builder_set_oauth2(b, 0, s.as_ptr(), e)),
        );
        expect(
            "tokengate_client_builder_set_oauth2",
            TOKENGATE_RESULT_INVALID_ARGUMENT,
            call(|e| tokengate_client_builder_set_oauth2(b, 1, bad(), e)),
        );
        for (name, f) in [
            (
                "tokengate_client_builder_set_client_auth",
                tokengate_client_builder_set_client_auth
                    as unsafe extern "C" fn(
                        *mut tokengate_client_builder,
                        u32,
                        *mut *mut tokengate_error,
                    ) -> tokengate_result,
            ),
            (
                "tokengate_client_builder_set_roots",
                tokengate_client_builder_set_roots,
            ),
        ] {
            expect(name, TOKENGATE_RESULT_NULL_ARGUMENT, call(|e| f(nb, 1, e)));
            expect(
                name,
                TOKENGATE_RESULT_INVALID_ARGUMENT,
                call(|e| f(b, 9, e)),
            );
        }
        for (name, f) in [
            (
                "tokengate_client_builder_add_token_param",
                tokengate_client_builder_add_token_param
                    as unsafe extern "C" fn(
                        *mut tokengate_client_builder,
                        *const c_char,
                        *const c_char,
                        *mut *mut tokengate_error,
                    ) -> tokengate_result,
            ),
            (
                "tokengate_client_builder_set_client_certificate_files",
                tokengate_client_builder_set_client_certificate_files,
            ),
        ] {
            expect(
                name,
                TOKENGATE_RESULT_NULL_ARGUMENT,
                call(|e| f(nb, s.as_ptr(), s.as_ptr(), e)),
            );
            expect(
                name,
                TOKENGATE_RESULT_NULL_ARGUMENT,
                call(|e| f(b, s.as_ptr(), null, e)),
            );
            expect(
                name,
                TOKENGATE_RESULT_INVALID_ARGUMENT,
                call(|e| f(b, bad(), s.as_ptr(), e)),
            );
        }
        let empty = c("");
        expect(
            "tokengate_client_builder_set_refresh_token",
            TOKENGATE_RESULT_INVALID_ARGUMENT,
            call(|e| tokengate_client_builder_set_refresh_token(b, empty.as_ptr(), e)),
        );
        tokengate_client_builder_free(b);
        tokengate_client_builder_free(ptr::null_mut());

        // Requests.
        let mut r = ptr::null_mut();
        let (get, path) = (c("GET"), c("/x"));
        expect(
            "tokengate_request_new",
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| tokengate_request_new(null, path.as_ptr(), &mut r, e)),
        );
        expect(
            "tokengate_request_new",
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| tokengate_request_new(get.as_ptr(), path.as_ptr(), ptr::null_mut(), e)),
        );
        for method in ["get", "G E T", "", "GÉT"] {
            let m = c(method);
            expect(
                "tokengate_request_new",
                TOKENGATE_RESULT_INVALID_ARGUMENT,
                call(|e| tokengate_request_new(m.as_ptr(), path.as_ptr(), &mut r, e)),
            );
        }
        expect(
            "tokengate_request_new",
            TOKENGATE_RESULT_INVALID_ARGUMENT,
            call(|e| tokengate_request_new(get.as_ptr(), bad(), &mut r, e)),
        );
        assert!(r.is_null());
        ok(call(|e| {
            tokengate_request_new(get.as_ptr(), path.as_ptr(), &mut r, e)
        }));
        let nr = ptr::null_mut();
        let (bad_name, value) = (c("Bad Name"), c("v"));
        expect(
            "tokengate_request_add_header",
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| tokengate_request_add_header(nr, s.as_ptr(), s.as_ptr(), e)),
        );
        expect(
            "tokengate_request_add_header",
            TOKENGATE_RESULT_INVALID_ARGUMENT,
            call(|e| tokengate_request_add_header(r, bad(), s.as_ptr(), e)),
        );
        let failed =
            call(|e| tokengate_request_add_header(r, bad_name.as_ptr(), value.as_ptr(), e));
        assert!(
            !failed.as_ref().unwrap_err().message.contains("\"v\""),
            "never the value"
        );
        expect(
            "tokengate_request_add_header",
            TOKENGATE_RESULT_INVALID_HEADER,
            failed,
        );
        let crlf = c("a\r\nInjected: yes");
        expect(
            "tokengate_request_add_header",
            TOKENGATE_RESULT_INVALID_HEADER,
            call(|e| tokengate_request_add_header(r, s.as_ptr(), crlf.as_ptr(), e)),
        );
        expect(
            "tokengate_request_add_query",
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| tokengate_request_add_query(r, null, s.as_ptr(), e)),
        );
        expect(
            "tokengate_request_add_query",
            TOKENGATE_RESULT_INVALID_ARGUMENT,
            call(|e| tokengate_request_add_query(r, s.as_ptr(), bad(), e)),
        );
        expect(
            "tokengate_request_set_body",
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| tokengate_request_set_body(r, ptr::null(), 5, e)),
        );
        expect(
            "tokengate_request_set_body",
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| tokengate_request_set_body(nr, ptr::null(), 0, e)),
        );
        expect(
            "tokengate_request_set_timeout_ms",
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| tokengate_request_set_timeout_ms(nr, 5, e)),
        );
        tokengate_request_free(r);
        tokengate_request_free(ptr::null_mut());
    }
}

/// Builds and the client-level calls.
fn clients() {
    let server = TestServer::start();
    let api = format!("{}/api", server.url());
    // SAFETY: as in `arguments`.
    unsafe {
        let mut client = ptr::null_mut();
        expect(
            "tokengate_client_builder_build",
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| tokengate_client_builder_build(ptr::null(), &mut client, e)),
        );
        let b = builder(&api);
        expect(
            "tokengate_client_builder_build",
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| tokengate_client_builder_build(b, ptr::null_mut(), e)),
        );
        tokengate_client_builder_free(b);
        expect(
            "tokengate_client_builder_build",
            TOKENGATE_RESULT_INVALID_URL,
            try_build(builder("ftp://example.com")).map(drop),
        );
        let b = builder(&api);
        oauth2(
            b,
            TOKENGATE_GRANT_REFRESH_TOKEN,
            "http://auth.example.com/token",
        );
        expect(
            "tokengate_client_builder_build",
            TOKENGATE_RESULT_CONFIG,
            try_build(b).map(drop),
        );
        let b = builder(&api);
        start_with(b, token("tök", 0, None));
        expect(
            "tokengate_client_builder_build",
            TOKENGATE_RESULT_INVALID_TOKEN,
            try_build(b).map(drop),
        );
        let dir = temp_dir("codes");
        let garbled = dir.path().join("garbled.json");
        std::fs::write(&garbled, "{").unwrap();
        let b = builder(&api);
        set(
            b,
            tokengate_client_builder_set_token_file,
            garbled.to_str().unwrap(),
        );
        expect(
            "tokengate_client_builder_build",
            TOKENGATE_RESULT_STORE,
            try_build(b).map(drop),
        );

        // set_token: a token the client cannot send, a token file it cannot write.
        let b = builder(&api);
        let blocker = dir.path().join("not-a-directory");
        std::fs::write(&blocker, "").unwrap();
        set(
            b,
            tokengate_client_builder_set_token_file,
            blocker.join("token.json").to_str().unwrap(),
        );
        start_with(b, token("a", 3_600_000, None));
        let client = build(b);
        expect(
            "tokengate_client_set_token",
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| tokengate_client_set_token(client, ptr::null(), e)),
        );
        let t = token("tök", 0, None);
        expect(
            "tokengate_client_set_token",
            TOKENGATE_RESULT_INVALID_TOKEN,
            call(|e| tokengate_client_set_token(client, t, e)),
        );
        tokengate_token_free(t);
        expect(
            "tokengate_client_set_token",
            TOKENGATE_RESULT_STORE,
            set_token(client, "b"),
        );
        free(client);

        // Stats.
        let client = build(builder(&api));
        let mut st = tokengate_stats::default();
        expect(
            "tokengate_client_stats",
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| tokengate_client_stats(ptr::null(), &mut st, size_of::<tokengate_stats>(), e)),
        );
        expect(
            "tokengate_client_stats",
            TOKENGATE_RESULT_INVALID_ARGUMENT,
            call(|e| tokengate_client_stats(client, &mut st, 8, e)),
        );

        // Callbacks: NULL here, IN_CALLBACK from inside one (see `in_callback`).
        for (name, f) in setters() {
            expect(
                name,
                TOKENGATE_RESULT_NULL_ARGUMENT,
                call(|e| f(ptr::null(), ptr::null_mut(), e)),
            );
        }
        let mut tok = ptr::null_mut();
        expect(
            "tokengate_client_token",
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| tokengate_client_token(client, ptr::null_mut(), e)),
        );
        expect(
            "tokengate_client_token",
            TOKENGATE_RESULT_LOGIN_REQUIRED,
            call(|e| tokengate_client_token(client, &mut tok, e)),
        );
        assert!(tok.is_null());
        free(client);
    }
}

/// `tokengate_client_login()` and `tokengate_client_logout()`: a token file that cannot be written
/// or cleared, one another holder keeps locked, a revocation the server does not confirm.
fn sessions() {
    let server = TestServer::start();
    let api = format!("{}/api", server.url());
    let dir = temp_dir("codes-sessions");
    let issued = server.issue_token();
    let fresh = || token(&issued.access_token, 3_600_000, Some(&issued.refresh_token));
    let login = |client, t| {
        // SAFETY: a live client; `t` is NULL or a live token.
        call(|e| unsafe { tokengate_client_login(client, t, e) })
    };
    let logout = |client| {
        // SAFETY: `client` is NULL or a live client.
        call(|e| unsafe { tokengate_client_logout(client, e) })
    };

    // A token file in a path that cannot hold one: both fail with STORE.
    let blocker = dir.path().join("not-a-directory");
    std::fs::write(&blocker, "").unwrap();
    let b = builder(&api);
    set(
        b,
        tokengate_client_builder_set_token_file,
        blocker.join("token.json").to_str().unwrap(),
    );
    // A starting token: the file is never read, so the client builds.
    start_with(b, token("a", 3_600_000, None));
    let client = build(b);
    expect(
        "tokengate_client_login",
        TOKENGATE_RESULT_NULL_ARGUMENT,
        login(client, ptr::null()),
    );
    let t = token("tök", 0, None);
    expect(
        "tokengate_client_login",
        TOKENGATE_RESULT_INVALID_TOKEN,
        login(client, t),
    );
    // SAFETY: freed once.
    unsafe { tokengate_token_free(t) };
    let t = fresh();
    expect(
        "tokengate_client_login",
        TOKENGATE_RESULT_STORE,
        login(client, t),
    );
    // SAFETY: freed once.
    unsafe { tokengate_token_free(t) };
    expect(
        "tokengate_client_logout",
        TOKENGATE_RESULT_NULL_ARGUMENT,
        logout(ptr::null()),
    );
    expect(
        "tokengate_client_logout",
        TOKENGATE_RESULT_STORE,
        logout(client),
    );
    free(client);

    // A token file another holder keeps locked past the refresh timeout; then a revocation
    // endpoint that answers 503.
    let file = dir.path().join("token.json");
    let b = builder(&api);
    oauth2(b, TOKENGATE_GRANT_REFRESH_TOKEN, &server.token_url());
    set(
        b,
        tokengate_client_builder_set_revocation_url,
        &server.revocation_url(),
    );
    set(
        b,
        tokengate_client_builder_set_token_file,
        file.to_str().unwrap(),
    );
    set_u64(b, tokengate_client_builder_set_refresh_timeout_ms, 100);
    let client = build(b);
    let t = fresh();
    ok(login(client, t));
    // SAFETY: freed once.
    unsafe { tokengate_token_free(t) };
    let store = tokengate::FileStore::new(&file);
    let held = tokengate::TokenStore::lock(&store, PATIENCE).unwrap();
    expect(
        "tokengate_client_logout",
        TOKENGATE_RESULT_REFRESH_TIMEOUT,
        logout(client),
    );
    drop(held);
    server.set_revocation_unavailable(true);
    expect(
        "tokengate_client_logout",
        TOKENGATE_RESULT_REVOCATION,
        logout(client),
    );
    free(client);
}

/// How the device-login prompt below answers for the user.
#[derive(Clone, Copy)]
enum Decide {
    Deny,
    Nothing,
}

struct DeviceUser<'a> {
    server: &'a TestServer,
    decide: Decide,
}

unsafe extern "C" fn decide(
    user_data: *mut c_void,
    user_code: *const c_char,
    _uri: *const c_char,
    _complete: *const c_char,
    _expires_in_ms: i64,
) {
    // SAFETY: user_data is the test's DeviceUser, alive for the call; user_code is a string.
    let (user, code) = unsafe {
        (
            &*user_data.cast::<DeviceUser<'_>>(),
            text(user_code).unwrap(),
        )
    };
    if let Decide::Deny = user.decide {
        assert!(user.server.deny_device(&code));
    }
}

/// `tokengate_cancel_*` and `tokengate_device_login_*`: arguments, the user's refusal, an
/// expired code, a cancelled login, a refused client, an insecure URL, an unreachable server.
fn device_logins() {
    let server = TestServer::start();
    server.set_device_interval(Duration::from_millis(20));
    let null: *const c_char = ptr::null();
    let x = c("x");
    let new = |device: &str, token: &str, client: &str| {
        let (d, t, c) = (c(device), c(token), c(client));
        let mut login = ptr::null_mut();
        // SAFETY: live strings and a valid out-pointer.
        call(|e| unsafe {
            tokengate_device_login_new(d.as_ptr(), t.as_ptr(), c.as_ptr(), &mut login, e)
        })
        .map(|()| login)
    };
    let run = |login: *const tokengate_device_login,
               decide_as: Decide,
               cancel: *const tokengate_cancel| {
        let user = DeviceUser {
            server: &server,
            decide: decide_as,
        };
        let mut token = ptr::null_mut();
        // SAFETY: `login` and `cancel` are NULL or live; `user` outlives the call.
        let r = call(|e| unsafe {
            tokengate_device_login_run(
                login,
                Some(decide),
                ptr::from_ref(&user).cast_mut().cast(),
                cancel,
                &mut token,
                e,
            )
        });
        // SAFETY: NULL or a token the call gave us, freed once.
        unsafe { tokengate_token_free(token) };
        r
    };
    // SAFETY: every pointer is NULL, a live object, a live string or a valid out-pointer; NULL
    // and non-UTF-8 arguments are the point.
    unsafe {
        expect(
            "tokengate_cancel_new",
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| tokengate_cancel_new(ptr::null_mut(), e)),
        );
        let mut login = ptr::null_mut();
        expect(
            "tokengate_device_login_new",
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| tokengate_device_login_new(null, x.as_ptr(), x.as_ptr(), &mut login, e)),
        );
        expect(
            "tokengate_device_login_new",
            TOKENGATE_RESULT_INVALID_ARGUMENT,
            call(|e| tokengate_device_login_new(x.as_ptr(), bad(), x.as_ptr(), &mut login, e)),
        );
        let login = new(
            &server.device_authorization_url(),
            &server.token_url(),
            DEMO_PUBLIC_CLIENT_ID,
        )
        .unwrap();
        let setters: [(&str, TextSetter<tokengate_device_login>); 3] = [
            (
                "tokengate_device_login_set_client_secret",
                tokengate_device_login_set_client_secret,
            ),
            (
                "tokengate_device_login_set_scope",
                tokengate_device_login_set_scope,
            ),
            (
                "tokengate_device_login_add_root_certificates_file",
                tokengate_device_login_add_root_certificates_file,
            ),
        ];
        for (name, f) in setters {
            expect_text_setter(name, f, login);
        }

        expect(
            "tokengate_device_login_run",
            TOKENGATE_RESULT_NULL_ARGUMENT,
            run(ptr::null(), Decide::Nothing, ptr::null()),
        );
        expect(
            "tokengate_device_login_run",
            TOKENGATE_RESULT_LOGIN_DENIED,
            run(login, Decide::Deny, ptr::null()),
        );
        server.set_device_expires_in(Duration::from_millis(200));
        expect(
            "tokengate_device_login_run",
            TOKENGATE_RESULT_LOGIN_EXPIRED,
            run(login, Decide::Nothing, ptr::null()),
        );
        let mut cancel = ptr::null_mut();
        ok(call(|e| tokengate_cancel_new(&mut cancel, e)));
        tokengate_cancel_cancel(cancel);
        expect(
            "tokengate_device_login_run",
            TOKENGATE_RESULT_CANCELLED,
            run(login, Decide::Nothing, cancel),
        );
        tokengate_cancel_free(cancel);
        tokengate_device_login_free(login);

        let unknown = new(
            &server.device_authorization_url(),
            &server.token_url(),
            "nobody-knows-me",
        )
        .unwrap();
        expect(
            "tokengate_device_login_run",
            TOKENGATE_RESULT_LOGIN_FAILED,
            run(unknown, Decide::Nothing, ptr::null()),
        );
        tokengate_device_login_free(unknown);
        let insecure = new(
            "http://login.example/device",
            "http://login.example/token",
            DEMO_PUBLIC_CLIENT_ID,
        )
        .unwrap();
        expect(
            "tokengate_device_login_run",
            TOKENGATE_RESULT_CONFIG,
            run(insecure, Decide::Nothing, ptr::null()),
        );
        tokengate_device_login_free(insecure);
        let closed = closed_port_url();
        let unreachable = new(
            &format!("{closed}/device"),
            &format!("{closed}/token"),
            DEMO_PUBLIC_CLIENT_ID,
        )
        .unwrap();
        expect(
            "tokengate_device_login_run",
            TOKENGATE_RESULT_TRANSPORT,
            run(unreachable, Decide::Nothing, ptr::null()),
        );
        tokengate_device_login_free(unreachable);
    }
}

unsafe extern "C" fn ignore_url(_user_data: *mut c_void, _url: *const c_char) {}

/// `tokengate_browser_login_*`: arguments, an error redirect, a browser that never comes back, a
/// cancelled login, a redirect that fails its check, an insecure URL, an unreachable token
/// endpoint.
fn browser_logins() {
    let server = TestServer::start();
    let null: *const c_char = ptr::null();
    let x = c("x");
    let new = |authorize: &str, token: &str| {
        let (a, t, id) = (c(authorize), c(token), c(DEMO_PUBLIC_CLIENT_ID));
        let mut login = ptr::null_mut();
        // SAFETY: live strings and a valid out-pointer.
        call(|e| unsafe {
            tokengate_browser_login_new(a.as_ptr(), t.as_ptr(), id.as_ptr(), &mut login, e)
        })
        .map(|()| login)
    };
    let (tx, rx) = crossbeam_channel::unbounded::<Page>();
    let run = |login: *const tokengate_browser_login,
               open: tokengate_browser_open_callback,
               cancel: *const tokengate_cancel| {
        let mut token = ptr::null_mut();
        // SAFETY: `login` and `cancel` are NULL or live; `tx` outlives the call and the
        // browser's thread holds its own clone.
        let r = call(|e| unsafe {
            tokengate_browser_login_run(
                login,
                open,
                ptr::from_ref(&tx).cast_mut().cast(),
                cancel,
                &mut token,
                e,
            )
        });
        // SAFETY: NULL or a token the call gave us, freed once.
        unsafe { tokengate_token_free(token) };
        while rx.try_recv().is_ok() {}
        r
    };
    let login = new(&server.authorization_url(), &server.token_url()).unwrap();
    // SAFETY: every pointer is NULL, a live object, a live string or a valid out-pointer; NULL
    // and non-UTF-8 arguments are the point.
    unsafe {
        let mut out = ptr::null_mut();
        expect(
            "tokengate_browser_login_new",
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| tokengate_browser_login_new(x.as_ptr(), null, x.as_ptr(), &mut out, e)),
        );
        expect(
            "tokengate_browser_login_new",
            TOKENGATE_RESULT_INVALID_ARGUMENT,
            call(|e| tokengate_browser_login_new(x.as_ptr(), x.as_ptr(), bad(), &mut out, e)),
        );
        let setters: [(&str, TextSetter<tokengate_browser_login>); 4] = [
            (
                "tokengate_browser_login_set_client_secret",
                tokengate_browser_login_set_client_secret,
            ),
            (
                "tokengate_browser_login_set_scope",
                tokengate_browser_login_set_scope,
            ),
            (
                "tokengate_browser_login_expect_issuer",
                tokengate_browser_login_expect_issuer,
            ),
            (
                "tokengate_browser_login_add_root_certificates_file",
                tokengate_browser_login_add_root_certificates_file,
            ),
        ];
        for (name, f) in setters {
            expect_text_setter(name, f, login);
        }
        let param = "tokengate_browser_login_add_authorization_param";
        expect(
            param,
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| tokengate_browser_login_add_authorization_param(login, null, x.as_ptr(), e)),
        );
        expect(
            param,
            TOKENGATE_RESULT_INVALID_ARGUMENT,
            call(|e| tokengate_browser_login_add_authorization_param(login, x.as_ptr(), bad(), e)),
        );
        let timeout = "tokengate_browser_login_set_timeout_ms";
        expect(
            timeout,
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| tokengate_browser_login_set_timeout_ms(ptr::null_mut(), 1, e)),
        );
        expect(
            timeout,
            TOKENGATE_RESULT_INVALID_ARGUMENT,
            call(|e| tokengate_browser_login_set_timeout_ms(login, 0, e)),
        );
        tokengate_browser_login_free(login);

        let login = new(&server.authorization_url(), &server.token_url()).unwrap();
        ok(call(|e| {
            tokengate_browser_login_set_timeout_ms(login, 300, e)
        }));
        let name = "tokengate_browser_login_run";
        expect(
            name,
            TOKENGATE_RESULT_NULL_ARGUMENT,
            run(login, None, ptr::null()),
        );
        expect(
            name,
            TOKENGATE_RESULT_LOGIN_TIMEOUT,
            run(login, Some(ignore_url), ptr::null()),
        );
        let mut cancel = ptr::null_mut();
        ok(call(|e| tokengate_cancel_new(&mut cancel, e)));
        tokengate_cancel_cancel(cancel);
        expect(
            name,
            TOKENGATE_RESULT_CANCELLED,
            run(login, Some(ignore_url), cancel),
        );
        tokengate_cancel_free(cancel);
        server.set_redirect_fault(RedirectFault::Error("access_denied".into()));
        expect(
            name,
            TOKENGATE_RESULT_LOGIN_DENIED,
            run(login, Some(browse), ptr::null()),
        );
        server.set_redirect_fault(RedirectFault::WrongState);
        expect(
            name,
            TOKENGATE_RESULT_LOGIN_FAILED,
            run(login, Some(browse), ptr::null()),
        );
        server.set_redirect_fault(RedirectFault::None);
        tokengate_browser_login_free(login);

        let insecure = new(
            "http://login.example/authorize",
            "http://login.example/token",
        )
        .unwrap();
        expect(
            name,
            TOKENGATE_RESULT_CONFIG,
            run(insecure, Some(ignore_url), ptr::null()),
        );
        tokengate_browser_login_free(insecure);
        let closed = closed_port_url();
        let unreachable = new(&server.authorization_url(), &format!("{closed}/token")).unwrap();
        expect(
            name,
            TOKENGATE_RESULT_TRANSPORT,
            run(unreachable, Some(browse), ptr::null()),
        );
        tokengate_browser_login_free(unreachable);
    }
}

/// `tokengate_metadata_discover()` and the logins made from metadata: arguments, no metadata, an
/// unreachable issuer, a server without the endpoint a login needs.
fn discovery() {
    let server = TestServer::start();
    let discover = |issuer: *const c_char| {
        let mut metadata = ptr::null_mut();
        // SAFETY: `issuer` is NULL, not UTF-8 or a live string; a valid out-pointer.
        call(|e| unsafe { tokengate_metadata_discover(issuer, &mut metadata, e) })
            .map(|()| metadata)
    };
    let name = "tokengate_metadata_discover";
    expect(
        name,
        TOKENGATE_RESULT_NULL_ARGUMENT,
        discover(ptr::null()).map(drop),
    );
    expect(
        name,
        TOKENGATE_RESULT_INVALID_ARGUMENT,
        discover(bad()).map(drop),
    );
    let elsewhere = c(&format!("{}/elsewhere", server.url()));
    expect(
        name,
        TOKENGATE_RESULT_LOGIN_FAILED,
        discover(elsewhere.as_ptr()).map(drop),
    );
    let closed = c(&closed_port_url());
    expect(
        name,
        TOKENGATE_RESULT_TRANSPORT,
        discover(closed.as_ptr()).map(drop),
    );

    server.set_metadata_omits(&["device_authorization_endpoint", "authorization_endpoint"]);
    let issuer = c(&server.issuer());
    let metadata = discover(issuer.as_ptr()).unwrap();
    let id = c(DEMO_PUBLIC_CLIENT_ID);
    // SAFETY: live metadata and strings, NULL and non-UTF-8 on purpose, valid out-pointers.
    unsafe {
        let mut device = ptr::null_mut();
        let name = "tokengate_device_login_from_metadata";
        expect(
            name,
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| {
                tokengate_device_login_from_metadata(ptr::null(), id.as_ptr(), &mut device, e)
            }),
        );
        expect(
            name,
            TOKENGATE_RESULT_INVALID_ARGUMENT,
            call(|e| tokengate_device_login_from_metadata(metadata, bad(), &mut device, e)),
        );
        expect(
            name,
            TOKENGATE_RESULT_LOGIN_FAILED,
            call(|e| tokengate_device_login_from_metadata(metadata, id.as_ptr(), &mut device, e)),
        );
        let mut browser = ptr::null_mut();
        let name = "tokengate_browser_login_from_metadata";
        expect(
            name,
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| tokengate_browser_login_from_metadata(metadata, ptr::null(), &mut browser, e)),
        );
        expect(
            name,
            TOKENGATE_RESULT_INVALID_ARGUMENT,
            call(|e| tokengate_browser_login_from_metadata(metadata, bad(), &mut browser, e)),
        );
        expect(
            name,
            TOKENGATE_RESULT_LOGIN_FAILED,
            call(|e| tokengate_browser_login_from_metadata(metadata, id.as_ptr(), &mut browser, e)),
        );
        assert!(tokengate_metadata_device_authorization_endpoint(metadata).is_null());
        tokengate_metadata_free(metadata);
    }
}

/// Registers a callback of each kind (with a function that does nothing) on `client`.
type Setter =
    unsafe fn(*const tokengate_client, *mut c_void, *mut *mut tokengate_error) -> tokengate_result;
fn setters() -> [(&'static str, Setter); 4] {
    unsafe extern "C" fn refresh(
        _: *mut c_void,
        _: *const tokengate_token,
        _: *mut tokengate_refresh_out,
    ) -> u32 {
        TOKENGATE_REFRESH_TRANSIENT
    }
    unsafe extern "C" fn login(_: *mut c_void, _: *const tokengate_error) {}
    unsafe extern "C" fn refreshed(_: *mut c_void, _: *const tokengate_token) {}
    unsafe extern "C" fn event(_: *mut c_void, _: *const tokengate_event) {}
    [
        ("tokengate_client_set_refresh_callback", |c, u, e| {
            // SAFETY: forwarded to the setter with a function matching its signature.
            unsafe { tokengate_client_set_refresh_callback(c, Some(refresh), u, e) }
        }),
        ("tokengate_client_set_login_required_callback", |c, u, e| {
            // SAFETY: as above.
            unsafe { tokengate_client_set_login_required_callback(c, Some(login), u, e) }
        }),
        ("tokengate_client_set_on_refresh_callback", |c, u, e| {
            // SAFETY: as above.
            unsafe { tokengate_client_set_on_refresh_callback(c, Some(refreshed), u, e) }
        }),
        ("tokengate_client_set_event_callback", |c, u, e| {
            // SAFETY: as above.
            unsafe { tokengate_client_set_event_callback(c, Some(event), u, e) }
        }),
    ]
}

/// What the refresh callback of `in_callback` saw: (function, result) of each call it made.
static INSIDE: Mutex<Vec<(&'static str, Result<(), Failed>)>> = Mutex::new(Vec::new());

/// A refresh callback that tries to register callbacks and misuses its `out`, then fails.
unsafe extern "C" fn meddling(
    user_data: *mut c_void,
    _: *const tokengate_token,
    out: *mut tokengate_refresh_out,
) -> u32 {
    let client = user_data.cast_const().cast::<tokengate_client>();
    let mut inside = INSIDE.lock().unwrap();
    for (name, f) in setters() {
        // SAFETY: the client outlives its callbacks.
        inside.push((name, call(|e| unsafe { f(client, ptr::null_mut(), e) })));
    }
    // SAFETY: `out` is this call's.
    inside.push((
        "tokengate_refresh_out_set_message",
        call(|e| unsafe { tokengate_refresh_out_set_message(out, bad(), e) }),
    ));
    inside.push((
        "tokengate_refresh_out_set_token",
        // SAFETY: as above; a NULL token is the point.
        call(|e| unsafe { tokengate_refresh_out_set_token(out, ptr::null(), e) }),
    ));
    TOKENGATE_REFRESH_TRANSIENT
}

fn in_callback() {
    let server = TestServer::start();
    let b = builder(&format!("{}/api", server.url()));
    start_with(b, token("stale", 0, None));
    set_u64(b, tokengate_client_builder_set_refresh_timeout_ms, 300);
    let client = build(b);
    // SAFETY: a live client, passed as the callback's user data.
    ok(call(|e| unsafe {
        tokengate_client_set_refresh_callback(client, Some(meddling), client.cast(), e)
    }));
    assert!(get(client, "/x").is_err());
    free(client);
    let inside = std::mem::take(&mut *INSIDE.lock().unwrap());
    assert!(!inside.is_empty(), "the callback ran");
    for (name, result) in inside {
        let code = match name {
            "tokengate_refresh_out_set_message" => TOKENGATE_RESULT_INVALID_ARGUMENT,
            "tokengate_refresh_out_set_token" => TOKENGATE_RESULT_NULL_ARGUMENT,
            _ => TOKENGATE_RESULT_IN_CALLBACK,
        };
        expect(name, code, result);
    }
}

/// `tokengate_client_request`, `tokengate_client_send` and `tokengate_client_token` against
/// servers that fail in each way.
fn requests() {
    let server = TestServer::start();
    let api = format!("{}/api", server.url());
    let login = server.issue_token();
    // SAFETY: live clients, requests and responses, each freed once; valid pointers.
    unsafe {
        let (get_m, path) = (c("GET"), c("/x"));
        let with_token = |api: &str| {
            let b = builder(api);
            start_with(b, token(&login.access_token, 3_600_000, None));
            build(b)
        };
        let client = with_token(&api);
        let mut resp = ptr::null_mut();
        let one_shot = |client,
                        method: &str,
                        path: &str,
                        headers: (*const tokengate_header, usize),
                        body: (*const u8, usize)| {
            let (r, response) = request(client, method, path, headers, body);
            tokengate_response_free(response);
            r
        };
        let none = (ptr::null(), 0);
        expect(
            "tokengate_client_request",
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| {
                tokengate_client_request(
                    client,
                    get_m.as_ptr(),
                    path.as_ptr(),
                    ptr::null(),
                    0,
                    ptr::null(),
                    0,
                    ptr::null_mut(),
                    e,
                )
            }),
        );
        expect(
            "tokengate_client_request",
            TOKENGATE_RESULT_NULL_ARGUMENT,
            one_shot(client, "POST", "/x", none, (ptr::null(), 5)),
        );
        expect(
            "tokengate_client_request",
            TOKENGATE_RESULT_NULL_ARGUMENT,
            one_shot(client, "POST", "/x", (ptr::null(), 2), (ptr::null(), 0)),
        );
        expect(
            "tokengate_client_request",
            TOKENGATE_RESULT_INVALID_ARGUMENT,
            one_shot(client, "get", "/x", none, none_body()),
        );
        let (bad_name, v) = (c("Bad Name"), c("v"));
        let bad_headers = [tokengate_header {
            name: bad_name.as_ptr(),
            value: v.as_ptr(),
        }];
        expect(
            "tokengate_client_request",
            TOKENGATE_RESULT_INVALID_HEADER,
            one_shot(client, "GET", "/x", (bad_headers.as_ptr(), 1), none_body()),
        );
        expect(
            "tokengate_client_request",
            TOKENGATE_RESULT_INVALID_URL,
            one_shot(client, "GET", "/a b", none, none_body()),
        );
        assert_eq!(server.counters().api_calls, 0, "nothing was sent");
        let mut r = ptr::null_mut();
        let bad_path = c("/a b");
        ok(call(|e| {
            tokengate_request_new(get_m.as_ptr(), bad_path.as_ptr(), &mut r, e)
        }));
        expect(
            "tokengate_client_send",
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| tokengate_client_send(client, ptr::null(), &mut resp, e)),
        );
        expect(
            "tokengate_client_send",
            TOKENGATE_RESULT_INVALID_URL,
            call(|e| tokengate_client_send(client, r, &mut resp, e)),
        );
        tokengate_request_free(r);
        free(client);

        // The transport: the API resets the connection.
        let client = with_token(&api);
        server.set_api_reset(true);
        expect(
            "tokengate_client_request",
            TOKENGATE_RESULT_TRANSPORT,
            one_shot(client, "GET", "/x", none, none_body()),
        );
        expect(
            "tokengate_client_send",
            TOKENGATE_RESULT_TRANSPORT,
            send(client, "/x", 0),
        );
        server.set_api_reset(false);
        free(client);

        // Login required: no token and nothing to refresh with.
        let client = build(builder(&api));
        expect(
            "tokengate_client_request",
            TOKENGATE_RESULT_LOGIN_REQUIRED,
            one_shot(client, "GET", "/x", none, none_body()),
        );
        expect(
            "tokengate_client_send",
            TOKENGATE_RESULT_LOGIN_REQUIRED,
            send(client, "/x", 0),
        );
        free(client);

        // Token endpoint failures, each on a client that starts from a refresh token alone. A
        // backoff twice the budget: one attempt per call, so a transient failure is the refresh's
        // error and not a second attempt still running when the budget ends.
        let from_refresh = |budget: u64| {
            let b = builder(&api);
            oauth2(b, TOKENGATE_GRANT_REFRESH_TOKEN, &server.token_url());
            set(b, tokengate_client_builder_set_client_id, "demo-client");
            set(b, tokengate_client_builder_set_client_secret, "demo-secret");
            set(b, tokengate_client_builder_set_refresh_token, "saved");
            set_u64(b, tokengate_client_builder_set_refresh_timeout_ms, budget);
            ok(call(|e| {
                tokengate_client_builder_set_refresh_backoff_ms(b, 2 * budget, 2 * budget, e)
            }));
            build(b)
        };
        for (failure, code) in [
            (Failure::Status500, TOKENGATE_RESULT_REFRESH_FAILED),
            (Failure::InvalidClient, TOKENGATE_RESULT_CONFIG),
            (
                Failure::Hang(Duration::from_secs(2)),
                TOKENGATE_RESULT_REFRESH_TIMEOUT,
            ),
        ] {
            server.set_failure(failure);
            for function in [
                "tokengate_client_request",
                "tokengate_client_send",
                "tokengate_client_token",
            ] {
                let client = from_refresh(300);
                let result = match function {
                    "tokengate_client_request" => one_shot(client, "GET", "/x", none, none_body()),
                    "tokengate_client_send" => send(client, "/x", 0),
                    _ => {
                        let mut t = ptr::null_mut();
                        let r = call(|e| tokengate_client_token(client, &mut t, e));
                        tokengate_token_free(t);
                        r
                    }
                };
                expect(function, code, result);
                free(client);
            }
        }
        server.set_failure(Failure::None);
        let client = from_refresh(20_000);
        expect("tokengate_client_token", TOKENGATE_RESULT_LOGIN_REQUIRED, {
            let mut t = ptr::null_mut();
            call(|e| tokengate_client_token(client, &mut t, e))
        });
        free(client);

        // The request's own deadline.
        server.set_token_latency(Duration::from_secs(2));
        let client = from_refresh(20_000);
        expect(
            "tokengate_client_send",
            TOKENGATE_RESULT_DEADLINE,
            send(client, "/x", 200),
        );
        free(client);
        server.set_token_latency(Duration::ZERO);

        // TLS: an https front whose CA the client does not trust.
        let pki = TestPki::new("codes CA");
        let front = TlsFront::start(&pki, server.addr(), ClientCerts::Ignored);
        let client = with_token(&format!("{}/api", front.url()));
        expect(
            "tokengate_client_request",
            TOKENGATE_RESULT_TLS,
            one_shot(client, "GET", "/x", none, none_body()),
        );
        expect(
            "tokengate_client_send",
            TOKENGATE_RESULT_TLS,
            send(client, "/x", 0),
        );
        free(client);

        // A proxy that is not there.
        let b = builder(&api);
        start_with(b, token(&login.access_token, 3_600_000, None));
        set(b, tokengate_client_builder_set_proxy, &closed_port_url());
        let client = build(b);
        expect(
            "tokengate_client_request",
            TOKENGATE_RESULT_PROXY,
            one_shot(client, "GET", "/x", none, none_body()),
        );
        expect(
            "tokengate_client_send",
            TOKENGATE_RESULT_PROXY,
            send(client, "/x", 0),
        );
        free(client);
    }
}

fn none_body() -> (*const u8, usize) {
    (ptr::null(), 0)
}

/// `tokengate_client_send` of `GET path` with a deadline (0: none); frees the response.
fn send(client: *const tokengate_client, path: &str, timeout_ms: u64) -> Result<(), Failed> {
    let (m, p) = (c("GET"), c(path));
    let (mut r, mut resp) = (ptr::null_mut(), ptr::null_mut());
    // SAFETY: valid strings and out-pointers; request and response freed once.
    unsafe {
        ok(call(|e| {
            tokengate_request_new(m.as_ptr(), p.as_ptr(), &mut r, e)
        }));
        ok(call(|e| tokengate_request_set_timeout_ms(r, timeout_ms, e)));
        let result = call(|e| tokengate_client_send(client, r, &mut resp, e));
        tokengate_request_free(r);
        tokengate_response_free(resp);
        result
    }
}

/// The response functions: headers, bodies read whole and streamed.
fn responses() {
    let raw = RawServer::start(|req| {
        let reply = RawReply::json(200, &"x".repeat(40));
        if req.target.starts_with("/slow") {
            reply.trickle(Duration::from_millis(50))
        } else {
            reply
        }
    });
    let with = |timeout_ms: u64| {
        let b = builder(&raw.url());
        start_with(b, token("t", 3_600_000, None));
        set_u64(b, tokengate_client_builder_set_timeout_ms, timeout_ms);
        build(b)
    };
    let client = with(0);
    let (m, fast) = (c("GET"), c("/fast"));
    // SAFETY: live clients and responses, each freed once; valid pointers.
    unsafe {
        let mut resp = ptr::null_mut();
        ok(call(|e| {
            tokengate_client_request(
                client,
                m.as_ptr(),
                fast.as_ptr(),
                ptr::null(),
                0,
                ptr::null(),
                0,
                &mut resp,
                e,
            )
        }));
        let (mut n, mut v) = (ptr::null(), ptr::null());
        expect(
            "tokengate_response_header_at",
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| tokengate_response_header_at(resp, 0, ptr::null_mut(), &mut v, e)),
        );
        expect(
            "tokengate_response_header_at",
            TOKENGATE_RESULT_NOT_FOUND,
            call(|e| tokengate_response_header_at(resp, 99, &mut n, &mut v, e)),
        );
        assert!(n.is_null() && v.is_null(), "nothing written");
        let missing = c("X-Missing");
        expect(
            "tokengate_response_header",
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| tokengate_response_header(resp, ptr::null(), &mut v, e)),
        );
        expect(
            "tokengate_response_header",
            TOKENGATE_RESULT_INVALID_ARGUMENT,
            call(|e| tokengate_response_header(resp, bad(), &mut v, e)),
        );
        expect(
            "tokengate_response_header",
            TOKENGATE_RESULT_NOT_FOUND,
            call(|e| tokengate_response_header(resp, missing.as_ptr(), &mut v, e)),
        );
        let (mut data, mut len) = (ptr::null(), 0);
        expect(
            "tokengate_response_body",
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| tokengate_response_body(resp, 100, ptr::null_mut(), &mut len, e)),
        );
        expect(
            "tokengate_response_body",
            TOKENGATE_RESULT_BODY_TOO_LARGE,
            call(|e| tokengate_response_body(resp, 39, &mut data, &mut len, e)),
        );
        tokengate_response_free(resp);
        ok(call(|e| {
            tokengate_client_request(
                client,
                m.as_ptr(),
                fast.as_ptr(),
                ptr::null(),
                0,
                ptr::null(),
                0,
                &mut resp,
                e,
            )
        }));
        let mut buf = [0u8; 8];
        let mut read = 0;
        expect(
            "tokengate_response_read",
            TOKENGATE_RESULT_NULL_ARGUMENT,
            call(|e| tokengate_response_read(resp, ptr::null_mut(), 8, &mut read, e)),
        );
        ok(call(|e| {
            tokengate_response_read(resp, buf.as_mut_ptr(), buf.len(), &mut read, e)
        }));
        expect(
            "tokengate_response_body",
            TOKENGATE_RESULT_INVALID_ARGUMENT,
            call(|e| tokengate_response_body(resp, 100, &mut data, &mut len, e)),
        );
        tokengate_response_free(resp);
        free(client);

        // A body that trickles past the client's overall timeout, or the request's deadline.
        for (timeout, deadline, code) in [
            (300, 0, TOKENGATE_RESULT_TRANSPORT),
            (0, 300, TOKENGATE_RESULT_DEADLINE),
        ] {
            let client = with(timeout);
            for function in ["tokengate_response_body", "tokengate_response_read"] {
                let (slow, mut r) = (c("/slow"), ptr::null_mut());
                ok(call(|e| {
                    tokengate_request_new(m.as_ptr(), slow.as_ptr(), &mut r, e)
                }));
                ok(call(|e| tokengate_request_set_timeout_ms(r, deadline, e)));
                let mut resp = ptr::null_mut();
                ok(call(|e| tokengate_client_send(client, r, &mut resp, e)));
                tokengate_request_free(r);
                let result = if function == "tokengate_response_body" {
                    call(|e| tokengate_response_body(resp, 100, &mut data, &mut len, e))
                } else {
                    // Read until it fails (the first reads get the bytes that arrived in time).
                    loop {
                        let r = call(|e| {
                            tokengate_response_read(resp, buf.as_mut_ptr(), buf.len(), &mut read, e)
                        });
                        if r.is_err() || read == 0 {
                            break r;
                        }
                    }
                };
                expect(function, code, result);
                tokengate_response_free(resp);
            }
            free(client);
        }
    }
}

#[test]
fn every_documented_code_is_returned_and_no_other() {
    arguments();
    clients();
    sessions();
    device_logins();
    browser_logins();
    discovery();
    in_callback();
    requests();
    responses();
    let documented = documented();
    let seen = SEEN.lock().unwrap().clone();
    assert!(documented.len() > 50, "the header was read: {documented:?}");
    let mut missing = Vec::new();
    for (function, codes) in &documented {
        for code in codes {
            if !seen.get(function).is_some_and(|s| s.contains(code)) {
                missing.push(format!("{function} {code}"));
            }
        }
    }
    let mut undocumented = Vec::new();
    for (function, codes) in &seen {
        for code in codes {
            if !documented.get(function).is_some_and(|d| d.contains(code)) {
                undocumented.push(format!("{function} {code}"));
            }
        }
    }
    assert!(
        missing.is_empty() && undocumented.is_empty(),
        "documented but never triggered: {missing:#?}\nreturned but not documented: {undocumented:#?}"
    );
}
