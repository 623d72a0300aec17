"""Which URLs webhooks may call (SSRF): https to public addresses only. The local cloud also allows http and https
to the loopback host (its receiver), and only when its setting says so (WEBHOOK_ALLOW_LOCAL_HTTP).

The host is resolved and every address it resolves to must be public, at registration and again before each
delivery (a name that later resolves to a private address is refused then). Redirects are never followed.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from facegate.core.errors import WebhookUrlNotAllowedError

MAX_URL_LENGTH = 2048
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})

Resolve = Callable[[str, int], list[str]]


def resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in infos})


def _refuse(why: str) -> WebhookUrlNotAllowedError:
    return WebhookUrlNotAllowedError(
        why, errors=[{"loc": ["body", "url"], "msg": why, "type": "webhook_url_not_allowed"}]
    )


class PublicUrlPolicy:
    def __init__(self, allow_local: bool = False, resolver: Resolve = resolve) -> None:
        self._allow_local = allow_local
        self._resolve = resolver

    def check(self, url: str) -> None:
        if len(url) > MAX_URL_LENGTH:
            raise _refuse("the URL is too long")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as error:
            raise _refuse("the URL cannot be parsed") from error
        host = (parts.hostname or "").lower()
        if not host:
            raise _refuse("the URL has no host")
        if parts.username is not None or parts.password is not None:
            raise _refuse("the URL must not carry credentials")
        if parts.fragment:
            raise _refuse("the URL must not have a fragment")
        loopback = host in LOOPBACK_NAMES or _is_loopback_literal(host)
        local = self._allow_local and loopback
        if parts.scheme != "https" and not (local and parts.scheme == "http"):
            raise _refuse("the URL must use https")
        addresses = self._resolve(host, port or (443 if parts.scheme == "https" else 80))
        if not addresses:
            raise _refuse("the URL's host does not resolve")
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
            if local and ip.is_loopback:
                continue
            if not ip.is_global or ip.is_multicast:
                raise _refuse("the URL's host resolves to a private, loopback or reserved address")


def _is_loopback_literal(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
