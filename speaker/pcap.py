"""A small pure-Python reader for pcap and pcapng captures of BGP sessions.

Link types: Ethernet (with 802.1Q/802.1ad tags), Linux cooked SLL and SLL2, raw IP, BSD loopback. Network:
IPv4 and IPv6 (extension headers skipped, fragments ignored). Transport: TCP, reassembled per direction by
sequence number (retransmissions and overlaps trimmed, out-of-order segments held until the gap fills). A
stream whose SYN was not captured starts at the first sequence number seen. BGP messages are then cut from
each direction with ``MessageDecoder.split`` (RFC 4271 §4.1); when the framing breaks, the reader resumes at
the next marker.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from evpn.codec.messages import HEADER_LEN, MARKER, MessageDecoder
from evpn.errors import MessageError

BGP_PORT = 179

# Link-layer header types (https://www.tcpdump.org/linktypes.html).
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_RAW_BSD = 12
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

_ETH_IPV4 = 0x0800
_ETH_IPV6 = 0x86DD
_ETH_VLAN = (0x8100, 0x88A8, 0x9100)
_IPPROTO_TCP = 6
_IPV6_EXTENSIONS = (0, 43, 60, 135, 139, 140)  # hop-by-hop, routing, dest opts, mobility, HIP, shim6
_IPV6_FRAGMENT = 44
_TCP_SYN = 0x02
_SEQ_MOD = 1 << 32

_PCAP_MAGIC_USEC = 0xA1B2C3D4
_PCAP_MAGIC_NSEC = 0xA1B23C4D
_PCAPNG_BYTE_ORDER = 0x1A2B3C4D
_MAX_RECORD = 1 << 28  # larger records mean a corrupt file, not a packet


class PcapError(Exception):
    """The file is not a readable pcap/pcapng capture."""


class PcapTruncated(PcapError):
    """The file ends in the middle of a record, as when a capture is killed while writing."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One side of a TCP connection."""

    ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    port: int

    def __str__(self) -> str:
        return f"[{self.ip}]:{self.port}" if self.ip.version == 6 else f"{self.ip}:{self.port}"


@dataclass(frozen=True, slots=True)
class Frame:
    """A captured link-layer frame."""

    timestamp: float
    linktype: int
    data: bytes


@dataclass(frozen=True, slots=True)
class TcpSegment:
    """A TCP segment with its addresses; ``payload`` is what the capture holds of the data."""

    timestamp: float
    src: Endpoint
    dst: Endpoint
    seq: int
    flags: int
    payload: bytes

    @property
    def syn(self) -> bool:
        return bool(self.flags & _TCP_SYN)


@dataclass(frozen=True, slots=True)
class StreamData:
    """Bytes that became contiguous in one direction of a TCP connection, in stream order."""

    timestamp: float
    src: Endpoint
    dst: Endpoint
    data: bytes
    stream_id: int = 0
    synchronised: bool = True


@dataclass(frozen=True, slots=True)
class StreamNote:
    """Something the reassembler or the splitter noticed that is not a protocol error (capture artefact)."""

    timestamp: float
    src: Endpoint
    dst: Endpoint
    text: str


@dataclass(frozen=True, slots=True)
class BgpMessage:
    """One whole BGP message (header included) from a capture."""

    timestamp: float
    src: Endpoint
    dst: Endpoint
    data: bytes


@dataclass(frozen=True, slots=True)
class FramingError:
    """The byte stream broke BGP framing (RFC 4271 §6.1); the reader resumes at the next header."""

    timestamp: float
    src: Endpoint
    dst: Endpoint
    error: MessageError


# -------------------------------------------------------------------------------------------------------
# capture files


def read_frames(stream: BinaryIO) -> Iterator[Frame]:
    """Every frame of a pcap or pcapng file, in file order, read as the iteration goes.

    Raises PcapError on a malformed file, PcapTruncated when the file ends inside a record (a capture
    that was cut short); the frames before are yielded first.
    """
    head = stream.read(4)
    if len(head) < 4:
        raise PcapError("file too short for a capture header")
    if head == b"\x0a\x0d\x0d\x0a":
        yield from _read_pcapng(stream, head)
        return
    magic_le = struct.unpack("<I", head)[0]
    magic_be = struct.unpack(">I", head)[0]
    for magic, order in ((magic_le, "<"), (magic_be, ">")):
        if magic in (_PCAP_MAGIC_USEC, _PCAP_MAGIC_NSEC):
            yield from _read_pcap(stream, order, 1e-9 if magic == _PCAP_MAGIC_NSEC else 1e-6)
            return
    raise PcapError(f"not a pcap or pcapng file (magic {head.hex()})")


