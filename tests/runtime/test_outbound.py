"""The outbound HTTP client: allowlist before DNS, private addresses refused (also behind names and
redirects), the checked address pinned for the connection, size and time limits, the per-host breaker.

The loopback webhook receiver stands in for outside services; patching the stdlib resolver
(socket.getaddrinfo) fakes DNS answers, which are outside the product.
"""

import socket
import time
import uuid

import pytest

from apps.runtime import outbound
from apps.runtime.breaker import OPEN, CircuitBreaker
from apps.runtime.outbound import OutboundFailed, OutboundPolicy, OutboundRefused, host_allowed
from tests.runtime.fakes import webhook_server

REAL_GETADDRINFO = socket.getaddrinfo


def loopback_policy(*hosts: str, **kwargs) -> OutboundPolicy:
    """A policy that may reach the loopback receiver (a unique breaker scope per test)."""
    kwargs.setdefault("allow_private", True)
    kwargs.setdefault("breaker_scope", f"test_{uuid.uuid4().hex[:12]}")
    return OutboundPolicy(allowed_hosts=hosts or ("127.0.0.1",), **kwargs)


@pytest.fixture
def hooks():
    with webhook_server() as server:
        yield server


@pytest.fixture
def resolver(monkeypatch):
    """Record (and optionally fake) every DNS lookup: `resolver.answers[name] = [ip, …]`."""

    class Resolver:
        calls: list[str] = []
        answers: dict[str, list] = {}

        def __call__(self, host, port, *args, **kwargs):
            self.calls.append(host)
            answer = self.answers.get(host)
            if answer is None:
                return REAL_GETADDRINFO(host, port, *args, **kwargs)
            if callable(answer):
                answer = answer()
            return [
                (
                    socket.AF_INET6 if ":" in ip else socket.AF_INET,
                    socket.SOCK_STREAM,
                    6,
                    "",
                    (ip, port, 0, 0) if ":" in ip else (ip, port),
                )
                for ip in answer
            ]

    fake = Resolver()
    fake.calls, fake.answers = [], {}
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


# ---------------------------------------------------------------- the allowlist


@pytest.mark.parametrize(
    "entries, host, port, allowed",
    [
        (("api.acme.com",), "api.acme.com", 443, True),
        (("api.acme.com",), "API.Acme.COM.", 443, True),
        (("api.acme.com",), "acme.com", 443, False),
        (("api.acme.com",), "api.acme.com.evil.example", 443, False),
        (("api.acme.com",), "evil-api.acme.com", 443, False),
        (("*.acme.com",), "hooks.acme.com", 443, True),
        (("*.acme.com",), "a.b.acme.com", 80, True),
        (("*.acme.com",), "acme.com", 443, False),
        (("*.acme.com",), "evilacme.com", 443, False),
        (("*.acme.com",), "acme.com.evil.example", 443, False),
        (("api.acme.com:8443",), "api.acme.com", 8443, True),
        (("api.acme.com:8443",), "api.acme.com", 443, False),
        (("10.0.0.5:8443",), "10.0.0.5", 8443, True),
        (("10.0.0.5:8443",), "10.0.0.5", 80, False),
        (("10.0.0.5",), "10.0.0.6", 80, False),
        (("[::1]:8080",), "::1", 8080, True),
        (("[::1]:8080",), "[0:0:0:0:0:0:0:1]", 8080, True),
        (("[::1]:8080",), "::1", 8081, False),
        (("localhost",), "localhost", 5000, True),
        (("*.10.0.0.5",), "10.0.0.5", 80, False),
        ((), "api.acme.com", 443, False),
    ],
)
def test_allowlist_entries_match_exact_names_subdomains_and_ports(entries, host, port, allowed):
    assert host_allowed(entries, host, port) is allowed


def test_only_http_and_https_are_called(resolver):
    policy = loopback_policy("api.acme.com")
    for url in ("ftp://api.acme.com/x", "file:///etc/passwd", "gopher://api.acme.com/", "ws://api.acme.com/"):
        with pytest.raises(OutboundRefused) as refused:
            outbound.request(policy, "GET", url)
        assert refused.value.reason == "scheme", url
    assert resolver.calls == []


