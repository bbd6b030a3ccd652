"""A minimal rtnetlink codec and batch transport for the hot path (FDB, neighbours, routes).

pyroute2 0.9.7 builds about 23k ``ndmsg`` per second and its ``IPBatch`` about 5k requests per second on
this machine, below zebra's ~25k FDB entries per second before the kernel has done any work. The messages
the reconciler needs are a handful of fixed layouts, so they are packed here with ``struct`` (a few
microseconds each), concatenated, and sent many per ``sendmsg``; every message asks for an
acknowledgement and each acknowledgement is matched back to its entry by sequence number. pyroute2 stays
in charge of links and addresses (plumbing), where convenience matters more than speed.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

# netlink / rtnetlink constants (linux/netlink.h, linux/rtnetlink.h, linux/neighbour.h)
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x01
NLM_F_MULTI = 0x02
NLM_F_ACK = 0x04
NLM_F_DUMP = 0x300
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_APPEND = 0x800
SOL_NETLINK = 270
SO_RCVBUFFORCE = 33  # not exported by Python's socket module
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11
NLMSGERR_ATTR_MSG = 1

RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_NEWADDR = 20
RTM_DELADDR = 21
RTM_NEWROUTE = 24
RTM_DELROUTE = 25
RTM_GETROUTE = 26
RTM_NEWNEIGH = 28
RTM_DELNEIGH = 29
RTM_GETNEIGH = 30

RTMGRP_LINK = 0x1
RTMGRP_NEIGH = 0x4
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV4_ROUTE = 0x40
RTMGRP_IPV6_IFADDR = 0x100
RTMGRP_IPV6_ROUTE = 0x400

AF_BRIDGE = 7

NUD_INCOMPLETE = 0x01
NUD_REACHABLE = 0x02
NUD_STALE = 0x04
NUD_DELAY = 0x08
NUD_PROBE = 0x10
NUD_FAILED = 0x20
NUD_NOARP = 0x40
NUD_PERMANENT = 0x80

NTF_USE = 0x01
NTF_SELF = 0x02
NTF_MASTER = 0x04
NTF_EXT_LEARNED = 0x10

NDA_DST = 1
NDA_LLADDR = 2
NDA_MASTER = 9

RTA_DST = 1
RTA_OIF = 4
RTA_GATEWAY = 5
RTA_PRIORITY = 6
RTA_MULTIPATH = 9
RTA_TABLE = 15
RTA_VIA = 18
RTN_UNICAST = 1
RT_SCOPE_UNIVERSE = 0
RTNH_F_DEAD = 1
RTNH_F_ONLINK = 4
RTNH_F_LINKDOWN = 16
RT_TABLE_MAIN = 254

IFLA_IFNAME = 3
IFLA_MASTER = 10
IFLA_LINKINFO = 18
IFLA_IFALIAS = 20
IFLA_INFO_KIND = 1
IFF_UP = 0x1
IFF_LOWER_UP = 0x10000

_NLMSGHDR = struct.Struct("=IHHII")
_NDMSG = struct.Struct("=BxxxiHBB")
_RTMSG = struct.Struct("=BBBBBBBBI")
_IFINFOMSG = struct.Struct("=BxHiII")
_RTNEXTHOP = struct.Struct("=HBBi")
_NLA = struct.Struct("=HH")
_U32 = struct.Struct("=I")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _family(ip: IPAddress) -> int:
    return socket.AF_INET if ip.version == 4 else socket.AF_INET6


def ipv4_mapped(address: ipaddress.IPv4Address) -> ipaddress.IPv6Address:
    """``::ffff:a.b.c.d``: the IPv6 next hop zebra uses for IPv6 routes through an IPv4 VTEP."""
    return ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + address.packed)


def _nla(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return _NLA.pack(length, kind) + payload + b"\0" * (-length & 3)


def _message(msg_type: int, flags: int, seq: int, body: bytes) -> bytes:
    return _NLMSGHDR.pack(16 + len(body), msg_type, flags | NLM_F_REQUEST, seq, 0) + body


# --- encoders (the sequence number is patched in by the transport) ---------------------------------------


_FDB_V4 = struct.Struct("=IHHIIBxxxiHBBHH6sxxHH4s")  # header, ndmsg, NDA_LLADDR (6+2 pad), NDA_DST (IPv4)
_FDB_NODST = struct.Struct("=IHHIIBxxxiHBBHH6sxx")


def fdb_message(
    msg_type: int, flags: int, ifindex: int, mac: bytes, dst: IPAddress | None, ntf: int, state: int
) -> bytes:
    """An AF_BRIDGE neighbour (FDB) message: ``bridge fdb add|append|del MAC dev IFINDEX [dst DST]``."""
    flags |= NLM_F_REQUEST
    if dst is None:
        return _FDB_NODST.pack(
            _FDB_NODST.size, msg_type, flags, 0, 0, AF_BRIDGE, ifindex, state, ntf, 0, 10, NDA_LLADDR, mac
        )
    if dst.version == 4:
        return _FDB_V4.pack(
            _FDB_V4.size,
            msg_type,
            flags,
            0,
            0,
            AF_BRIDGE,
            ifindex,
            state,
            ntf,
            0,
            10,
            NDA_LLADDR,
            mac,
            8,
            NDA_DST,
            dst.packed,
        )
    body = _NDMSG.pack(AF_BRIDGE, ifindex, state, ntf, 0) + _nla(NDA_LLADDR, mac) + _nla(NDA_DST, dst.packed)
    return _message(msg_type, flags, 0, body)


def neigh_message(
    msg_type: int, flags: int, ifindex: int, ip: IPAddress, mac: bytes | None, ntf: int, state: int
) -> bytes:
    """An IP neighbour message: ``ip neigh replace|del IP [lladdr MAC] dev IFINDEX``."""
    body = _NDMSG.pack(_family(ip), ifindex, state, ntf, 0) + _nla(NDA_DST, ip.packed)
    if mac is not None:
        body += _nla(NDA_LLADDR, mac)
    return _message(msg_type, flags, 0, body)


def route_message(
    msg_type: int, flags: int, prefix: IPNetwork, gateway: IPAddress, oif: int, table: int, protocol: int
) -> bytes:
    """``ip route replace|del PREFIX via GATEWAY dev OIF onlink proto PROTOCOL table TABLE``."""
    family = _family(prefix.network_address)
    body = _RTMSG.pack(
        family,
        prefix.prefixlen,
        0,
        0,
        table if table < 256 else 0,
        protocol,
        RT_SCOPE_UNIVERSE,
        RTN_UNICAST,
        RTNH_F_ONLINK,
    )
    body += _nla(RTA_TABLE, _U32.pack(table)) + _nla(RTA_DST, prefix.network_address.packed)
    if gateway.version == prefix.version:
        body += _nla(RTA_GATEWAY, gateway.packed)
    elif isinstance(gateway, ipaddress.IPv4Address):  # IPv6 prefix, IPv4 VTEP: IPv4-mapped, as zebra does
        body += _nla(RTA_GATEWAY, ipv4_mapped(gateway).packed)  # (IPv6 has no RTA_VIA)
    else:  # IPv4 prefix, IPv6 VTEP (RFC 5549)
        body += _nla(RTA_VIA, struct.pack("=H", _family(gateway)) + gateway.packed)
    body += _nla(RTA_OIF, _U32.pack(oif))
    return _message(msg_type, flags, 0, body)


def unicast_route_message(
    msg_type: int,
    flags: int,
    prefix: IPNetwork,
    gateway: IPAddress,
    table: int,
    protocol: int,
    priority: int | None = None,
) -> bytes:
    """``ip route replace|del PREFIX via GATEWAY proto PROTOCOL table TABLE [metric PRIORITY]``: no device,
    the kernel resolves the gateway through its connected routes (an IPv6 gateway of an IPv4 prefix goes
    as ``RTA_VIA``, RFC 8950)."""
    family = _family(prefix.network_address)
    body = _RTMSG.pack(
        family,
        prefix.prefixlen,
        0,
        0,
        table if table < 256 else 0,
        protocol,
        RT_SCOPE_UNIVERSE,
        RTN_UNICAST,
        0,
    )
    body += _nla(RTA_TABLE, _U32.pack(table)) + _nla(RTA_DST, prefix.network_address.packed)
    if gateway.version == prefix.version:
        body += _nla(RTA_GATEWAY, gateway.packed)
    else:
        body += _nla(RTA_VIA, struct.pack("=H", _family(gateway)) + gateway.packed)
    if priority is not None:
        body += _nla(RTA_PRIORITY, _U32.pack(priority))
    return _message(msg_type, flags, 0, body)


def dump_request(msg_type: int, family: int) -> bytes:
    if msg_type == RTM_GETROUTE:
        body = _RTMSG.pack(family, 0, 0, 0, 0, 0, 0, 0, 0)
    elif msg_type == RTM_GETLINK:
        body = _IFINFOMSG.pack(family, 0, 0, 0, 0)
    else:
        body = _NDMSG.pack(family, 0, 0, 0, 0)
    return _message(msg_type, NLM_F_REQUEST | NLM_F_DUMP, 0, body)


# --- decoders ----------------------------------------------------------------------------------------------


def _attrs(data: bytes | memoryview, offset: int, end: int) -> dict[int, bytes]:
    attrs: dict[int, bytes] = {}
    while offset + 4 <= end:
        length, kind = _NLA.unpack_from(data, offset)
        if length < 4:
            break
        attrs[kind & 0x3FFF] = bytes(data[offset + 4 : offset + length])
        offset += (length + 3) & ~3
    return attrs


def _ip(raw: bytes) -> IPAddress | None:
    if len(raw) == 4:
        return ipaddress.IPv4Address(raw)
    if len(raw) == 16:
        return ipaddress.IPv6Address(raw)
    return None


@dataclass(frozen=True, slots=True)
class Neigh:
    """A decoded RTM_NEWNEIGH/RTM_DELNEIGH: an FDB entry (family AF_BRIDGE) or an IP neighbour."""

    deleted: bool
    family: int
    ifindex: int
    state: int
    flags: int
    lladdr: bytes | None
    dst: IPAddress | None
    master: int | None


@dataclass(frozen=True, slots=True)
class Route:
    deleted: bool
    family: int
    dst_len: int
    table: int
    protocol: int
    dst: IPAddress | None
    gateway: IPAddress | None
    oif: int | None
    kind: int = RTN_UNICAST
    """``rtm_type``: unicast, local, blackhole, unreachable, multicast ..."""
    flags: int = 0
    """``rtm_flags`` (for a single next hop they carry its ``RTNH_F_*`` flags: onlink, dead, linkdown)."""
    nexthop_flags: tuple[int, ...] = ()
    """``rtnh_flags`` of each next hop of a multipath route (``RTA_MULTIPATH``); empty for one next hop."""

    @property
    def prefix(self) -> IPNetwork:
        """``dst/dst_len`` (a default route has no ``RTA_DST``: the unspecified address)."""
        dst = self.dst
        if dst is None:
            dst = ipaddress.IPv4Address(0) if self.family == socket.AF_INET else ipaddress.IPv6Address(0)
        return ipaddress.ip_network((dst, self.dst_len))

    @property
    def usable(self) -> bool:
        """False when every next hop is dead or on a link without carrier (zebra: inactive)."""
        down = RTNH_F_DEAD | RTNH_F_LINKDOWN
        if self.nexthop_flags:
            return any(not flags & down for flags in self.nexthop_flags)
        return not self.flags & down


@dataclass(frozen=True, slots=True)
class Link:
    deleted: bool
    index: int
    flags: int
    name: str
    master: int | None
    kind: str | None
    alias: str | None

    @property
    def up(self) -> bool:
        return bool(self.flags & IFF_UP) and bool(self.flags & IFF_LOWER_UP)


def decode_neigh(msg_type: int, data: bytes | memoryview, offset: int, end: int) -> Neigh:
    family, ifindex, state, flags, _ = _NDMSG.unpack_from(data, offset)
    attrs = _attrs(data, offset + _NDMSG.size, end)
    master = attrs.get(NDA_MASTER)
    return Neigh(
        msg_type == RTM_DELNEIGH,
        family,
        ifindex,
        state,
        flags,
        attrs.get(NDA_LLADDR),
        _ip(attrs[NDA_DST]) if NDA_DST in attrs else None,
        _U32.unpack(master)[0] if master is not None else None,
    )


def _nexthop_flags(multipath: bytes) -> tuple[int, ...]:
    flags: list[int] = []
    offset = 0
    while offset + _RTNEXTHOP.size <= len(multipath):
        length, nh_flags, _, _ = _RTNEXTHOP.unpack_from(multipath, offset)
        if length < _RTNEXTHOP.size:
            break
        flags.append(nh_flags)
        offset += (length + 3) & ~3
    return tuple(flags)


def decode_route(msg_type: int, data: bytes | memoryview, offset: int, end: int) -> Route:
    family, dst_len, _, _, table, protocol, _, kind, rtm_flags = _RTMSG.unpack_from(data, offset)
    attrs = _attrs(data, offset + _RTMSG.size, end)
    if RTA_TABLE in attrs:
        table = _U32.unpack(attrs[RTA_TABLE])[0]
    gateway = _ip(attrs[RTA_GATEWAY]) if RTA_GATEWAY in attrs else None
    if gateway is None and RTA_VIA in attrs:
        gateway = _ip(attrs[RTA_VIA][2:])
    oif = attrs.get(RTA_OIF)
    return Route(
        msg_type == RTM_DELROUTE,
        family,
        dst_len,
        table,
        protocol,
        _ip(attrs[RTA_DST]) if RTA_DST in attrs else None,
        gateway,
        _U32.unpack(oif)[0] if oif is not None else None,
        kind,
        rtm_flags,
        _nexthop_flags(attrs[RTA_MULTIPATH]) if RTA_MULTIPATH in attrs else (),
    )


def decode_link(msg_type: int, data: bytes | memoryview, offset: int, end: int) -> Link:
    _, _, index, flags, _ = _IFINFOMSG.unpack_from(data, offset)
    attrs = _attrs(data, offset + _IFINFOMSG.size, end)
    kind = None
    if IFLA_LINKINFO in attrs:
        info = attrs[IFLA_LINKINFO]
        kind_raw = _attrs(info, 0, len(info)).get(IFLA_INFO_KIND)
        kind = kind_raw.rstrip(b"\0").decode() if kind_raw else None
    master = attrs.get(IFLA_MASTER)
    alias = attrs.get(IFLA_IFALIAS)
    return Link(
        msg_type == RTM_DELLINK,
        index,
        flags,
        attrs.get(IFLA_IFNAME, b"").rstrip(b"\0").decode(),
        _U32.unpack(master)[0] if master is not None else None,
        kind,
        alias.rstrip(b"\0").decode() if alias else None,
    )


Decoded = Neigh | Route | Link


def decode(data: bytes | memoryview) -> Iterator[Decoded]:
    """Decode every neighbour, route and link message in one datagram (others are skipped)."""
    offset = 0
    size = len(data)
    while offset + 16 <= size:
        length, msg_type, _, _, _ = _NLMSGHDR.unpack_from(data, offset)
        if length < 16:
            break
        end = offset + length
        if msg_type in (RTM_NEWNEIGH, RTM_DELNEIGH):
            yield decode_neigh(msg_type, data, offset + 16, end)
        elif msg_type in (RTM_NEWROUTE, RTM_DELROUTE):
            yield decode_route(msg_type, data, offset + 16, end)
        elif msg_type in (RTM_NEWLINK, RTM_DELLINK):
            yield decode_link(msg_type, data, offset + 16, end)
        offset += (length + 3) & ~3


def ext_learned_fdb_mac(data: bytes | memoryview) -> bytes | None:
    """The MAC of a datagram holding exactly one bridge FDB message (new or deleted) flagged
    ``extern_learn``, without decoding it; ``None`` for anything else."""
    if len(data) < 16 + _NDMSG.size:
        return None
    length, msg_type, _, _, _ = _NLMSGHDR.unpack_from(data, 0)
    if msg_type not in (RTM_NEWNEIGH, RTM_DELNEIGH) or not 16 + _NDMSG.size <= length <= len(data):
        return None
    if (length + 3) & ~3 < len(data):
        return None
    family, _, _, flags, _ = _NDMSG.unpack_from(data, 16)
    if family != AF_BRIDGE or not flags & NTF_EXT_LEARNED:
        return None
    offset = 16 + _NDMSG.size
    while offset + 4 <= length:
        attr_length, kind = _NLA.unpack_from(data, offset)
        if attr_length < 4:
            return None
        if kind & 0x3FFF == NDA_LLADDR:
            return bytes(data[offset + 4 : offset + attr_length])
        offset += (attr_length + 3) & ~3
    return None


def message_types(data: bytes | memoryview) -> Iterator[int]:
    """The ``nlmsg_type`` of every message in one datagram (addresses, for instance, are not decoded)."""
    offset = 0
    size = len(data)
    while offset + 16 <= size:
        length, msg_type, _, _, _ = _NLMSGHDR.unpack_from(data, offset)
        if length < 16:
            break
        yield msg_type
        offset += (length + 3) & ~3


# --- transport ----------------------------------------------------------------------------------------------


class DatagramReader:
    """Reads netlink datagrams into one buffer that is reused for every read.

    ``sock.recv(1 MiB)`` allocates a megabyte per datagram and then shrinks it; glibc may serve that with
    mmap and munmap every time (14-18 µs per 100-byte datagram against 1.2 µs, measured on a socket pair),
    and the daemon's profile had a quarter of its main thread in that line during a 50,000-route burst.
    The view returned by :meth:`read` is valid until the next read: decode it first (decoded values hold
    copies).
    """

    __slots__ = ("_buffer", "_view")

    def __init__(self, size: int = 1 << 20) -> None:
        self._buffer = bytearray(size)
        self._view = memoryview(self._buffer)

    def read(self, sock: socket.socket) -> memoryview:
        """One datagram (raises ``BlockingIOError`` on a non-blocking socket with nothing to read)."""
        return self._view[: sock.recv_into(self._buffer)]


class NetlinkError(OSError):
    """A netlink request failed; ``errno`` is the kernel's error, ``str`` includes its extended ack text."""


