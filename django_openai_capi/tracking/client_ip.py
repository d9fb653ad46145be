"""The visitor's IP address, through the site's own proxies and no one else's.

``REMOTE_ADDR`` is the address of whoever opened the connection: behind a load balancer,
that is the load balancer. ``X-Forwarded-For`` lists the hops before it, but every
entry left of the last trusted proxy was written by the client and may be anything.
So the header is read only when ``REMOTE_ADDR`` is one of ``OPENAI_CAPI_TRUSTED_PROXIES``,
and right to left: each trusted hop is skipped, and the first address that is not one
of the site's proxies is the visitor's.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

from django.http import HttpRequest

from django_openai_capi.api.identity import Rejected, normalize_ip_address
from django_openai_capi.conf import conf

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def client_ip(request: HttpRequest) -> str | None:
    """The visitor's address as the API takes it, or ``None`` when it cannot be told.

    ``None`` rather than a proxy's address when the forwarded chain is unreadable: the
    proxy's address would be sent as the visitor's, and match no one.
    """
    remote = _valid(request.META.get("REMOTE_ADDR"))
    if remote is None:
        return None
    networks = _configured_networks()
    # No proxies trusted (the default): no address to parse and compare.
    if not networks or not _is_trusted(remote, networks):
        return remote
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    hops = forwarded.split(",") if isinstance(forwarded, str) else []
    for hop in reversed(hops):
        address = _valid(_without_port(hop.strip()))
        if address is None:
            return None
        if not _is_trusted(address, networks):
            return address
    # Every hop is one of the site's proxies: the request came from inside.
    return None


def _configured_networks() -> tuple[Network, ...]:
    value = conf.OPENAI_CAPI_TRUSTED_PROXIES
    # A malformed setting (check E024) trusts nothing rather than break the request.
    if not isinstance(value, list | tuple):
        return ()
    return trusted_networks(tuple(entry for entry in value if isinstance(entry, str)))


@lru_cache(maxsize=8)
def trusted_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """The parsed setting; an entry that is not an address (check E024) is skipped."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            continue
    return tuple(networks)


def _is_trusted(address: str, networks: Iterable[Network]) -> bool:
    parsed: Address = ipaddress.ip_address(address)
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped  # a dual-stack socket's view of an IPv4 proxy
    return any(parsed in network for network in networks)


def _valid(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        # The API layer's own rule, so that nothing it would refuse gets through
        # (a scoped IPv6 address such as fe80::1%eth0 is valid to Python, not to it).
        return normalize_ip_address(value)
    except Rejected:  # a Unix socket's "", a test client's placeholder, "unknown"
        return None


def _without_port(hop: str) -> str:
    # Some proxies write "203.0.113.7:51234" or "[2001:db8::1]:443".
    if hop.startswith("["):
        return hop[1:].partition("]")[0]
    if hop.count(":") == 1:
        return hop.partition(":")[0]
    return hop