def test_a_host_off_the_allowlist_is_refused_before_any_dns_lookup(resolver):
    policy = OutboundPolicy(allowed_hosts=("api.acme.com", "*.hooks.acme.com"))
    for url in (
        "https://evil.example/",
        "https://hooks.acme.com/",
        "https://api.acme.com.evil.example/",
        "http://127.0.0.1/",
    ):
        with pytest.raises(OutboundRefused) as refused:
            outbound.request(policy, "POST", url, json={"a": 1})
        assert refused.value.reason == "host_not_allowed", url
        assert "not on this client's list of allowed hosts" in str(refused.value)
    assert resolver.calls == []


def test_credentials_in_the_url_are_refused(hooks):
    with pytest.raises(OutboundRefused) as refused:
        outbound.request(loopback_policy(), "GET", f"http://user:pw@127.0.0.1:{hooks.port}/")
    assert refused.value.reason == "bad_url"
    assert hooks.requests == []


# ---------------------------------------------------------------- private addresses


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.16.0.1",
        "172.31.255.254",
        "192.168.1.1",
        "169.254.169.254",
        "169.254.1.1",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "192.0.2.2",
        "[::1]",
        "[::]",
        "[::ffff:127.0.0.1]",
        "[::ffff:169.254.169.254]",
        "[fe80::1]",
        "[fc00::1]",
        "[fd00::2]",
        "[ff02::1]",
        "[2002:7f00:1::]",
        "[64:ff9b::a00:1]",
    ],
)
def test_private_loopback_link_local_and_reserved_addresses_are_refused(host, resolver):
    policy = OutboundPolicy(allowed_hosts=(host,))
    with pytest.raises(OutboundRefused) as refused:
        outbound.request(policy, "GET", f"http://{host}/")
    assert refused.value.reason == "private_address"
    assert resolver.calls == []  # an address literal needs no lookup


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/",
        "http://0177.0.0.1/",
        "http://0x7f.0.0.1/",
        "http://0x7f000001/",
        "http://127.1/",
        "http://017700000001/",
        "http://10.1/",
    ],
)
def test_other_ways_of_writing_an_ip_address_are_refused_even_when_listed(url, resolver):
    host = url.split("/")[2]
    for policy in (
        OutboundPolicy(allowed_hosts=(host,)),
        OutboundPolicy(allowed_hosts=(host,), allow_private=True),
    ):
        with pytest.raises(OutboundRefused) as refused:
            outbound.request(policy, "GET", url)
        assert refused.value.reason == "bad_url"
    assert resolver.calls == []


def test_a_name_that_resolves_to_loopback_is_refused_without_private_networks(hooks):
    with pytest.raises(OutboundRefused) as refused:
        outbound.request(
            OutboundPolicy(allowed_hosts=("localhost",)), "GET", f"http://localhost:{hooks.port}/hook"
        )
    assert refused.value.reason == "private_address"
    assert "localhost (which resolves to 127.0.0.1)" in str(refused.value)
    assert hooks.requests == []

    allowed = outbound.request(loopback_policy("localhost"), "GET", f"http://localhost:{hooks.port}/hook")
    assert allowed.status == 200
    assert len(hooks.requests) == 1


def test_a_name_with_any_private_address_among_its_answers_is_refused(resolver, hooks):
    resolver.answers["mixed.example"] = ["93.184.216.34", "10.0.0.7"]
    with pytest.raises(OutboundRefused) as refused:
        outbound.request(OutboundPolicy(allowed_hosts=("mixed.example",)), "GET", "http://mixed.example/")
    assert refused.value.reason == "private_address"
    assert "10.0.0.7" in str(refused.value)
    assert resolver.calls == ["mixed.example"]


def test_cloud_metadata_is_refused_even_with_private_networks_allowed(resolver):
    resolver.answers["metadata.internal"] = ["169.254.169.254"]
    policy = OutboundPolicy(
        allowed_hosts=("169.254.169.254", "metadata.internal", "[::ffff:a9fe:a9fe]"), allow_private=True
    )
    for url in (
        "http://169.254.169.254/latest/meta-data/",
        "http://metadata.internal/",
        "http://[::ffff:a9fe:a9fe]/",
    ):
        with pytest.raises(OutboundRefused) as refused:
            outbound.request(policy, "GET", url)
        assert refused.value.reason == "private_address", url


# ---------------------------------------------------------------- the call itself


