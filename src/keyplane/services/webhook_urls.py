"""Where webhooks may be sent (issue 11): no server-side request forgery.

A live-mode subscription must reach the public internet: a URL whose host is, or resolves to,
a loopback, private, link-local, multicast, reserved or unspecified address is refused when
it is created or changed, and checked again before every delivery (a name may resolve
differently later). Test-mode subscriptions may use loopback and private networks (a receiver
on the developer's machine), and so may live ones when the operator sets
KEYPLANE_WEBHOOK_ALLOW_PRIVATE=true (an intranet receiver). Link-local addresses (cloud
metadata services such as 169.254.169.254) are never allowed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

# host, port -> the addresses it resolves to (empty when it does not resolve)
Resolver = Callable[[str, int], Awaitable[list[str]]]
RESOLVE_SECONDS = 3.0


async def system_resolve(host: str, port: int) -> list[str]:
    try:
        async with asyncio.timeout(RESOLVE_SECONDS):
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
    except (OSError, TimeoutError):
        return []
    return [str(info[4][0]).split("%", 1)[0] for info in infos]


def refusal(address: str, *, allow_private: bool) -> str | None:
    """Why `address` may not receive webhooks, or None when it may."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.is_link_local or ip.is_multicast or ip.is_unspecified:
        return f"{ip} is a link-local, multicast or unspecified address"
    if allow_private:
        return None
    if ip.is_loopback:
        return f"{ip} is a loopback address"
    if ip.is_private or ip.is_reserved or not ip.is_global:
        return f"{ip} is a private or reserved address"
    return None


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


async def destination_refusal(
    url: str, *, allow_private: bool, resolve: Resolver = system_resolve
) -> str | None:
    """Why `url` may not receive webhooks right now, or None. A name that does not resolve
    is not refused here (the receiver may not be up yet); the sender checks again."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = _literal(host)
    if literal is not None:
        addresses = [literal]
    elif host == "localhost" or host.endswith(".localhost"):
        addresses = ["127.0.0.1"]
    else:
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return "the port is not a number between 0 and 65535"
        addresses = await resolve(host, port)
    for address in addresses:
        reason = refusal(address, allow_private=allow_private)
        if reason is not None:
            return f"{host} resolves to {reason}" if literal is None else reason
    return None
