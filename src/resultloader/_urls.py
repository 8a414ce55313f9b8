"""Where URLs taken from an API's answers may lead: one rule for polling, downloads and redirects.

A status payload (polled, or a saved webhook) comes from a server we do not control, and so do
the redirects of the status endpoint and of a download. Such a URL is followed only if:

- it is https; plain http only to a loopback address written as one (`127.0.0.1`, `[::1]`,
  `[::ffff:127.0.0.1]`, `localhost`), and only where local addresses are allowed (below);
- its host is a public address: not loopback, private (10/8, 172.16/12, 192.168/16, fc00::/7),
  link-local (169.254/16, where clouds serve their metadata and credentials, fe80::/10),
  shared, reserved or unspecified (an IPv4-mapped IPv6 address is the IPv4 address it maps).
  A host name is resolved and every address it has is checked, before connecting. Local
  addresses are allowed when the API's base URL is itself local (a test server, a proxy on
  this machine or this network) or when the user says so (`allow_local_urls=True`,
  `--allow-local-urls`).

Every request is checked, not only the first: `GuardedAdapter` checks each hop of a redirect
and each retry. URLs a user gives directly (`load URL`) are the user's choice and not checked.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

from requests.adapters import HTTPAdapter

from ._errors import DownloadError
from ._redact import display_name, redact

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class RefusedUrl(DownloadError):
    """A URL from an API's answer (or a redirect) that the URL rule does not let us follow."""


@dataclass(frozen=True)
class UrlRule:
    """What URLs from an API's answers may point at. `allow_local`: loopback, private and
    link-local addresses too (tests, a local proxy); `allow_http`: plain http to any host."""

    allow_local: bool = False
    allow_http: bool = False


def rule_for_api(base_url: str, allow_local: bool = False) -> UrlRule:
    """The rule for URLs an API answers with: local addresses only if its base URL is local."""
    host = urlsplit(base_url).hostname or ""
    return UrlRule(allow_local=allow_local or is_local_host(host))


def check_base_url(url: str, api: str) -> str:
    """The key goes to the base URL (the user's choice): only over https, or http to this
    machine (tests, proxies on localhost)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return url
    if parts.scheme == "http" and host and _loopback_literal(host):
        return url
    raise ValueError(
        f"{api}: the base URL must be https:// (or http:// to localhost), "
        f"not {redact(url)!r}: the API key must not travel in the clear"
    )


def check_download_url(url: str, allow_http: bool = False) -> str:
    """The syntax half of the rule, with no I/O (resolving a status payload): https, or http to
    a loopback address written as one (or any http if `allow_http`). A hostile or broken API
    must not make the loader read local files (`file://`, bare paths) or other schemes."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "https" and parts.hostname:
        return url
    if scheme == "http" and parts.hostname and (allow_http or _loopback_literal(parts.hostname)):
        return url
    shown = display_name(url) if scheme else "a local path"
    if scheme == "http":
        raise RefusedUrl(
            f"refusing the plain http URL {shown}: a URL from an API's answer (or a redirect) "
            "must be https"
        )
    raise RefusedUrl(f"refusing the URL {shown}: a URL from an API's answer must be https")


def check_url(url: str, rule: UrlRule) -> None:
    """The whole rule, before connecting: the syntax, then every address the host has."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    local_http = rule.allow_local and _loopback_literal(host)
    check_download_url(url, allow_http=rule.allow_http or local_http)
    if rule.allow_local:
        return
    local = [a for a in _addresses(host, _port(parts)) if not _public(a)]
    if local:
        raise RefusedUrl(
            f"refusing {display_name(url)}: it points at {_shown(local[0])}, "
            f"{_kind(local[0])}, and it came from the API's answer (or a redirect); allow "
            "local addresses explicitly (--allow-local-urls) if you trust it"
        )


def is_local_host(host: str) -> bool:
    """Whether `host` is, or resolves to, a loopback, private or link-local address."""
    return any(not _public(a) for a in _addresses(host, None))


class GuardedAdapter(HTTPAdapter):
    """requests' adapter, checking every request it sends (each redirect hop, each retry)
    against a URL rule before connecting."""

    def __init__(self, rule: UrlRule, **kwargs: Any) -> None:
        self.rule = rule
        super().__init__(**kwargs)

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        check_url(str(request.url), self.rule)
        return super().send(request, *args, **kwargs)


def _loopback_literal(host: str) -> bool:
    """`localhost`, or a loopback address written the usual way (not `2130706433`, `0x7f.1`);
    `::ffff:127.0.0.1` (IPv4-mapped) is 127.0.0.1, whatever this Python's ipaddress says."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return _unmapped(ipaddress.ip_address(host)).is_loopback
    except ValueError:
        return False


def _port(parts: SplitResult) -> int | None:
    """The URL's port; None for one that is not a number (the connection then fails)."""
    try:
        return parts.port
    except ValueError:
        return None


def _addresses(host: str, port: int | None) -> list[Address]:
    """Every address `host` stands for, as the connection would resolve it (so `2130706433`
    is 127.0.0.1); none if it does not resolve (the connection then fails by itself)."""
    if not host:
        return []
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, port or 443, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found]


def _unmapped(address: Address) -> Address:
    """An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) as the IPv4 address it reaches."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _public(address: Address) -> bool:
    address = _unmapped(address)
    return address.is_global and not address.is_multicast


def _shown(address: Address) -> str:
    """`::ffff:127.0.0.1` as written, not as `::ffff:7f00:1` (Python < 3.13 writes that)."""
    inner = _unmapped(address)
    return f"::ffff:{inner}" if inner is not address else str(address)


def _kind(address: Address) -> str:
    """What the address is, by name, for the refusal."""
    inner = _unmapped(address)
    mapped = " (IPv4-mapped)" if inner is not address else ""
    for kind in ("loopback", "link-local", "private"):
        if getattr(inner, f"is_{kind.replace('-', '_')}"):
            return f"a {kind} address{mapped}"
    return f"not a public address{mapped}"