def test_private_networks_allowed_reach_the_loopback_receiver_with_our_headers(hooks):
    hooks.route(
        "/hook", status=201, body='{"received": true}', headers={"X-Request-Id": "r-1", "X-Secret": "s"}
    )
    response = outbound.request(
        loopback_policy(),
        "POST",
        f"{hooks.url}/hook",
        json={"ticket": "INC-1", "text": "Grüße"},
        params={"source": "triplane"},
        headers={"X-Custom": "yes", "Host": "evil.example", "User-Agent": "curl"},
        idempotency_key="trace-1:3",
    )
    assert response.status == 201
    assert response.body == {"received": True}
    assert set(response.headers) == {"content-type", "content-length", "x-request-id", "date"}  # not X-Secret
    assert response.headers["x-request-id"] == "r-1"
    assert response.final_url == f"{hooks.url}/hook?source=triplane"
    assert response.elapsed_ms >= 0
    [seen] = hooks.requests
    assert (seen.method, seen.path) == ("POST", "/hook?source=triplane")
    assert seen.json == {"ticket": "INC-1", "text": "Grüße"}
    assert seen.headers["host"] == f"127.0.0.1:{hooks.port}"  # a caller cannot forge the Host
    assert seen.headers["user-agent"] == "Triplane"
    assert seen.headers["idempotency-key"] == "trace-1:3"
    assert seen.headers["x-custom"] == "yes"
    assert seen.headers["content-type"] == "application/json"


def test_text_answers_come_back_as_text(hooks):
    hooks.route("/page", body="<p>hello</p>", content_type="text/html; charset=utf-8")
    response = outbound.request(loopback_policy(), "GET", f"{hooks.url}/page")
    assert response.body == response.text == "<p>hello</p>"