def _read_pcap(stream: BinaryIO, order: str, unit: float) -> Iterator[Frame]:
    rest = stream.read(20)
    if len(rest) < 20:
        raise PcapError("pcap global header truncated")
    linktype = struct.unpack(order + "I", rest[16:20])[0] & 0x0FFFFFFF
    record = struct.Struct(order + "IIII")
    while True:
        hdr = stream.read(16)
        if not hdr:
            return
        if len(hdr) < 16:
            raise PcapTruncated("the file ends inside a record header")
        sec, frac, incl, _orig = record.unpack(hdr)
        if incl > _MAX_RECORD:
            raise PcapError(f"pcap record of {incl} bytes: not a sane capture")
        data = stream.read(incl)
        if len(data) < incl:
            raise PcapTruncated("the file ends inside a packet")
        yield Frame(sec + frac * unit, linktype, data)


@dataclass(frozen=True, slots=True)
class _Interface:
    linktype: int
    resolution: float = 1e-6  # seconds per timestamp unit (if_tsresol)
    offset: int = 0  # seconds added to every timestamp (if_tsoffset)


def _read_pcapng(stream: BinaryIO, first: bytes) -> Iterator[Frame]:
    order = "<"
    interfaces: list[_Interface] = []
    head = first + stream.read(4)
    while head:
        if len(head) < 8:
            raise PcapTruncated("the file ends inside a block header")
        if head[:4] == b"\x0a\x0d\x0d\x0a":  # Section Header Block: its byte-order magic sets the order
            magic = stream.read(4)
            if magic == struct.pack("<I", _PCAPNG_BYTE_ORDER):
                order = "<"
            elif magic == struct.pack(">I", _PCAPNG_BYTE_ORDER):
                order = ">"
            else:
                raise PcapError("pcapng section header has a bad byte-order magic")
            head += magic
            interfaces = []
        btype, blen = struct.unpack_from(order + "II", head, 0)
        if blen < 12 or blen % 4 or blen > _MAX_RECORD:
            raise PcapError(f"pcapng block of type {btype} has a bad length {blen}")
        rest = stream.read(blen - len(head))
        if len(rest) < blen - len(head):
            raise PcapTruncated("the file ends inside a block")
        body = (head + rest)[8:-4]
        head = stream.read(8)
        if btype == 1:  # Interface Description Block
            if len(body) < 8:
                raise PcapError("pcapng interface block truncated")
            interfaces.append(_interface(struct.unpack_from(order + "H", body, 0)[0], body[8:], order))
        elif btype in (6, 2):  # Enhanced Packet Block, obsolete Packet Block
            if len(body) < 20:
                raise PcapError("pcapng packet block truncated")
            if btype == 6:
                ifid, high, low, caplen = struct.unpack_from(order + "IIII", body, 0)
            else:
                ifid, _drops, high, low, caplen = struct.unpack_from(order + "HHIII", body, 0)
            if ifid >= len(interfaces):
                raise PcapError(f"pcapng packet for undeclared interface {ifid}")
            iface = interfaces[ifid]
            stamp = ((high << 32) | low) * iface.resolution + iface.offset
            yield Frame(stamp, iface.linktype, bytes(body[20 : 20 + caplen]))
        elif btype == 3:  # Simple Packet Block: interface 0, no timestamp
            if not interfaces:
                raise PcapError("pcapng simple packet block before any interface")
            orig = struct.unpack_from(order + "I", body, 0)[0]
            yield Frame(0.0, interfaces[0].linktype, bytes(body[4 : 4 + orig]))


def _interface(linktype: int, options: bytes, order: str) -> _Interface:
    """An interface from its IDB options: if_tsresol (10^-n, or 2^-n with the high bit) and if_tsoffset."""
    resolution, offset = 1e-6, 0
    pos = 0
    while pos + 4 <= len(options):
        code, olen = struct.unpack_from(order + "HH", options, pos)
        value = options[pos + 4 : pos + 4 + olen]
        pos += 4 + (olen + 3) // 4 * 4
        if code == 0:
            break
        if code == 9 and olen == 1:
            exp = value[0] & 0x7F
            resolution = 2.0**-exp if value[0] & 0x80 else 10.0**-exp
        elif code == 14 and olen == 8:
            offset = struct.unpack(order + "q", value)[0]
    return _Interface(linktype, resolution, offset)


