"""Host prefixes (/32, /128) built without the 3-8 µs parse of ``ipaddress.IPv4Network((ip, 32))``.

The IP-VRF builds one per remote host route on the hot path. The fast form fills the attributes the stdlib
constructor sets (network address, netmask, prefix length) and is checked once at import against the stdlib
constructor (equality, hash, text, broadcast); if this Python's ``ipaddress`` differs, the stdlib path is
used. One difference is kept on purpose: the stdlib gives each /32 its own ``hosts`` closure (about 200
bytes per route); here ``hosts()`` is the class method.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from evpn.codec.evpn_nlri import IPAddress, IPNetwork
from evpn.dataplane_state import host_route

_V4_NETMASK, _ = ipaddress.IPv4Network._make_netmask(32)  # type: ignore[attr-defined]
_V6_NETMASK, _ = ipaddress.IPv6Network._make_netmask(128)  # type: ignore[attr-defined]
_V4 = ipaddress.IPv4Address
_V4_NET = ipaddress.IPv4Network
_V6_NET = ipaddress.IPv6Network
_new = object.__new__


def _fast_host_route(ip: IPAddress) -> IPNetwork:
    net: Any
    if isinstance(ip, _V4):
        net = _new(_V4_NET)
        net.netmask = _V4_NETMASK
        net._prefixlen = 32
    else:
        net = _new(_V6_NET)
        net.netmask = _V6_NETMASK
        net._prefixlen = 128
    net.network_address = ip
    result: IPNetwork = net
    return result


def _self_check() -> Callable[[IPAddress], IPNetwork]:
    try:
        for text in ("192.0.2.7", "2001:db8::7"):
            ip = ipaddress.ip_address(text)
            fast, slow = _fast_host_route(ip), host_route(ip)
            if not (
                fast == slow
                and hash(fast) == hash(slow)
                and str(fast) == str(slow)
                and fast.prefixlen == slow.prefixlen
                and fast.broadcast_address == slow.broadcast_address
            ):
                return host_route
    except Exception:
        return host_route
    return _fast_host_route


host_prefix: Callable[[IPAddress], IPNetwork] = _self_check()
"""The /32 or /128 of ``ip``, equal to ``evpn.dataplane_state.host_route(ip)``."""


def ip_key(ip: IPAddress) -> int:
    """A dict key for an address: its integer, IPv6 ones above the IPv4 range (hashing an ``ipaddress``
    object formats a string each time; an int hashes in C and is never tracked by the garbage collector)."""
    return int(ip) if isinstance(ip, ipaddress.IPv4Address) else int(ip) | 1 << 128


def host_key(ip: IPAddress) -> int:
    """``prefix_key(host_prefix(ip))`` without building the network: ``ip_key(ip)``."""
    return ip_key(ip)


_SHORTER = 1 << 140
"""Set in the key of a prefix shorter than a host route: above every host key (below 2**129) and every
``ip_key << 8 | length`` (below 2**137)."""


def prefix_key(prefix: IPNetwork) -> int:
    """A dict key for a prefix: a host route's is its address's ``ip_key`` (the int a type-2 route key
    already holds: no new object), any other's holds address and length above every host key."""
    key = ip_key(prefix.network_address)
    length = prefix.prefixlen
    if length == prefix.max_prefixlen:
        return key
    return key << 8 | length | _SHORTER
