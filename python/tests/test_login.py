"""Logging in from Python against the real test server. The device flow (RFC 8628): the prompt,
the user's approval or refusal, ``Cancel`` from another thread, a prompt that raises, and Ctrl-C
while the login waits. The browser flow (PKCE on a loopback redirect), with an HTTP client as
the browser: the exchange, a wrong ``state`` or ``iss``, a browser that never comes back.
Discovery of the endpoints (RFC 8414)."""

import _thread
import threading
import time
import urllib.error
import urllib.request

import pytest

import tokengate


@pytest.fixture
def fast_device(server):
    """Device logins that poll every 50 ms and expire after 20 s (a hang fails, not waits)."""
    server.command("device-interval 50ms")
    server.command("device-expires-in 20s")
    return server


def assert_polling_stopped(server, why="the login stopped"):
    """No device poll comes in four poll intervals (50 ms): a login still running would poll."""
    polls = server.counters()["device_polls"]
    time.sleep(0.2)
    assert server.counters()["device_polls"] == polls, why


def device_login(server):
    return tokengate.DeviceLogin(
        server.device_authorization_url,
        server.token_url,
        client_id=server.client_id,
        client_secret=server.client_secret,
    )


def test_the_user_approves_and_the_token_logs_the_client_in(fast_device, tmp_path):
    server = fast_device
    prompts = []

    def prompt(p):
        prompts.append((p.user_code, p.verification_uri, threading.get_ident()))
        assert server.command(f"approve {p.user_code}")["ok"]

    token = device_login(server).run(prompt)
    assert len(prompts) == 1 and prompts[0][2] == threading.get_ident(), "on the caller's thread"
    assert prompts[0][1].startswith(server.url)
    assert server.command(f"valid {token.access_token}")["valid"]
    assert token.refresh_token
    client = tokengate.Client(
        server.api_url, store=tokengate.FileStore(tmp_path / "t.json"), refresher=server.oauth2()
    )
    client.login(token)
    assert client.get("/x").status_code == 200
    assert server.counters()["device_grants"] == 1


def test_a_refusal_is_access_denied(fast_device):
    server = fast_device
    with pytest.raises(tokengate.LoginFailed) as caught:
        device_login(server).run(lambda p: server.command(f"deny {p.user_code}"))
    e = caught.value
    assert (e.kind, e.transient, e.oauth_error) == ("access_denied", False, "access_denied"), e
    assert server.counters()["device_grants"] == 0


def test_cancel_from_another_thread_stops_the_polling(fast_device):
    server = fast_device
    cancel = tokengate.Cancel()
    prompted = threading.Event()
    canceller = threading.Thread(target=lambda: (prompted.wait(10), cancel.cancel()))
    canceller.start()
    with pytest.raises(tokengate.LoginFailed) as caught:
        device_login(server).run(lambda p: prompted.set(), cancel=cancel)
    canceller.join(10)
    assert caught.value.kind == "cancelled" and cancel.cancelled
    assert_polling_stopped(server, "nothing is sent after the cancel")


def test_a_prompt_that_raises_cancels_the_login_and_its_exception_propagates(fast_device):
    server = fast_device

    def prompt(p):
        raise LookupError("no terminal to show the code on")

    with pytest.raises(LookupError, match="no terminal"):
        device_login(server).run(prompt)
    assert_polling_stopped(server)
    assert server.counters()["device_grants"] == 0


def test_ctrl_c_while_waiting_cancels_the_login(fast_device):
    server = fast_device

    def prompt(p):
        # As if the user pressed Ctrl-C while the login waits for the approval.
        threading.Timer(0.2, _thread.interrupt_main).start()

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        device_login(server).run(prompt)
    assert time.monotonic() - started < 10, "the interrupt was seen while waiting"
    assert_polling_stopped(server, "the login stopped with the interrupt")


def test_discovery_finds_the_endpoints_a_device_login_uses(fast_device):
    server = fast_device
    meta = tokengate.Metadata.discover(server.issuer)
    assert meta.issuer == server.issuer
    assert meta.token_endpoint == server.token_url
    assert meta.device_authorization_endpoint == server.device_authorization_url
    assert meta.revocation_endpoint == server.revocation_url
    login = tokengate.DeviceLogin.from_metadata(
        meta, client_id=server.client_id, client_secret=server.client_secret
    )
    token = login.run(lambda p: server.command(f"approve {p.user_code}"))
    assert server.command(f"valid {token.access_token}")["valid"]
    with pytest.raises(tokengate.LoginFailed) as caught:
        tokengate.Metadata.discover(server.url + "/elsewhere")
    assert caught.value.kind == "discovery", caught.value


def follow(url):
    """The user's browser: follows the authorization URL and its redirect to the loopback listener
    (no proxy, as a browser would not use one for 127.0.0.1). Returns the page it ends on."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=10) as page:
            return page.read().decode()
    except urllib.error.HTTPError as error:  # an error page is a page to a browser
        return error.read().decode()


def browser_login(server, **kwargs):
    return tokengate.BrowserLogin(
        server.authorization_url, server.token_url, client_id=server.public_client_id, **kwargs
    )


def test_a_browser_login_follows_the_redirect_and_exchanges_the_code(server):
    pages = []
    token = browser_login(server, scope="read").run(lambda url: pages.append(follow(url)))
    assert "close" in pages[0].lower(), pages
    assert server.command(f"valid {token.access_token}")["valid"]
    counters = server.counters()
    assert (counters["authorizations"], counters["code_exchanges"]) == (1, 1)


def test_a_redirect_with_another_state_is_refused_and_nothing_is_exchanged(server):
    server.command("redirect-fault wrong-state")
    pages = []
    with pytest.raises(tokengate.LoginFailed) as caught:
        browser_login(server).run(lambda url: pages.append(follow(url)))
    assert "login failed" in pages[0].lower(), "the browser is told"
    assert caught.value.kind == "state_mismatch", caught.value
    assert server.counters()["code_exchanges"] == 0


def test_a_browser_that_never_comes_back_times_out(server):
    started = time.monotonic()
    with pytest.raises(tokengate.LoginFailed) as caught:
        browser_login(server, timeout=0.3).run(lambda url: None)
    assert caught.value.kind == "timed_out", caught.value
    assert time.monotonic() - started < 10


def test_from_metadata_expects_the_issuer(server):
    meta = tokengate.Metadata.discover(server.issuer)
    login = tokengate.BrowserLogin.from_metadata(meta, client_id=server.public_client_id)
    server.command("redirect-fault wrong-iss")
    with pytest.raises(tokengate.LoginFailed) as caught:
        login.run(follow)
    assert caught.value.kind == "issuer_mismatch", caught.value
    server.command("redirect-fault none")
    assert server.command(f"valid {login.run(follow).access_token}")["valid"]