# -------------------------------------------------------------------------------------------------------
# link, network and transport layers


def parse_frame(frame: Frame) -> TcpSegment | None:
    """The TCP segment in a frame, or None for anything else (non-IP, non-TCP, fragments, truncation)."""
    data = frame.data
    lt = frame.linktype
    if lt == LINKTYPE_ETHERNET:
        if len(data) < 14:
            return None
        ethertype = int.from_bytes(data[12:14], "big")
        pos = 14
        while ethertype in _ETH_VLAN and len(data) >= pos + 4:
            ethertype = int.from_bytes(data[pos + 2 : pos + 4], "big")
            pos += 4
        return _parse_ip(frame.timestamp, ethertype, data[pos:])
    if lt == LINKTYPE_LINUX_SLL:
        if len(data) < 16:
            return None
        return _parse_ip(frame.timestamp, int.from_bytes(data[14:16], "big"), data[16:])
    if lt == LINKTYPE_LINUX_SLL2:
        if len(data) < 20:
            return None
        return _parse_ip(frame.timestamp, int.from_bytes(data[0:2], "big"), data[20:])
    if lt in (LINKTYPE_RAW, LINKTYPE_RAW_BSD, LINKTYPE_IPV4, LINKTYPE_IPV6):
        if not data:
            return None
        version = data[0] >> 4
        return _parse_ip(frame.timestamp, _ETH_IPV4 if version == 4 else _ETH_IPV6, data)
    if lt in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if len(data) < 5:
            return None
        version = data[4] >> 4
        return _parse_ip(frame.timestamp, _ETH_IPV4 if version == 4 else _ETH_IPV6, data[4:])
    return None


def _parse_ip(stamp: float, ethertype: int, data: bytes) -> TcpSegment | None:
    src: ipaddress.IPv4Address | ipaddress.IPv6Address
    dst: ipaddress.IPv4Address | ipaddress.IPv6Address
    if ethertype == _ETH_IPV4:
        if len(data) < 20 or data[0] >> 4 != 4:
            return None
        ihl = (data[0] & 0x0F) * 4
        total = int.from_bytes(data[2:4], "big")
        frag = int.from_bytes(data[6:8], "big")
        if frag & 0x3FFF or data[9] != _IPPROTO_TCP or ihl < 20:  # MF set or offset: a fragment
            return None
        src, dst = ipaddress.IPv4Address(data[12:16]), ipaddress.IPv4Address(data[16:20])
        payload = data[ihl : max(total, ihl)] if total else data[ihl:]
    elif ethertype == _ETH_IPV6:
        if len(data) < 40 or data[0] >> 4 != 6:
            return None
        plen = int.from_bytes(data[4:6], "big")
        nxt = data[6]
        src, dst = ipaddress.IPv6Address(data[8:24]), ipaddress.IPv6Address(data[24:40])
        payload = data[40 : 40 + plen] if plen else data[40:]
        while nxt in _IPV6_EXTENSIONS:
            if len(payload) < 8:
                return None
            nxt, hlen = payload[0], (payload[1] + 1) * 8
            payload = payload[hlen:]
        if nxt != _IPPROTO_TCP:  # includes fragments (44): not reassembled
            return None
    else:
        return None
    if len(payload) < 20:
        return None
    sport, dport, seq = struct.unpack_from(">HHI", payload, 0)
    offset = (payload[12] >> 4) * 4
    if offset < 20 or offset > len(payload):
        return None
    return TcpSegment(
        stamp, Endpoint(src, sport), Endpoint(dst, dport), seq, payload[13], bytes(payload[offset:])
    )


# -------------------------------------------------------------------------------------------------------
# TCP reassembly


class _Direction:
    """Reassembly state of one direction of one connection (mutable, private)."""

    __slots__ = ("base", "next", "pending", "stream_id", "synchronised")

    def __init__(self, stream_id: int, base: int, synchronised: bool) -> None:
        self.stream_id = stream_id
        self.base = base  # sequence number of stream offset 0
        self.synchronised = synchronised  # the SYN was captured: offset 0 is the first byte sent
        self.next = 0  # stream offset of the next byte expected
        self.pending: dict[int, bytes] = {}  # stream offset -> data held beyond a gap


