"""TLS trust, mutual TLS and proxies, end to end: the test server behind its own HTTPS front with a
CA made when it starts (``--tls``, ``--mtls``) and a counting CONNECT proxy (``--proxy``). What the
server saw (handshakes, tunnels, token requests, API calls) is counted, not assumed."""

from __future__ import annotations

import pathlib

import pytest

import tokengate

#: Requests per proxied run (the tunnels they open are counted).
PROXIED_CALLS = 4


def expired_client(server, **kwargs):
    """A client whose first request must refresh the token through the token endpoint."""
    return server.client(token=server.login(expired=True), **kwargs)


@pytest.mark.server("--tls")
def test_calls_and_a_refresh_succeed_with_the_private_ca_given(server):
    assert server.api_url.startswith("https://")
    client = expired_client(server, ca_certs=server.ca_file, proxy_from_env=False)
    assert client.get("/x").json()["ok"] is True
    c = server.counters()
    assert c["refreshes"] == 1 and c["api_ok"] == 1, c
    assert c["tls_handshakes"] >= 2, "the API and the token endpoint, both over TLS"
    assert c["tls_failed_handshakes"] == 0


@pytest.mark.server("--tls")
def test_the_ca_as_pem_bytes_and_as_a_path_object(server):
    pem = pathlib.Path(server.ca_file).read_bytes()
    for ca in (pem, pathlib.Path(server.ca_file), [pem]):
        client = server.client(ca_certs=ca, roots="added_only", proxy_from_env=False)
        assert client.get("/x").status_code == 200
    assert server.counters()["api_ok"] == 3


@pytest.mark.server("--tls")
def test_without_the_ca_the_api_call_fails_with_a_tls_error_that_is_not_transient(server):
    client = server.client(proxy_from_env=False)
    with pytest.raises(tokengate.TlsError) as caught:
        client.get("/x")
    assert caught.value.transient is False
    assert "certificate" in str(caught.value).lower() or "issuer" in str(caught.value).lower()
    c = server.counters()
    # No handshake completed (the failed one is counted by the front on its own thread, after
    # the client has already given up: not asserted).
    assert c["api_calls"] == 0 and c["tls_handshakes"] == 0, c


@pytest.mark.server("--tls")
def test_without_the_ca_the_refresh_fails_as_configuration_not_transient(server):
    # The API is reached with the CA; the token endpoint through a refresher given its own
    # network settings without it.
    client = expired_client(
        server, ca_certs=server.ca_file, refresher=server.oauth2(roots="webpki")
    )
    with pytest.raises(tokengate.RefreshFailed) as caught:
        client.get("/x")
    e = caught.value
    assert (e.kind, e.configuration, e.transient) == ("tls", True, False)
    assert not client.gate.login_required, "an untrusted certificate is not a logout"
    c = server.counters()
    assert c["token_requests"] == 0 and c["api_calls"] == 0, c


@pytest.mark.server("--mtls")
def test_mutual_tls_accepted_with_the_client_certificate(server):
    client = expired_client(
        server,
        ca_certs=server.ca_file,
        client_cert=(server.client_cert_file, server.client_key_file),
        proxy_from_env=False,
    )
    assert client.get("/x").status_code == 200
    c = server.counters()
    assert c["refreshes"] == 1 and c["api_ok"] == 1, "the refresher presented it too"
    assert c["tls_failed_handshakes"] == 0


@pytest.mark.server("--mtls")
def test_mutual_tls_refused_without_the_client_certificate(server):
    client = server.client(ca_certs=server.ca_file, proxy_from_env=False)
    with pytest.raises(tokengate.TransportError) as caught:
        client.get("/x")
    c = server.counters()
    # No handshake completed (the failed one is counted by the front on its own thread, after
    # the client has already given up: not asserted).
    assert c["api_calls"] == 0 and c["tls_handshakes"] == 0, c
    # A key that does not fit the certificate is refused when the client is built.
    with pytest.raises(tokengate.ConfigError):
        server.client(ca_certs=server.ca_file, client_cert=(server.ca_file, server.client_key_file))


@pytest.mark.server("--tls", "--proxy")
def test_calls_and_refreshes_go_through_the_proxy_in_tunnels(server):
    client = expired_client(
        server, ca_certs=server.ca_file, proxy=server.proxy_url, max_idle_connections_per_host=0
    )
    for i in range(PROXIED_CALLS):
        assert client.get(f"/item/{i}").status_code == 200
    c = server.counters()
    assert c["refreshes"] == 1 and c["api_ok"] == PROXIED_CALLS, c
    # At least the refresher's tunnel and the API's; every connection went through the proxy.
    assert c["proxy_tunnels"] >= 2, c
    assert c["proxy_tunnels"] == c["tls_handshakes"], c
    assert c["proxy_plain_requests"] == 0, "https is tunnelled, never forwarded in clear"


@pytest.mark.server("--tls", "--proxy")
def test_the_proxy_from_the_environment_and_proxy_from_env_false(server, monkeypatch):
    monkeypatch.setenv("https_proxy", server.proxy_url)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert server.client(ca_certs=server.ca_file).get("/a").status_code == 200
    tunnels = server.counters()["proxy_tunnels"]
    assert tunnels >= 1
    direct = server.client(ca_certs=server.ca_file, proxy_from_env=False)
    assert direct.get("/b").status_code == 200
    bypass = server.client(ca_certs=server.ca_file, no_proxy="127.0.0.1")
    assert bypass.get("/c").status_code == 200
    c = server.counters()
    assert c["proxy_tunnels"] == tunnels and c["api_ok"] == 3, c


@pytest.mark.server("--proxy")
def test_an_unreachable_proxy_is_a_proxy_error(server):
    client = server.client(proxy="http://127.0.0.1:9", proxy_from_env=False)
    with pytest.raises(tokengate.ProxyError) as caught:
        client.get("/x")
    assert caught.value.proxy == "http://127.0.0.1:9"
    assert server.counters()["api_calls"] == 0


def test_bad_network_arguments_are_config_errors(server, tmp_path):
    bad = [
        {"ca_certs": 42},
        {"ca_certs": str(tmp_path / "missing.pem")},
        {"ca_certs": b"not pem at all"},
        {"roots": "everything"},
        {"roots": "added_only"},
        {"client_cert": 42},
        {"client_cert": (str(tmp_path / "missing.crt"), str(tmp_path / "missing.key"))},
        {"proxy": "ftp://127.0.0.1:21"},
    ]
    for kwargs in bad:
        with pytest.raises(tokengate.ConfigError):
            server.client(**kwargs)
    with pytest.raises(tokengate.ConfigError):
        tokengate.OAuth2.refresh_token(server.token_url, roots="sometimes")
    with pytest.raises(tokengate.ConfigError):
        server.client(refresher=server.oauth2(ca_certs=str(tmp_path / "missing.pem")))
    assert server.counters()["api_calls"] == 0
