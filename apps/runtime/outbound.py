"""The one outbound HTTP client (webhooks, http.request, LLM endpoints): it refuses what is not allowed.

    response = request(policy_for_client(client), "POST", url, json=payload, idempotency_key=key)

Every call, and every redirect hop, passes the same checks before a byte leaves:
- only http and https, no credentials in the URL, no ambiguous numeric hosts (`2130706433`, `0x7f.1`);
- the host must be on the policy's allowlist — checked on the name as written, before any DNS lookup;
- the name is resolved once and refused if any address is private, loopback, link-local, multicast,
  reserved or unspecified (also inside IPv4-mapped / 6to4 / NAT64 IPv6 forms), unless the partner
  allowed private networks for this client;
- the connection goes to an address that was checked (pinned: no second lookup, so a DNS answer that
  changes between the check and the connect — DNS rebinding — cannot redirect it), while the request
  still carries the real Host header and TLS checks the certificate for the real name (SNI).
Redirects are followed by hand (at most `max_redirects`), each hop checked again; credentials are not
sent to another origin. Proxies from the environment are ignored. The response is read in pieces and
refused past `max_response_bytes`; the whole call, redirects included, ends by `timeout` seconds (the
name lookup itself is bounded by the system resolver's own timeouts).
A circuit breaker per host pauses calls to a host that keeps failing (timeouts, refused connections,
5xx answers).

`OutboundRefused` means the call was not made (or its answer was thrown away) because a rule forbids
it — retrying will not help. `OutboundFailed` means the call did not succeed: `transient` failures
(timeouts, connection errors, 5xx, an open breaker) are worth retrying, and `maybe_sent` says whether
the request may have reached the server.

Only the runtime's tools and LLM client import this module (an import-linter contract).
"""

from __future__ import annotations

import ipaddress
import json as jsonlib
import re
import socket
import ssl
import time
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import certifi
import httpcore
import httpx

from .breaker import CircuitBreaker

if TYPE_CHECKING:
    from apps.tenancy.models import Client

USER_AGENT = "Triplane"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_URL_LENGTH = 8000
# Headers the client sets itself; a caller cannot override them (a forged Host would defeat the allowlist).
RESERVED_HEADERS = frozenset(
    [
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "proxy-authorization",
        "proxy-connection",
        "accept-encoding",
        "user-agent",
        "idempotency-key",
    ]
)
# Dropped when a redirect leaves the origin the caller chose.
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie"})
# The response headers a caller gets back.
KEPT_HEADERS = [
    "content-type",
    "content-length",
    "location",
    "retry-after",
    "date",
    "etag",
    "last-modified",
    "x-request-id",
]

NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Cloud metadata services (instance credentials): refused even when private networks are allowed.
METADATA = frozenset(map(ipaddress.ip_address, ["169.254.169.254", "fd00:ec2::254", "100.100.100.200"]))
NUMERIC_LABEL = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")


