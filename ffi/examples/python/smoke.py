"""tokengate from Python through ctypes: build a client from JSON, make a request, read the response,
show an error. No dependencies beyond the standard library.

    python3 smoke.py LIBRARY CONFIG_JSON PATH

LIBRARY is libtokengate_ffi.so (or .dylib); CONFIG_JSON a tokengate JSON configuration. Prints
"status=N body=..." and exits 0 when the request succeeded. ffi/tests/python_example.rs runs it
against the loopback test server.
"""

import ctypes
import sys

OK = 0


class Client(ctypes.Structure):
    """Opaque tokengate_client."""


class Response(ctypes.Structure):
    """Opaque tokengate_response."""


class Error(ctypes.Structure):
    """Opaque tokengate_error."""


def load(path):
    lib = ctypes.CDLL(path)
    c_size_p = ctypes.POINTER(ctypes.c_size_t)
    byte_p = ctypes.POINTER(ctypes.c_uint8)
    signatures = {
        "tokengate_client_new_from_json": (ctypes.c_uint32, [ctypes.c_char_p, ctypes.POINTER(ctypes.POINTER(Client))]),
        "tokengate_client_request": (ctypes.c_uint32, [
            ctypes.POINTER(Client), ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t,
            ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.POINTER(Response))]),
        "tokengate_client_free": (None, [ctypes.POINTER(Client)]),
        "tokengate_response_status": (ctypes.c_uint16, [ctypes.POINTER(Response)]),
        "tokengate_response_body": (ctypes.c_uint32, [ctypes.POINTER(Response), ctypes.POINTER(byte_p), c_size_p]),
        "tokengate_response_free": (None, [ctypes.POINTER(Response)]),
        "tokengate_last_error": (ctypes.POINTER(Error), []),
        "tokengate_error_code": (ctypes.c_uint32, [ctypes.POINTER(Error)]),
        "tokengate_error_message": (ctypes.c_char_p, [ctypes.POINTER(Error), c_size_p]),
        "tokengate_error_free": (None, [ctypes.POINTER(Error)]),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(lib, name)
        function.restype, function.argtypes = restype, argtypes
    return lib


def last_error(lib):
    """(code, message) of this thread's last failed call; frees the error."""
    error = lib.tokengate_last_error()
    if not error:
        return None
    try:
        return lib.tokengate_error_code(error), lib.tokengate_error_message(error, None).decode()
    finally:
        lib.tokengate_error_free(error)


def main(library, config, path):
    lib = load(library)

    # A broken configuration is an error code and a message, not a crash.
    bad = ctypes.POINTER(Client)()
    code = lib.tokengate_client_new_from_json(b'{"base_url": 42}', ctypes.byref(bad))
    print("bad config:", code, last_error(lib)[1])
    assert code != OK and not bad

    client = ctypes.POINTER(Client)()
    if lib.tokengate_client_new_from_json(config.encode(), ctypes.byref(client)) != OK:
        print("client:", last_error(lib))
        return 1
    try:
        response = ctypes.POINTER(Response)()
        body = b'{"from":"python"}'
        code = lib.tokengate_client_request(client, b"POST", path.encode(), None, 0, body, len(body),
                                            ctypes.byref(response))
        if code != OK:
            print("request:", last_error(lib))
            return 1
        try:
            data, size = ctypes.POINTER(ctypes.c_uint8)(), ctypes.c_size_t()
            lib.tokengate_response_body(response, ctypes.byref(data), ctypes.byref(size))
            text = ctypes.string_at(data, size.value).decode()
            status = lib.tokengate_response_status(response)
            print(f"status={status} body={text}")
            return 0 if status == 200 else 1
        finally:
            lib.tokengate_response_free(response)
    finally:
        lib.tokengate_client_free(client)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))