def test_proxies_from_the_environment_are_ignored(hooks, monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9/")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert outbound.request(loopback_policy(), "GET", f"{hooks.url}/direct").status == 200
    assert hooks.paths() == ["/direct"]


def test_the_request_body_is_limited_before_anything_is_sent(hooks):
    policy = loopback_policy(max_request_bytes=1000)
    with pytest.raises(OutboundRefused) as refused:
        outbound.request(policy, "POST", f"{hooks.url}/hook", json={"blob": "x" * 1000})
    assert refused.value.reason == "too_large"
    assert hooks.requests == []


@pytest.mark.parametrize("send_length", [True, False])
def test_answers_larger_than_the_limit_are_refused(hooks, send_length):
    hooks.route("/big", body_size=50_000, send_length=send_length, content_type="text/plain")
    hooks.route("/fits", body_size=1_000, send_length=send_length, content_type="text/plain")
    policy = loopback_policy(max_response_bytes=1_000)
    with pytest.raises(OutboundRefused) as refused:
        outbound.request(policy, "GET", f"{hooks.url}/big")
    assert refused.value.reason == "too_large"
    assert "larger than 1,000 bytes" in str(refused.value)
    assert outbound.request(policy, "GET", f"{hooks.url}/fits").text == "x" * 1000


def test_a_compressed_answer_counts_its_decompressed_size(hooks):
    import gzip

    bomb = gzip.compress(b"x" * 5_000_000)
    hooks.route("/bomb", body=bomb, content_type="text/plain", headers={"Content-Encoding": "gzip"})
    hooks.route(
        "/small",
        body=gzip.compress(b"hello"),
        content_type="text/plain",
        headers={"Content-Encoding": "gzip"},
    )
    policy = loopback_policy(max_response_bytes=100_000)
    assert len(bomb) < 100_000
    with pytest.raises(OutboundRefused) as refused:
        outbound.request(policy, "GET", f"{hooks.url}/bomb")
    assert refused.value.reason == "too_large"
    assert outbound.request(policy, "GET", f"{hooks.url}/small").text == "hello"
    assert hooks.requests[0].headers["accept-encoding"] == "identity"


def test_a_slow_server_fails_transiently_within_the_time_limit(hooks):
    hooks.route("/slow", delay=5)
    started = time.monotonic()
    with pytest.raises(OutboundFailed) as failed:
        outbound.request(loopback_policy(timeout=0.5), "POST", f"{hooks.url}/slow", json={})
    assert time.monotonic() - started < 1.5
    assert failed.value.transient is True
    assert failed.value.maybe_sent is True  # the server had the request
    assert "did not answer in time" in str(failed.value)
    assert hooks.paths() == ["/slow"]


def test_a_closed_port_fails_transiently_and_nothing_was_sent():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with pytest.raises(OutboundFailed) as failed:
        outbound.request(loopback_policy(), "GET", f"http://127.0.0.1:{port}/")
    assert failed.value.transient is True
    assert failed.value.maybe_sent is False


def test_raise_for_status_makes_4xx_permanent_and_5xx_transient(hooks):
    hooks.route("/missing", status=404)
    hooks.route("/broken", status=502)
    policy = loopback_policy()
    assert outbound.request(policy, "GET", f"{hooks.url}/missing").status == 404
    with pytest.raises(OutboundFailed) as missing:
        outbound.request(policy, "GET", f"{hooks.url}/missing", raise_for_status=True)
    assert (missing.value.status, missing.value.transient) == (404, False)
    with pytest.raises(OutboundFailed) as broken:
        outbound.request(policy, "GET", f"{hooks.url}/broken", raise_for_status=True)
    assert (broken.value.status, broken.value.transient) == (502, True)


# ---------------------------------------------------------------- DNS pinning


def test_the_connection_goes_to_the_address_that_was_checked(resolver, hooks):
    """DNS rebinding: a second lookup would answer another address; there is no second lookup."""
    answers = iter([["127.0.0.1"], ["127.0.0.2"], ["127.0.0.2"]])
    resolver.answers["rebind.test"] = lambda: next(answers)
    response = outbound.request(
        loopback_policy("rebind.test"), "GET", f"http://rebind.test:{hooks.port}/pinned"
    )
    assert response.status == 200
    assert resolver.calls == ["rebind.test"]
    [seen] = hooks.requests
    assert seen.headers["host"] == f"rebind.test:{hooks.port}"  # the name travels; the address was pinned


def test_a_rebinding_name_is_checked_on_its_first_answer(resolver, hooks):
    answers = iter([["10.9.8.7"], ["93.184.216.34"]])
    resolver.answers["rebind.test"] = lambda: next(answers)
    with pytest.raises(OutboundRefused) as refused:
        outbound.request(OutboundPolicy(allowed_hosts=("rebind.test",)), "GET", "http://rebind.test/")
    assert refused.value.reason == "private_address"
    assert resolver.calls == ["rebind.test"]


# ---------------------------------------------------------------- redirects


def test_redirects_on_the_allowlist_are_followed(hooks):
    hooks.route("/start", status=302, location="/middle")
    hooks.route("/middle", status=307, location=f"{hooks.url}/end")
    hooks.route("/end", body='{"done": 1}')
    response = outbound.request(loopback_policy(), "GET", f"{hooks.url}/start", idempotency_key="k-1")
    assert response.body == {"done": 1}
    assert response.final_url == f"{hooks.url}/end"
    assert hooks.paths() == ["/start", "/middle", "/end"]
    assert all(r.headers["idempotency-key"] == "k-1" for r in hooks.requests)


def test_a_post_redirected_with_303_continues_as_get_and_307_keeps_the_body(hooks):
    hooks.route("/see-other", status=303, location="/result")
    hooks.route("/temporary", status=307, location="/again")
    policy = loopback_policy()
    outbound.request(policy, "POST", f"{hooks.url}/see-other", json={"a": 1})
    outbound.request(policy, "POST", f"{hooks.url}/temporary", json={"b": 2})
    methods = [(r.method, r.path, r.body) for r in hooks.requests]
    assert methods == [
        ("POST", "/see-other", b'{"a":1}'),
        ("GET", "/result", b""),
        ("POST", "/temporary", b'{"b":2}'),
        ("POST", "/again", b'{"b":2}'),
    ]


def test_a_redirect_off_the_allowlist_is_refused(hooks, resolver):
    hooks.route("/away", status=302, location="https://collector.evil.example/steal")
    with pytest.raises(OutboundRefused) as refused:
        outbound.request(loopback_policy(), "GET", f"{hooks.url}/away")
    assert refused.value.reason == "redirect_not_allowed"
    assert "collector.evil.example" in str(refused.value)
    assert resolver.calls == []


def test_a_redirect_to_another_port_of_an_allowed_host_is_refused_when_the_port_is_pinned(hooks):
    hooks.route("/hop", status=301, location=f"http://127.0.0.1:{hooks.port + 1}/x")
    with pytest.raises(OutboundRefused) as refused:
        outbound.request(loopback_policy(f"127.0.0.1:{hooks.port}"), "GET", f"{hooks.url}/hop")
    assert refused.value.reason == "redirect_not_allowed"


def test_a_redirect_to_a_private_or_metadata_address_is_refused(hooks, resolver):
    hooks.route("/meta", status=302, location="http://169.254.169.254/latest/meta-data/iam/")
    hooks.route("/inner", status=302, location="http://inner.test/admin")
    resolver.answers["inner.test"] = ["10.0.0.1"]
    policy = loopback_policy("127.0.0.1", "169.254.169.254", "inner.test")
    with pytest.raises(OutboundRefused) as refused:
        outbound.request(policy, "GET", f"{hooks.url}/meta")
    assert refused.value.reason == "private_address"
    # Same rules on every hop: with private networks off, a public first hop could not send us inside.
    hop_policy = OutboundPolicy(allowed_hosts=("inner.test",))
    with pytest.raises(OutboundRefused) as inner:
        outbound.request(hop_policy, "GET", "http://inner.test/admin")
    assert inner.value.reason == "private_address"


def test_redirect_loops_stop_at_max_redirects(hooks):
    hooks.route("/loop", status=302, location="/loop")
    with pytest.raises(OutboundRefused) as refused:
        outbound.request(loopback_policy(max_redirects=3), "GET", f"{hooks.url}/loop")
    assert refused.value.reason == "redirect_not_allowed"
    assert len(hooks.requests) == 4
    with pytest.raises(OutboundRefused):
        outbound.request(loopback_policy(max_redirects=0), "GET", f"{hooks.url}/loop")
    assert len(hooks.requests) == 5


def test_credentials_are_not_sent_to_another_origin(hooks):
    with webhook_server() as other:
        hooks.route("/go", status=307, location=f"{other.url}/landed")
        outbound.request(
            loopback_policy(),
            "POST",
            f"{hooks.url}/go",
            json={},
            headers={"Authorization": "Bearer secret", "X-Trace": "t"},
        )
        assert hooks.requests[0].headers["authorization"] == "Bearer secret"
        [landed] = other.requests
        assert "authorization" not in landed.headers
        assert landed.headers["x-trace"] == "t"


# ---------------------------------------------------------------- circuit breaker


def test_a_failing_host_opens_its_breaker_and_calls_stop_reaching_it(hooks):
    hooks.route("/down", status=503)
    policy = loopback_policy()
    for _ in range(5):
        assert outbound.request(policy, "POST", f"{hooks.url}/down", json={}).status == 503
    breaker = CircuitBreaker(f"outbound:{policy.breaker_scope}:127.0.0.1:{hooks.port}")
    assert breaker.state == OPEN
    with pytest.raises(OutboundFailed) as paused:
        outbound.request(policy, "POST", f"{hooks.url}/down", json={})
    assert paused.value.transient is True
    assert paused.value.maybe_sent is False
    assert "is failing; calls paused" in str(paused.value)
    assert len(hooks.requests) == 5  # the sixth call never left
    # Another client's agents have their own breaker for the same host.
    assert outbound.request(loopback_policy(), "GET", f"{hooks.url}/fine").status == 200


def test_timeouts_count_as_failures_and_a_success_resets_the_count(hooks):
    hooks.route("/slow", delay=2)
    policy = loopback_policy(timeout=0.2)
    breaker = CircuitBreaker(f"outbound:{policy.breaker_scope}:127.0.0.1:{hooks.port}")
    for _ in range(2):
        with pytest.raises(OutboundFailed):
            outbound.request(policy, "GET", f"{hooks.url}/slow")
    assert breaker.failures == 2
    outbound.request(policy, "GET", f"{hooks.url}/ok")
    assert breaker.failures == 0


# ---------------------------------------------------------------- the client's policy


def test_policy_for_client_uses_the_partner_settings(world):
    client = world.client_a
    client.outbound_hosts = ["hooks.acme.com", "*.acme.com", "10.0.0.5:8443"]
    client.outbound_private_networks = True
    policy = outbound.policy_for_client(client)
    assert policy.allowed_hosts == ("hooks.acme.com", "*.acme.com", "10.0.0.5:8443")
    assert policy.allow_private is True
    assert policy.breaker_scope == client.schema_name
    client.outbound_hosts, client.outbound_private_networks = [], False
    strict = outbound.policy_for_client(client)
    assert strict.allowed_hosts == () and strict.allow_private is False
    with pytest.raises(OutboundRefused) as refused:
        outbound.request(strict, "GET", "https://hooks.acme.com/")
    assert refused.value.reason == "host_not_allowed"
