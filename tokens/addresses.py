"""The caller's address, honouring X-Forwarded-For only from TRUSTED_PROXIES."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence

from django.conf import settings
from django.http import HttpRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=1024)
def _parse(value: str) -> IPAddress | None:
    # Cached: every token request parses its REMOTE_ADDR, mostly the same few (a proxy's, a
    # load balancer's); addresses are immutable values.
    try:
        address = ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress, proxies: Sequence[IPNetwork]) -> bool:
    return any(address in network for network in proxies)


def client_address(request: HttpRequest) -> IPAddress | None:
    """The first untrusted hop, reading X-Forwarded-For right to left from REMOTE_ADDR.

    A forwarded-for entry is believed only when every hop after it is a trusted
    proxy, so a caller cannot forge its address by sending the header itself.
    """
    proxies = settings.TRUSTED_PROXIES
    address = _parse(request.META.get("REMOTE_ADDR", ""))
    if address is None or not proxies or not _trusted(address, proxies):
        return address
    for hop in reversed(request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")):
        hop_address = _parse(hop)
        if hop_address is None:
            break
        address = hop_address
        if not _trusted(address, proxies):
            break
    return address


def from_trusted_proxy(request: HttpRequest) -> bool:
    """Whether the direct peer is one of TRUSTED_PROXIES, whose forwarded headers are believed."""
    proxies = settings.TRUSTED_PROXIES
    if not proxies:  # the usual case without a proxy: every token request asks, so ask nothing else
        return False
    address = _parse(request.META.get("REMOTE_ADDR", ""))
    return address is not None and _trusted(address, proxies)


def address_allowed(address: IPAddress | None, allowed: Sequence[str]) -> bool:
    """True when ``allowed`` is empty or ``address`` lies in one of its CIDRs."""
    if not allowed:
        return True
    if address is None:
        return False
    return any(address in ipaddress.ip_network(cidr, strict=False) for cidr in allowed)