def open_socket(groups: int = 0, rcvbuf: int = 8 << 20) -> socket.socket:
    """A NETLINK_ROUTE socket in the calling thread's network namespace, with large buffers and CAP/EXT ack."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    try:
        for option in (SO_RCVBUFFORCE, socket.SO_RCVBUF):
            try:
                sock.setsockopt(socket.SOL_SOCKET, option, rcvbuf)
                break
            except PermissionError:
                continue
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
        sock.bind((0, groups))
    except BaseException:
        sock.close()
        raise
    return sock


SO_ATTACH_FILTER = 26
_BPF = struct.Struct("=HBBI")


def _bpf(code: int, jt: int, jf: int, k: int) -> bytes:
    return _BPF.pack(code, jt, jf, k)


def drop_vxlan_self_notifications(sock: socket.socket) -> None:
    """Attach a classic BPF filter dropping AF_BRIDGE neighbour notifications flagged NTF_SELF.

    Those are the VXLAN devices' own FDB entries (``dst VTEP self``): one per remote MAC we install, never
    local learning, and half of the notification volume during a bulk install (which would otherwise
    overrun a monitor's socket). BPF absolute loads read big-endian, so the host-order ``nlmsg_type``
    28/29 reads as 0x1c00/0x1d00 (little-endian hosts).
    """
    import ctypes
    import sys

    new, delete = (
        (RTM_NEWNEIGH, RTM_DELNEIGH) if sys.byteorder == "big" else (RTM_NEWNEIGH << 8, RTM_DELNEIGH << 8)
    )
    program = b"".join((
        _bpf(0x28, 0, 0, 4),            # ldh [4]: nlmsg_type
        _bpf(0x15, 1, 0, new),          # == RTM_NEWNEIGH -> 3
        _bpf(0x15, 0, 4, delete),       # == RTM_DELNEIGH -> 3, else accept
        _bpf(0x30, 0, 0, 16),           # ldb [16]: ndm_family
        _bpf(0x15, 0, 2, AF_BRIDGE),    # AF_BRIDGE -> 5, else accept
        _bpf(0x30, 0, 0, 26),           # ldb [26]: ndm_flags
        _bpf(0x45, 1, 0, NTF_SELF),     # NTF_SELF -> drop
        _bpf(0x06, 0, 0, 0xFFFFFFFF),   # accept
        _bpf(0x06, 0, 0, 0),            # drop
    ))  # fmt: skip
    buffer = ctypes.create_string_buffer(program)
    fprog = struct.pack("HxxxxxxQ", len(program) // _BPF.size, ctypes.addressof(buffer))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)  # the kernel copies the program


def drop_route_notifications_of(sock: socket.socket, protocol: int) -> None:
    """Attach a classic BPF filter dropping route notifications of routes with ``rtm_protocol == protocol``.

    A watcher of the kernel's own routes then never wakes up for the (possibly many thousand) routes we
    install ourselves. Byte order of ``nlmsg_type`` as in :func:`drop_vxlan_self_notifications`;
    ``rtm_protocol`` is the byte at offset 21 (16-byte header, then family, dst_len, src_len, tos, table).
    """
    import ctypes
    import sys

    new, delete = (
        (RTM_NEWROUTE, RTM_DELROUTE) if sys.byteorder == "big" else (RTM_NEWROUTE << 8, RTM_DELROUTE << 8)
    )
    program = b"".join((
        _bpf(0x28, 0, 0, 4),            # ldh [4]: nlmsg_type
        _bpf(0x15, 1, 0, new),          # == RTM_NEWROUTE -> 3
        _bpf(0x15, 0, 2, delete),       # == RTM_DELROUTE -> 3, else accept
        _bpf(0x30, 0, 0, 21),           # ldb [21]: rtm_protocol
        _bpf(0x15, 1, 0, protocol),     # ours -> drop
        _bpf(0x06, 0, 0, 0xFFFFFFFF),   # accept
        _bpf(0x06, 0, 0, 0),            # drop
    ))  # fmt: skip
    buffer = ctypes.create_string_buffer(program)
    fprog = struct.pack("HxxxxxxQ", len(program) // _BPF.size, ctypes.addressof(buffer))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def _error_text(data: bytes | memoryview, offset: int, end: int) -> str:
    # nlmsgerr: error(4) + original header(16) [+ payload unless CAP_ACK] + TLVs when NLM_F_ACK_TLVS (0x200)
    attrs = _attrs(data, offset + 4 + 16, end)
    text = attrs.get(NLMSGERR_ATTR_MSG)
    return text.rstrip(b"\0").decode(errors="replace") if text else ""


@dataclass(frozen=True, slots=True)
class Outcome:
    """The kernel's answer to message ``index`` of a batch: 0 or a positive errno, with its text."""

    index: int
    error: int
    message: str = ""


class BatchTransport:
    """Sends many requests per ``sendmsg`` on one socket and matches every acknowledgement to its request."""

    def __init__(self, sock: socket.socket, *, chunk_bytes: int = 96 << 10, max_inflight: int = 2048) -> None:
        self._sock = sock
        self._reader = DatagramReader()
        self._seq = 1
        self._chunk_bytes = chunk_bytes
        self._max_inflight = max_inflight

    def close(self) -> None:
        self._sock.close()

    def _next_seq(self) -> int:
        self._seq = (self._seq % 0x7FFFFFFF) + 1
        return self._seq

    def transact(self, messages: Sequence[bytes]) -> list[Outcome]:
        """Send ``messages`` and return one outcome per message, in order.

        Messages go out in chunks, many per ``sendmsg``. The kernel handles a chunk synchronously inside the
        send call and reports every failing message with an error carrying its sequence number; only the last
        message of a chunk asks for a positive acknowledgement (NLM_F_ACK), which marks the chunk as done:
        every message of the chunk without an error by then succeeded. One datagram per failure instead of one
        per message (a positive ack for every message cost one ``recv`` each, 40% of the time).
        """
        outcomes: list[Outcome | None] = [None] * len(messages)
        index = 0
        while index < len(messages):
            pending: dict[int, int] = {}
            buf = bytearray()
            last = 0
            while (
                index < len(messages) and len(buf) < self._chunk_bytes and len(pending) < self._max_inflight
            ):
                seq = self._next_seq()
                start = len(buf)
                buf += messages[index]  # encoders set NLM_F_REQUEST and never NLM_F_ACK
                _U32.pack_into(buf, start + 8, seq)
                pending[seq] = index
                last = start
                index += 1
            flags = _NLMSGHDR.unpack_from(buf, last)[2] | NLM_F_ACK
            struct.pack_into("=H", buf, last + 6, flags)
            barrier = _NLMSGHDR.unpack_from(buf, last)[3]
            self._sock.send(buf)
            self._drain(pending, outcomes, barrier)
            for idx in pending.values():
                if outcomes[idx] is None:
                    outcomes[idx] = Outcome(idx, 0)
        return [
            o if o is not None else Outcome(i, errno.EIO, "no acknowledgement")
            for i, o in enumerate(outcomes)
        ]

    def _drain(self, pending: dict[int, int], outcomes: list[Outcome | None], barrier: int) -> None:
        """Read errors (and the barrier's acknowledgement) until the barrier request is answered."""
        while True:
            data = self._reader.read(self._sock)
            offset = 0
            done = False
            while offset + 16 <= len(data):
                length, msg_type, _, seq, _ = _NLMSGHDR.unpack_from(data, offset)
                if length < 16:
                    break
                if msg_type == NLMSG_ERROR and seq in pending:
                    (err,) = struct.unpack_from("=i", data, offset + 16)
                    idx = pending[seq]
                    text = _error_text(data, offset + 16, offset + length) if err else ""
                    outcomes[idx] = Outcome(idx, -err, text)
                    done = done or seq == barrier
                offset += (length + 3) & ~3
            if done:
                return

    def dump(self, request: bytes) -> Iterator[Decoded]:
        """Run one dump request and decode its replies."""
        seq = self._next_seq()
        msg = bytearray(request)
        struct.pack_into("=I", msg, 8, seq)
        self._sock.send(msg)
        while True:
            data = self._reader.read(self._sock)
            offset = 0
            while offset + 16 <= len(data):
                length, msg_type, _, rseq, _ = _NLMSGHDR.unpack_from(data, offset)
                if length < 16:
                    break
                if rseq == seq:
                    if msg_type == NLMSG_DONE:
                        return
                    if msg_type == NLMSG_ERROR:
                        (err,) = struct.unpack_from("=i", data, offset + 16)
                        if err:
                            raise NetlinkError(-err, os.strerror(-err))
                        return
                    yield from decode(data[offset : offset + length])
                offset += (length + 3) & ~3