class OutboundRefused(Exception):
    """The call is not allowed. `reason`: scheme, host_not_allowed, private_address,
    redirect_not_allowed, too_large or bad_url."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


class OutboundFailed(Exception):
    """The call failed. `transient`: worth retrying; `maybe_sent`: the server may have received it;
    `status`: the HTTP status when the failure is an answer (see `raise_for_status`)."""

    def __init__(self, message: str, *, transient: bool, maybe_sent: bool = False, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.maybe_sent = maybe_sent
        self.status = status


@dataclass(frozen=True)
class OutboundPolicy:
    """What one caller may reach and how much. Allowlist entries: api.acme.com, *.acme.com (subdomains
    only), localhost, 10.0.0.5:8443, [::1]:8080 — an entry with a port allows only that port."""

    allowed_hosts: tuple[str, ...]
    allow_private: bool = False
    timeout: float = 10.0
    max_response_bytes: int = 1_000_000
    max_request_bytes: int = 256_000
    max_redirects: int = 3
    # Namespaces the circuit breakers (`outbound:<scope>:<host>`): the client's schema.
    breaker_scope: str = "public"


@dataclass(frozen=True)
class OutboundResponse:
    """An answer: `body` is the parsed JSON when the server said JSON (and it parses), else the text."""

    status: int
    headers: dict[str, str]
    body: Any
    text: str
    elapsed_ms: int
    final_url: str

    @property
    def ok(self) -> bool:
        return self.status < 400


def policy_for_client(client: Client) -> OutboundPolicy:
    """The policy for the agents of `client`: the partner-set allowlist and private-network switch."""
    hosts = client.outbound_hosts if isinstance(client.outbound_hosts, list) else []
    return OutboundPolicy(
        allowed_hosts=tuple(str(host) for host in hosts),
        allow_private=bool(client.outbound_private_networks),
        breaker_scope=client.schema_name,
    )


# ---------------------------------------------------------------- allowlist


@dataclass(frozen=True)
class _Entry:
    host: str  # lower-case name without trailing dot, or a compressed IP address
    wildcard: bool
    port: int | None


def _parse_entry(entry: str) -> _Entry | None:
    text = entry.strip().lower()
    port: int | None = None
    if text.startswith("["):
        inside, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                return None
            port = int(rest[1:])
        try:
            return _Entry(ipaddress.IPv6Address(inside).compressed, False, port)
        except ValueError:
            return None
    if text.count(":") == 1:
        text, _, port_text = text.partition(":")
        if not port_text.isdigit():
            return None
        port = int(port_text)
    wildcard = text.startswith("*.")
    if wildcard:
        text = text[2:]
    text = text.rstrip(".")
    if not text:
        return None
    try:
        address = ipaddress.ip_address(text).compressed
    except ValueError:
        return _Entry(text, wildcard, port)
    return None if wildcard else _Entry(address, False, port)  # `*.10.0.0.5` means nothing


@lru_cache(maxsize=512)
def _entries(allowed_hosts: tuple[str, ...]) -> tuple[_Entry, ...]:
    return tuple(entry for entry in map(_parse_entry, allowed_hosts) if entry is not None)


def host_allowed(allowed_hosts: tuple[str, ...], host: str, port: int) -> bool:
    """Is `host` (a name or an IP address, as written in the URL) on `port` covered by the allowlist?"""
    host = host.strip().lower().removeprefix("[").removesuffix("]").rstrip(".")
    try:
        host = ipaddress.ip_address(host).compressed
        is_ip = True
    except ValueError:
        is_ip = False
    for entry in _entries(tuple(allowed_hosts)):
        if entry.port is not None and entry.port != port:
            continue
        if entry.wildcard:
            if not is_ip and host.endswith("." + entry.host):
                return True
        elif host == entry.host:
            return True
    return False


# ---------------------------------------------------------------- addresses


def address_blocked(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Is this address private, loopback, link-local, multicast, reserved, unspecified or otherwise not
    a public internet address (also when an IPv6 address carries an IPv4 one inside)?"""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is None and address.teredo is not None:
            embedded = address.teredo[1]
        if embedded is not None and address_blocked(embedded):
            return True
    return (
        address in METADATA
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


@dataclass(frozen=True)
class _Target:
    url: httpx.URL
    host: str  # as the connection sees it (raw host, ASCII)
    port: int
    # (family, sockaddr) pairs that were checked; the connection uses only these.
    addresses: tuple[tuple[int, tuple], ...] = field(default=())

    @property
    def breaker_name(self) -> str:
        default = 443 if self.url.scheme == "https" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"


def _parse_url(url: str | httpx.URL, params: dict | None = None) -> httpx.URL:
    if isinstance(url, str) and len(url) > MAX_URL_LENGTH:
        raise OutboundRefused("bad_url", f"The URL is longer than {MAX_URL_LENGTH:,} characters.")
    try:
        parsed = httpx.URL(url)
        if params:
            parsed = parsed.copy_merge_params(params)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise OutboundRefused("bad_url", f"Not a valid URL: {str(url)[:200]!r} ({exc}).") from None
    return parsed


def _check_url(policy: OutboundPolicy, url: httpx.URL) -> _Target:
    """Scheme, shape and allowlist — nothing here touches the network."""
    shown = str(url)[:200]
    if url.scheme not in ("http", "https"):
        raise OutboundRefused(
            "scheme", f"Only http and https calls are made, not {url.scheme or 'this'}: {shown}."
        )
    if url.userinfo:
        raise OutboundRefused("bad_url", "Credentials in the URL are not accepted; use a header.")
    try:
        host = url.raw_host.decode("ascii").lower()
    except UnicodeDecodeError:
        raise OutboundRefused("bad_url", f"Not a valid host in {shown}.") from None
    if not host:
        raise OutboundRefused("bad_url", f"The URL has no host: {shown}.")
    if "%" in host:
        raise OutboundRefused("bad_url", "IPv6 zone identifiers are not accepted in URLs.")
    port = url.port if url.port is not None else (443 if url.scheme == "https" else 80)
    if not 0 < port < 65536:
        raise OutboundRefused("bad_url", f"Not a valid port: {port}.")
    name = host.rstrip(".")
    if ":" not in name and NUMERIC_LABEL.match(name.rsplit(".", 1)[-1]):
        # Browsers and C resolvers read 2130706433, 0177.0.0.1 and 127.1 as IPv4 addresses; so that an
        # address can only be written one way, anything but the plain dotted form is refused.
        try:
            ipaddress.IPv4Address(name)
        except ValueError:
            raise OutboundRefused(
                "bad_url", f"{name} is not a host name or a plain IPv4 address (like 10.0.0.5)."
            ) from None
    if not host_allowed(policy.allowed_hosts, name, port):
        raise OutboundRefused(
            "host_not_allowed",
            f"{name}{'' if url.port is None else f':{port}'} is not on this client's list of allowed hosts.",
        )
    return _Target(url=url, host=host, port=port)


def _resolve(policy: OutboundPolicy, target: _Target) -> _Target:
    """Resolve the host once and check every address it has."""
    name = target.host.rstrip(".")
    try:
        literal: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(name)
    except ValueError:
        literal = None
    if literal is not None:
        family = socket.AF_INET6 if literal.version == 6 else socket.AF_INET
        sockaddr: tuple = (
            (str(literal), target.port, 0, 0) if literal.version == 6 else (str(literal), target.port)
        )
        infos: list[tuple[int, tuple]] = [(family, sockaddr)]
    else:
        try:
            found = socket.getaddrinfo(name, target.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        except (socket.gaierror, UnicodeError, OSError) as exc:
            # EAI_AGAIN: the resolver could not answer now; anything else (no such name) will not change soon.
            transient = isinstance(exc, socket.gaierror) and exc.errno == socket.EAI_AGAIN
            raise OutboundFailed(f"{name} could not be resolved ({exc}).", transient=transient) from None
        infos = []
        for family, _type, _proto, _canon, address in found:
            if family in (socket.AF_INET, socket.AF_INET6) and (family, address) not in infos:
                infos.append((family, address))
        if not infos:
            raise OutboundFailed(f"{name} has no address.", transient=True)
    for _family, address in infos:
        ip = ipaddress.ip_address(str(address[0]).split("%", 1)[0])
        if ip in METADATA or (ip.version == 6 and ip.ipv4_mapped in METADATA):
            raise OutboundRefused(
                "private_address", f"{name} is a cloud metadata address; it is never called."
            )
        if not policy.allow_private and address_blocked(ip):
            shown = name if literal is not None else f"{name} (which resolves to {ip})"
            raise OutboundRefused(
                "private_address",
                f"{shown} is a private, loopback or link-local address; this client's agents may not "
                "call those.",
            )
    return _Target(url=target.url, host=target.host, port=target.port, addresses=tuple(infos))


# ---------------------------------------------------------------- pinned connections


class _DeadlineStream(httpcore.NetworkStream):
    """A stream whose every read and write also ends by the call's deadline."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: float):
        self._inner = inner
        self._deadline = deadline

    def _left(self, timeout: float | None, error: type[Exception]) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise error("The call took longer than its time limit.")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(
            ssl_context, server_hostname, self._left(timeout, httpcore.ConnectTimeout)
        )
        return _DeadlineStream(inner, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _PinnedBackend(httpcore.NetworkBackend):
    """Connects to the checked addresses of one host, and to nothing else; never resolves a name."""

    def __init__(self, target: _Target, deadline: float):
        self._target = target
        self._deadline = deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        if host.lower() != self._target.host or port != self._target.port:
            raise httpcore.ConnectError(f"Refusing to connect to {host}:{port}, which was not checked.")
        # Local import: httpcore's sync stream handles TLS (and TLS in TLS) for a connected socket.
        from httpcore._backends.sync import SyncStream

        last: Exception | None = None
        for family, sockaddr in self._target.addresses:
            left = self._deadline - time.monotonic()
            if left <= 0:
                break
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(left if timeout is None else min(timeout, left))
                sock.connect(sockaddr)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except TimeoutError as exc:
                sock.close()
                last = httpcore.ConnectTimeout(str(exc) or "timed out")
                continue
            except OSError as exc:
                sock.close()
                last = httpcore.ConnectError(str(exc))
                continue
            return _DeadlineStream(SyncStream(sock), self._deadline)
        raise last or httpcore.ConnectTimeout("The call took longer than its time limit.")

    def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> Any:
        raise httpcore.ConnectError("Unix sockets are not reachable from the outbound client.")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=certifi.where())


class _PinnedTransport(httpx.HTTPTransport):
    def __init__(self, target: _Target, deadline: float):
        super().__init__(verify=_ssl_context(), trust_env=False, retries=0)
        # httpx's transport builds its pool without a way to pass a network backend: replace the pool
        # with one that connects only to the pinned addresses (same settings otherwise).
        self._pool = httpcore.ConnectionPool(
            ssl_context=_ssl_context(),
            max_connections=1,
            max_keepalive_connections=0,
            network_backend=_PinnedBackend(target, deadline),
        )


# ---------------------------------------------------------------- requests


def _failure(exc: httpx.HTTPError, host: str) -> OutboundFailed:
    if isinstance(exc, httpx.ConnectTimeout):
        return OutboundFailed(f"{host} did not accept the connection in time.", transient=True)
    if isinstance(exc, httpx.TimeoutException):
        return OutboundFailed(f"{host} did not answer in time.", transient=True, maybe_sent=True)
    if isinstance(exc, httpx.ConnectError):
        if "CERTIFICATE_VERIFY_FAILED" in str(exc) or "certificate" in str(exc).lower():
            return OutboundFailed(f"The TLS certificate of {host} could not be verified.", transient=False)
        return OutboundFailed(f"{host} could not be reached ({exc}).", transient=True)
    if isinstance(exc, httpx.RemoteProtocolError | httpx.NetworkError):
        return OutboundFailed(f"The connection to {host} broke ({exc}).", transient=True, maybe_sent=True)
    return OutboundFailed(f"The call to {host} failed ({type(exc).__name__}: {exc}).", transient=False)


def _decode(raw: bytes, encoding: str, limit: int, host: str) -> bytes:
    """Undo gzip/deflate within the size limit (we ask for none, but servers may send it anyway)."""
    encoding = encoding.strip().lower()
    if encoding not in ("gzip", "x-gzip", "deflate"):
        return raw
    # 47: a gzip or zlib header; -15: raw deflate, which some servers send as "deflate".
    for wbits in (47, -15) if encoding == "deflate" else (47,):
        inflater = zlib.decompressobj(wbits)
        try:
            data = inflater.decompress(raw, limit + 1)
        except zlib.error:
            continue
        if len(data) > limit or inflater.unconsumed_tail:
            raise OutboundRefused("too_large", f"The answer from {host} is larger than {limit:,} bytes.")
        return data
    raise OutboundFailed(f"{host} sent a body that could not be decompressed.", transient=False)


def _read(policy: OutboundPolicy, response: httpx.Response, host: str) -> bytes:
    limit = policy.max_response_bytes
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise OutboundRefused("too_large", f"The answer from {host} is larger than {limit:,} bytes.")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_raw():
        size += len(chunk)
        if size > limit:
            raise OutboundRefused("too_large", f"The answer from {host} is larger than {limit:,} bytes.")
        chunks.append(chunk)
    return _decode(b"".join(chunks), response.headers.get("content-encoding", ""), limit, host)


def _body(raw: bytes, content_type: str) -> tuple[str, Any]:
    charset = "utf-8"
    match = re.search(r"charset=([\w-]+)", content_type, re.IGNORECASE)
    if match:
        charset = match.group(1)
    try:
        text = raw.decode(charset, errors="replace")
    except LookupError:
        text = raw.decode("utf-8", errors="replace")
    if "json" in content_type.lower() and text.strip():
        try:
            return text, jsonlib.loads(text)
        except ValueError:
            return text, text
    return text, text


def _breaker(policy: OutboundPolicy, target: _Target) -> CircuitBreaker:
    return CircuitBreaker(f"outbound:{policy.breaker_scope}:{target.breaker_name}")


def _send(
    policy: OutboundPolicy,
    target: _Target,
    method: str,
    headers: dict[str, str],
    content: bytes | None,
    deadline: float,
) -> tuple[httpx.Response, bytes | None]:
    """One hop to one checked target; the body is read unless the answer is a redirect."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise OutboundFailed(f"{target.host} did not answer in time.", transient=True, maybe_sent=True)
    transport = _PinnedTransport(target, deadline)
    with httpx.Client(
        transport=transport, trust_env=False, follow_redirects=False, timeout=httpx.Timeout(left)
    ) as client:
        try:
            outgoing = client.build_request(method, target.url, headers=headers, content=content)
            response = client.send(outgoing, stream=True)
        except httpx.HTTPError as exc:
            raise _failure(exc, target.host) from None
        try:
            if response.status_code in REDIRECT_STATUSES and response.headers.get("location"):
                return response, None
            return response, _read(policy, response, target.host)
        except httpx.HTTPError as exc:
            raise _failure(exc, target.host) from None
        finally:
            response.close()


def _headers(headers: dict | None, idempotency_key: str | None, has_json: bool) -> dict[str, str]:
    clean: dict[str, str] = {}
    for name, value in (headers or {}).items():
        key = str(name).strip()
        if key.lower() in RESERVED_HEADERS or not key:
            continue
        text = str(value)
        if "\r" in text or "\n" in text or "\r" in key or "\n" in key:
            raise OutboundRefused("bad_url", f"The header {key[:50]!r} contains a line break.")
        clean[key] = text
    clean["User-Agent"] = USER_AGENT
    clean["Accept-Encoding"] = "identity"
    if idempotency_key:
        clean["Idempotency-Key"] = str(idempotency_key)
    if has_json:
        clean.setdefault("Content-Type", "application/json")
    return clean


def request(
    policy: OutboundPolicy,
    method: str,
    url: str,
    *,
    json: Any = None,
    params: dict | None = None,
    headers: dict | None = None,
    idempotency_key: str | None = None,
    raise_for_status: bool = False,
) -> OutboundResponse:
    """Make one HTTP call under `policy` (see the module docstring for every check), following
    redirects by hand. Answers of any status come back as an OutboundResponse unless
    `raise_for_status`, which turns 4xx/5xx into OutboundFailed (5xx, 408 and 429 transient)."""
    method = method.upper()
    if method not in METHODS:
        raise ValueError(f"Unsupported HTTP method {method!r}.")
    content: bytes | None = None
    if json is not None:
        try:
            content = jsonlib.dumps(json, ensure_ascii=False, separators=(",", ":")).encode()
        except (TypeError, ValueError) as exc:
            raise OutboundRefused("bad_url", f"The body cannot be sent as JSON ({exc}).") from None
        if len(content) > policy.max_request_bytes:
            raise OutboundRefused(
                "too_large", f"The request body is larger than {policy.max_request_bytes:,} bytes."
            )
    send_headers = _headers(headers, idempotency_key, content is not None)
    started = time.monotonic()
    deadline = started + policy.timeout
    current = _parse_url(url, params)
    origin = (current.scheme, current.raw_host, current.port)
    for hop in range(policy.max_redirects + 1):
        try:
            target = _resolve(policy, _check_url(policy, current))
        except OutboundRefused as exc:
            if hop and exc.reason != "private_address":
                raise OutboundRefused(
                    "redirect_not_allowed",
                    f"The server redirected to a URL that is not allowed: {exc.message}",
                ) from None
            raise
        breaker = _breaker(policy, target)
        if not breaker.allow():
            raise OutboundFailed(f"{target.host} is failing; calls paused for a moment.", transient=True)
        try:
            response, raw = _send(policy, target, method, send_headers, content, deadline)
        except OutboundFailed as exc:
            if exc.transient:
                breaker.failure()
            else:
                breaker.success()
            raise
        except OutboundRefused:
            breaker.success()
            raise
        if response.status_code >= 500:
            breaker.failure()
        else:
            breaker.success()
        if raw is None:
            location = response.headers["location"]
            try:
                current = current.join(location)
            except (httpx.InvalidURL, ValueError):
                raise OutboundRefused(
                    "redirect_not_allowed", f"The server redirected to an invalid URL: {location[:200]!r}."
                ) from None
            # As browsers do: 303 (and 301/302 after a POST) continue as a GET without the body.
            status = response.status_code
            if method != "HEAD" and (status == 303 or (status in (301, 302) and method == "POST")):
                method, content = "GET", None
                send_headers = {k: v for k, v in send_headers.items() if k.lower() != "content-type"}
            if (current.scheme, current.raw_host, current.port) != origin:
                send_headers = {k: v for k, v in send_headers.items() if k.lower() not in CREDENTIAL_HEADERS}
            continue
        content_type = response.headers.get("content-type", "")
        text, body = _body(raw, content_type)
        result = OutboundResponse(
            status=response.status_code,
            headers={name: response.headers[name] for name in KEPT_HEADERS if name in response.headers},
            body=body,
            text=text,
            elapsed_ms=int((time.monotonic() - started) * 1000),
            final_url=str(current),
        )
        if raise_for_status and result.status >= 400:
            raise OutboundFailed(
                f"{target.host} answered {result.status}.",
                transient=result.status >= 500 or result.status in (408, 429),
                maybe_sent=True,
                status=result.status,
            )
        return result
    if not policy.max_redirects:
        raise OutboundRefused(
            "redirect_not_allowed", "The server answered with a redirect, which is not followed."
        )
    raise OutboundRefused(
        "redirect_not_allowed", f"The server redirected more than {policy.max_redirects} times."
    )