class TcpReassembler:
    """Per-direction reassembly by sequence number; ``feed`` returns newly contiguous data and notes.

    A SYN with a new initial sequence number starts a new stream on the same addresses (a reconnect).
    """

    def __init__(self) -> None:
        self._dirs: dict[tuple[Endpoint, Endpoint], _Direction] = {}
        self._ids = 0

    def _new(self, key: tuple[Endpoint, Endpoint], base: int, synchronised: bool) -> _Direction:
        self._ids += 1
        state = self._dirs[key] = _Direction(self._ids, base, synchronised)
        return state

    def feed(self, seg: TcpSegment) -> list[StreamData | StreamNote]:
        """Add one segment; retransmitted bytes are dropped, out-of-order ones held until the gap fills."""
        out: list[StreamData | StreamNote] = []
        key = (seg.src, seg.dst)
        state = self._dirs.get(key)
        seq = seg.seq
        if seg.syn:
            seq = (seg.seq + 1) % _SEQ_MOD  # the SYN takes one sequence number (RFC 9293 §3.4)
            if state is None or not state.synchronised or state.base != seq:
                if state is not None:
                    out += self._close(seg.timestamp, key, state)
                state = self._new(key, seq, True)
        if not seg.payload:
            return out
        if state is None:
            state = self._new(key, seq, False)
        start = self._offset(state, seq)
        data = seg.payload
        if start < state.next:  # retransmission or overlap: keep only what is new
            data = data[state.next - start :]
            start = state.next
        if not data:
            return out
        if start > state.next:  # out of order: hold until the gap fills
            if len(state.pending.get(start, b"")) < len(data):
                state.pending[start] = data
            return out
        chunks = [data]
        state.next += len(data)
        while True:
            ready = sorted(off for off in state.pending if off <= state.next)
            if not ready:
                break
            for off in ready:
                held = state.pending.pop(off)
                if off + len(held) > state.next:
                    chunks.append(held[state.next - off :])
                    state.next = off + len(held)
        out.append(
            StreamData(seg.timestamp, seg.src, seg.dst, b"".join(chunks), state.stream_id, state.synchronised)
        )
        return out

    @staticmethod
    def _offset(state: _Direction, seq: int) -> int:
        """The stream offset of ``seq``: the unwrapped value nearest to the next expected byte."""
        rel = (seq - state.base) % _SEQ_MOD
        lap = state.next - state.next % _SEQ_MOD
        candidates = (lap - _SEQ_MOD + rel, lap + rel, lap + _SEQ_MOD + rel)
        return min(candidates, key=lambda c: abs(c - state.next))  # below 0: before the first byte seen

    @staticmethod
    def _close(
        stamp: float, key: tuple[Endpoint, Endpoint], state: _Direction
    ) -> list[StreamData | StreamNote]:
        if not state.pending:
            return []
        lost = sum(len(d) for d in state.pending.values())
        return [
            StreamNote(
                stamp,
                key[0],
                key[1],
                f"{lost} bytes held after a gap at stream offset {state.next} were never completed "
                "(the capture missed segments)",
            )
        ]

    def finish(self, stamp: float = 0.0) -> list[StreamData | StreamNote]:
        """Notes for data still held behind gaps at the end of the capture."""
        out: list[StreamData | StreamNote] = []
        for key, state in self._dirs.items():
            out += self._close(stamp, key, state)
        return out


def tcp_streams(
    frames: Iterable[Frame], ports: Iterable[int] = (BGP_PORT,)
) -> Iterator[StreamData | StreamNote]:
    """Reassembled TCP data (and notes) of connections with either end on one of ``ports``, in capture order."""
    wanted = frozenset(ports)
    reassembler = TcpReassembler()
    last = 0.0
    for frame in frames:
        seg = parse_frame(frame)
        if seg is None or (seg.src.port not in wanted and seg.dst.port not in wanted):
            continue
        last = seg.timestamp
        yield from reassembler.feed(seg)
    yield from reassembler.finish(last)


# -------------------------------------------------------------------------------------------------------
# BGP framing


@dataclass(frozen=True, slots=True)
class Skipped:
    """``count`` bytes were dropped before the next BGP header was found."""

    count: int


