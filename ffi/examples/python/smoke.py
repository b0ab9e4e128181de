"""tokengate from Python through ctypes: build a client, make a request, read the response, see
errors as codes and messages. No dependencies beyond the standard library.

    python3 smoke.py LIBRARY BASE_URL TOKEN_URL REFRESH_TOKEN PATH

LIBRARY is libtokengate.so (or libtokengate_ffi.so in cargo's target directory); BASE_URL the API,
TOKEN_URL its OAuth2 token endpoint, REFRESH_TOKEN a saved refresh token (the client starts from
it alone), PATH the path to POST to. Prints what it sees and exits 0 when the request succeeded.
ffi/tests/examples.rs runs it against the loopback test server.
"""

import ctypes
import sys

OK = 0
GRANT_REFRESH_TOKEN = 1


class Opaque(ctypes.Structure):
    """A tokengate handle: only ever used through a pointer."""


P = ctypes.POINTER(Opaque)
PP = ctypes.POINTER(P)
u32, u64, size_t = ctypes.c_uint32, ctypes.c_uint64, ctypes.c_size_t

# uint32_t (*)(void *user_data, const tokengate_token *current, tokengate_refresh_out *out)
REFRESH_CALLBACK = ctypes.CFUNCTYPE(u32, ctypes.c_void_p, P, P)


def load(path):
    lib = ctypes.CDLL(path)
    signatures = {
        "tokengate_version": (ctypes.c_char_p, []),
        "tokengate_check_version": (u32, [u32, u32, u32, PP]),
        "tokengate_client_builder_new": (u32, [ctypes.c_char_p, PP, PP]),
        "tokengate_client_builder_set_oauth2": (u32, [P, u32, ctypes.c_char_p, PP]),
        "tokengate_client_builder_set_client_id": (u32, [P, ctypes.c_char_p, PP]),
        "tokengate_client_builder_set_client_secret": (u32, [P, ctypes.c_char_p, PP]),
        "tokengate_client_builder_set_refresh_token": (u32, [P, ctypes.c_char_p, PP]),
        "tokengate_client_builder_set_refresh_timeout_ms": (u32, [P, u64, PP]),
        "tokengate_client_builder_build": (u32, [P, PP, PP]),
        "tokengate_client_builder_free": (None, [P]),
        "tokengate_client_set_refresh_callback": (u32, [P, REFRESH_CALLBACK, ctypes.c_void_p, PP]),
        "tokengate_client_request": (u32, [
            P, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, size_t,
            ctypes.c_char_p, size_t, PP, PP]),
        "tokengate_client_free": (None, [P]),
        "tokengate_response_status": (ctypes.c_uint16, [P]),
        "tokengate_response_body": (u32, [
            P, size_t, ctypes.POINTER(ctypes.POINTER(ctypes.c_uint8)), ctypes.POINTER(size_t), PP]),
        "tokengate_response_free": (None, [P]),
        "tokengate_error_code": (u32, [P]),
        "tokengate_error_message": (ctypes.c_char_p, [P, ctypes.POINTER(size_t)]),
        "tokengate_error_is_transient": (ctypes.c_int, [P]),
        "tokengate_error_free": (None, [P]),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(lib, name)
        function.restype, function.argtypes = restype, argtypes
    return lib


class TokengateError(Exception):
    def __init__(self, code, message, transient):
        super().__init__(f"{code} {message}")
        self.code, self.message, self.transient = code, message, transient


def check(lib, function, *args):
    """Calls a tokengate function with a last error out-param; raises TokengateError on failure.
    The error comes from the call itself, not from a thread-local."""
    error = P()
    code = function(*args, ctypes.byref(error))
    if code != OK:
        try:
            raise TokengateError(code, lib.tokengate_error_message(error, None).decode(),
                                 bool(lib.tokengate_error_is_transient(error)))
        finally:
            lib.tokengate_error_free(error)


def client(lib, base_url, setup):
    """A client of base_url; setup(builder) calls the setters."""
    builder = P()
    check(lib, lib.tokengate_client_builder_new, base_url.encode(), ctypes.byref(builder))
    try:
        setup(builder)
        out = P()
        check(lib, lib.tokengate_client_builder_build, builder, ctypes.byref(out))
        return out
    finally:
        lib.tokengate_client_builder_free(builder)


def request(lib, c, method, path, body=b""):
    """(status, body text)."""
    response = P()
    check(lib, lib.tokengate_client_request, c, method.encode(), path.encode(), None, 0,
          body, len(body), ctypes.byref(response))
    try:
        data, size = ctypes.POINTER(ctypes.c_uint8)(), size_t()
        check(lib, lib.tokengate_response_body, response, 1 << 20, ctypes.byref(data),
              ctypes.byref(size))
        text = ctypes.string_at(data, size.value).decode() if size.value else ""
        return lib.tokengate_response_status(response), text
    finally:
        lib.tokengate_response_free(response)


def main(library, base_url, token_url, refresh_token, path):
    lib = load(library)
    check(lib, lib.tokengate_check_version, 0, 2, 0)
    print("tokengate", lib.tokengate_version().decode())

    # A broken configuration is an error code and a message, not a crash.
    try:
        client(lib, "ftp://example.com", lambda b: None)
    except TokengateError as e:
        print("bad base URL:", e.code, e.message)

    # A refresh callback that raises: ctypes returns 0 for it, which tokengate counts as a
    # transient failure (never "OK", never a logout).
    def raising(user_data, current, out):
        raise RuntimeError("the custom login API is down")

    callback = REFRESH_CALLBACK(raising)  # kept alive as long as the client
    c = client(lib, base_url, lambda b: (
        check(lib, lib.tokengate_client_builder_set_refresh_token, b, b"saved-refresh"),
        check(lib, lib.tokengate_client_builder_set_refresh_timeout_ms, b, 300)))
    try:
        check(lib, lib.tokengate_client_set_refresh_callback, c, callback, None)
        try:
            request(lib, c, "GET", path)
        except TokengateError as e:
            print("raising callback:", e.code, f"transient={int(e.transient)}")
    finally:
        lib.tokengate_client_free(c)

    # The real thing: start from a saved refresh token alone.
    c = client(lib, base_url, lambda b: (
        check(lib, lib.tokengate_client_builder_set_oauth2, b, GRANT_REFRESH_TOKEN,
              token_url.encode()),
        check(lib, lib.tokengate_client_builder_set_client_id, b, b"demo-client"),
        check(lib, lib.tokengate_client_builder_set_client_secret, b, b"demo-secret"),
        check(lib, lib.tokengate_client_builder_set_refresh_token, b, refresh_token.encode())))
    try:
        try:
            request(lib, c, "get", path)
        except TokengateError as e:
            print("lower-case method:", e.code, e.message)
        status, text = request(lib, c, "POST", path, b'{"from":"python"}')
        print(f"status={status} body={text}")
        return 0 if status == 200 else 1
    finally:
        lib.tokengate_client_free(c)


if __name__ == "__main__":
    if len(sys.argv) != 6:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))
