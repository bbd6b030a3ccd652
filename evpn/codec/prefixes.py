"""IPv4 and IPv6 unicast NLRI: length in bits then the minimum number of prefix bytes (RFC 4271 §4.3)."""

from __future__ import annotations

import ipaddress

from evpn.codec.evpn_nlri import IPNetwork, NlriError


def encode_prefix(prefix: IPNetwork) -> bytes:
    length = prefix.prefixlen
    return bytes((length,)) + prefix.network_address.packed[: (length + 7) // 8]


def decode_prefixes(data: bytes, version: int) -> list[IPNetwork]:
    """Decode a run of prefixes of one family; raise NlriError on an overrun or an impossible length."""
    width = 4 if version == 4 else 16
    network = ipaddress.IPv4Network if version == 4 else ipaddress.IPv6Network
    out: list[IPNetwork] = []
    pos = 0
    end = len(data)
    while pos < end:
        length = data[pos]
        if length > width * 8:
            raise NlriError(f"IPv{version} prefix length {length} too long")
        nbytes = (length + 7) // 8
        start = pos + 1
        pos = start + nbytes
        if pos > end:
            raise NlriError(f"IPv{version} prefix overruns its field")
        raw = data[start:pos] + b"\x00" * (width - nbytes)
        out.append(network((raw, length), strict=False))
    return out