class MessageSplitter:
    """Cuts BGP messages off a byte stream with ``MessageDecoder.split``; resynchronises on broken framing.

    After a framing error (RFC 4271 §6.1) it skips to the next plausible header (marker, length, type).
    ``synchronised=False`` (a capture that missed the SYN) starts that way, without an error.
    """

    def __init__(self, decoder: MessageDecoder, synchronised: bool = True) -> None:
        self.decoder = decoder
        self._buffer = bytearray()
        self._synced = synchronised
        self._skip_run = 0

    @property
    def pending(self) -> int:
        """Bytes held that do not (yet) form a whole message, including any being skipped."""
        return len(self._buffer) + self._skip_run

    def feed(self, data: bytes) -> list[bytes | MessageError | Skipped]:
        """Whole messages now available, in order, with a MessageError where the framing broke and a
        Skipped where bytes were dropped to find the next header."""
        buf = self._buffer
        buf += data
        out: list[bytes | MessageError | Skipped] = []
        while True:
            if not self._synced:
                found = _find_header(buf)
                if found < 0:
                    drop = max(len(buf) - (HEADER_LEN - 1), 0)  # a marker may straddle the next feed
                    self._skip_run += drop
                    del buf[:drop]
                    return out
                self._skip_run += found
                del buf[:found]
                self._synced = True
                if self._skip_run:
                    out.append(Skipped(self._skip_run))
                    self._skip_run = 0
            try:
                messages, used = self.decoder.split(buf)
            except MessageError as exc:
                good = _good_prefix(self.decoder, buf)
                if good:
                    messages, used = self.decoder.split(buf[:good])
                    out += messages
                    del buf[:used]
                out.append(exc)
                self._skip_run = 1  # the bad header's first byte; the search resumes after it
                del buf[:1]
                self._synced = False
                continue
            out += messages
            del buf[:used]
            return out


def _good_prefix(decoder: MessageDecoder, buffer: bytearray) -> int:
    """Length of the run of well-framed whole messages at the start of ``buffer``."""
    pos = 0
    while len(buffer) - pos >= HEADER_LEN and buffer[pos : pos + 16] == MARKER:
        length = int.from_bytes(buffer[pos + 16 : pos + 18], "big")
        if length < HEADER_LEN or length > decoder.options.max_message or pos + length > len(buffer):
            break
        pos += length
    return pos


def _find_header(buffer: bytearray) -> int:
    """Offset of the first plausible BGP header (marker, sane length, known type), -1 if none.

    A marker too close to the end to check its length and type counts as found.
    """
    pos = 0
    while True:
        pos = buffer.find(MARKER, pos)
        if pos < 0:
            return -1
        if len(buffer) - pos < HEADER_LEN:
            return pos
        length = int.from_bytes(buffer[pos + 16 : pos + 18], "big")
        if length >= HEADER_LEN and 1 <= buffer[pos + 18] <= 5:
            return pos
        pos += 1


def read_capture(path: str | Path) -> list[Frame]:
    """All frames of a capture file (raises OSError or PcapError)."""
    with open(path, "rb") as stream:
        return list(read_frames(stream))


BgpItem = BgpMessage | FramingError | StreamNote


def bgp_messages(
    frames: Iterable[Frame],
    ports: Iterable[int] = (BGP_PORT,),
    decoder_factory: Callable[[Endpoint, Endpoint], MessageDecoder] | None = None,
) -> Iterator[BgpItem]:
    """BGP messages of every TCP connection on ``ports``, in capture order, with framing errors and notes.

    ``decoder_factory(src, dst)`` gives the MessageDecoder that frames a new stream (default: a fresh one).
    """
    factory = decoder_factory or (lambda _src, _dst: MessageDecoder())
    splitters: dict[int, MessageSplitter] = {}
    endpoints: dict[int, tuple[Endpoint, Endpoint]] = {}
    last = 0.0
    for item in tcp_streams(frames, ports):
        last = item.timestamp or last
        if isinstance(item, StreamNote):
            yield item
            continue
        splitter = splitters.get(item.stream_id)
        if splitter is None:
            splitter = MessageSplitter(factory(item.src, item.dst), synchronised=item.synchronised)
            splitters[item.stream_id] = splitter
            endpoints[item.stream_id] = (item.src, item.dst)
        for res in splitter.feed(item.data):
            if isinstance(res, MessageError):
                yield FramingError(item.timestamp, item.src, item.dst, res)
            elif isinstance(res, Skipped):
                yield StreamNote(
                    item.timestamp, item.src, item.dst, f"skipped {res.count} bytes to the next BGP header"
                )
            else:
                yield BgpMessage(item.timestamp, item.src, item.dst, res)
    for stream_id, splitter in splitters.items():
        if splitter.pending:
            src, dst = endpoints[stream_id]
            yield StreamNote(
                last,
                src,
                dst,
                f"{splitter.pending} bytes at the end of the capture do not form a whole BGP message",
            )
