"""``evpn-speaker decode``: print the EVPN routes of BGP messages given as hex or in a pcap/pcapng capture.

Routes go to stdout, one per line (text in FRR's notation, or one JSON object with ``--json``). A malformed
message gives one error line on stderr naming its RFC 7606 outcome, and decoding goes on with the next one.
Exit code: 0 when everything decoded, 1 when anything was malformed, 2 on usage or file errors.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import re
import sys
from collections.abc import Iterator
from typing import BinaryIO, TextIO

from evpn.codec.capabilities import AddPath, Capability, CapabilityCode, FourOctetAs, Multiprotocol
from evpn.codec.evpn_nlri import EvpnRoute, IPAddress
from evpn.codec.families import Afi, Family, Safi
from evpn.codec.messages import (
    DecodeOptions,
    Keepalive,
    Message,
    MessageDecoder,
    MessageType,
    NotificationMessage,
    Open,
    Route,
    RouteRefreshMessage,
    Update,
)
from evpn.codec.route_view import Action, route_to_dict, route_to_text
from evpn.errors import MessageError, Rfc7606Action, describe_notification
from speaker.pcap import (
    BGP_PORT,
    BgpMessage,
    Endpoint,
    Frame,
    FramingError,
    MessageSplitter,
    PcapError,
    PcapTruncated,
    Skipped,
    StreamNote,
    bgp_messages,
    read_frames,
)

OK, MALFORMED, USAGE = 0, 1, 2

# Capabilities the codec keeps opaque, named as IANA does (FRR and GoBGP send these).
_OTHER_CAPABILITIES = {
    5: "extended-nexthop",
    9: "bgp-role",
    71: "long-lived-gr",
    73: "fqdn",
    128: "route-refresh-old",
}
_MESSAGE_NAMES = {t.value: t.name.replace("_", "-") for t in MessageType}


class UsageError(Exception):
    """Bad arguments or input that is not hex: exit code 2."""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Register ``decode`` and its options."""
    parser = sub.add_parser(
        "decode",
        help="print the EVPN routes of BGP messages (hex or pcap/pcapng)",
        description=(
            "Decode BGP messages given as hex (arguments, '-' or piped stdin; whitespace allowed, one "
            "message or many concatenated) or read from a pcap/pcapng capture (TCP reassembled), and print "
            "every EVPN route announced or withdrawn. Exit code: 0 all decoded, 1 something was malformed "
            "(details on stderr), 2 usage or file error."
        ),
    )
    parser.add_argument("hex", nargs="*", metavar="HEX", help="BGP messages as hex, or '-' for stdin")
    parser.add_argument("--pcap", metavar="FILE", help="read BGP over TCP from a pcap or pcapng file")
    parser.add_argument(
        "--port",
        type=_port,
        action="append",
        metavar="PORT",
        help=f"TCP port carrying BGP in the capture (repeatable; default {BGP_PORT})",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per route")
    parser.add_argument(
        "--all",
        action="store_true",
        help="also show OPEN, KEEPALIVE, NOTIFICATION, End-of-RIB, unicast routes",
    )
    parser.add_argument(
        "--two-octet-as",
        action="store_true",
        help="read AS numbers in hex input as 2 octets (a capture's OPENs decide this per session)",
    )
    return parser


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"port out of range: {port}")
    return port


def parse_hex(text: str) -> bytes:
    """Hex with any whitespace, ``0x`` prefixes, ``:``/``-`` separators and ``#`` comments, as bytes."""
    text = re.sub(r"#[^\n]*", "", text)
    text = re.sub(r"\b0[xX]", "", text)
    digits = re.sub(r"[\s:\-]", "", text)
    if len(digits) % 2:
        raise UsageError(f"odd number of hex digits ({len(digits)})")
    try:
        return bytes.fromhex(digits)
    except ValueError:
        bad = next(c for c in digits if c not in "0123456789abcdefABCDEF")
        raise UsageError(f"not hex: unexpected character {bad!r}") from None


# -------------------------------------------------------------------------------------------------------
# sessions: per-connection decode options learnt from the OPENs of a capture


class _Decoders:
    """One MessageDecoder per direction; a capture's OPEN pair decides 2- or 4-octet AS numbers (RFC 6793)."""

    def __init__(self, default: DecodeOptions) -> None:
        self.default = default
        self._decoders: dict[tuple[Endpoint, Endpoint], MessageDecoder] = {}
        self._opens: dict[frozenset[Endpoint], dict[Endpoint, Open]] = {}

    def get(self, src: Endpoint, dst: Endpoint) -> MessageDecoder:
        decoder = self._decoders.get((src, dst))
        if decoder is None:
            decoder = self._decoders[(src, dst)] = MessageDecoder(self.default)
        return decoder

    def saw_open(self, src: Endpoint, dst: Endpoint, message: Open) -> bool:
        """Record an OPEN; once both sides' are seen, set their decoders. True if ADD-PATH was negotiated
        for EVPN (RFC 7911), which this codec does not read."""
        opens = self._opens.setdefault(frozenset((src, dst)), {})
        opens[src] = message
        peer = opens.get(dst)
        if peer is None:
            return False
        both = all(any(isinstance(c, FourOctetAs) for c in o.capabilities) for o in (message, peer))
        options = DecodeOptions(four_octet_as=both, max_message=self.default.max_message)
        self._decoders[(src, dst)] = MessageDecoder(options)
        self._decoders[(dst, src)] = MessageDecoder(options)
        return _add_path_evpn(message) and _add_path_evpn(peer)


def _add_path_evpn(message: Open) -> bool:
    return any(
        isinstance(c, AddPath) and any((f.afi, f.safi) == (Afi.L2VPN, Safi.EVPN) for f in c.families)
        for c in message.capabilities
    )


# -------------------------------------------------------------------------------------------------------
# output


class _Printer:
    """Writes routes to ``out`` and problems to ``err``; remembers whether anything was malformed."""

    def __init__(self, out: TextIO, err: TextIO, as_json: bool, show_all: bool) -> None:
        self.out = out
        self.err = err
        self.as_json = as_json
        self.show_all = show_all
        self.malformed = False
        self._last_flow: tuple[Endpoint, Endpoint] | None = None

    def flow(self, src: Endpoint, dst: Endpoint, stamp: float) -> None:
        """A ``# time src > dst`` header in text mode whenever the direction changes."""
        if self.as_json or self._last_flow == (src, dst):
            return
        self._last_flow = (src, dst)
        self.out.write(f"# {stamp:.6f} {src} > {dst}\n")

    def error(self, where: str, exc: MessageError) -> None:
        self.malformed = True
        outcome = f"RFC 7606 {exc.action.value}"
        if exc.notification is not None:
            n = exc.notification
            outcome += f" (NOTIFICATION {n.code}/{n.subcode} {n.describe()})"
        elif exc.action is Rfc7606Action.TREAT_AS_WITHDRAW:
            outcome += f" ({len(exc.withdrawn)} routes treated as withdrawn)"
        elif exc.action is Rfc7606Action.ATTRIBUTE_DISCARD:
            outcome += f" (attribute {', '.join(str(c) for c in exc.discarded)} discarded, routes kept)"
        self.err.write(f"error: {where}: {outcome}: {exc.reason}\n")

    def note(self, where: str, text: str) -> None:
        self.err.write(f"note: {where}: {text}\n")

    def route(self, route: EvpnRoute, update: Update, next_hop: IPAddress | None, action: Action) -> None:
        attrs = update.attributes if action == "announce" else None
        if self.as_json:
            self._json(route_to_dict(route, attrs, next_hop, action))
        else:
            self.out.write(route_to_text(route, attrs, next_hop, action) + "\n")

    def other(self, obj: dict[str, object], text: str) -> None:
        """A non-EVPN message or route, shown only with --all."""
        if not self.show_all:
            return
        if self.as_json:
            self._json(obj)
        else:
            self.out.write(text + "\n")

    def _json(self, obj: dict[str, object]) -> None:
        self.out.write(json.dumps(obj) + "\n")


def _capability_text(cap: Capability) -> str:
    if isinstance(cap, Multiprotocol):
        family = Family.lookup(cap.afi, cap.safi)
        return f"mp:{family}" if family is not None else f"mp:{cap.afi}/{cap.safi}"
    if isinstance(cap, FourOctetAs):
        return f"as4:{cap.asn}"
    try:
        return CapabilityCode(cap.code).name.lower().replace("_", "-")
    except ValueError:
        return _OTHER_CAPABILITIES.get(int(cap.code), f"capability-{int(cap.code)}")


def _open_asn(message: Open) -> int:
    """The speaker's AS: from the 4-octet AS capability when present (RFC 6793 §3), else the OPEN field."""
    for cap in message.capabilities:
        if isinstance(cap, FourOctetAs):
            return cap.asn
    return message.my_as


def _show_message(printer: _Printer, message: Message) -> None:
    """Print one decoded message: EVPN routes always, everything else with --all."""
    if isinstance(message, Update):
        _show_update(printer, message)
    elif isinstance(message, Open):
        caps = [_capability_text(c) for c in message.capabilities]
        printer.other(
            {
                "message": "open",
                "asn": _open_asn(message),
                "hold_time": message.hold_time,
                "bgp_id": str(message.bgp_id),
                "capabilities": caps,
            },
            f"OPEN AS {_open_asn(message)} hold {message.hold_time} id {message.bgp_id} {' '.join(caps)}".rstrip(),
        )
    elif isinstance(message, Keepalive):
        printer.other({"message": "keepalive"}, "KEEPALIVE")
    elif isinstance(message, NotificationMessage):
        text = describe_notification(message.code, message.subcode)
        printer.other(
            {"message": "notification", "code": message.code, "subcode": message.subcode, "text": text},
            f"NOTIFICATION {message.code}/{message.subcode} {text}",
        )
    elif isinstance(message, RouteRefreshMessage):
        family = Family.lookup(message.afi, message.safi)
        name = str(family) if family is not None else f"{message.afi}/{message.safi}"
        printer.other(
            {"message": "route-refresh", "family": name, "subtype": message.subtype},
            f"ROUTE-REFRESH {name}" + (f" subtype {message.subtype}" if message.subtype else ""),
        )


def _show_update(printer: _Printer, update: Update) -> None:
    eor = update.end_of_rib
    if eor is not None:
        printer.other({"message": "end-of-rib", "family": str(eor)}, f"End-of-RIB {eor}")
        return
    reach, unreach = update.mp_reach, update.mp_unreach
    for route in update.withdrawn_routes:
        _show_route(printer, route, update, None, "withdraw")
    for route in update.nlri:
        _show_route(
            printer, route, update, update.attributes.next_hop if update.attributes else None, "announce"
        )
    if reach is not None:
        for route in reach.routes:
            _show_route(printer, route, update, reach.next_hop, "announce")
        if reach.raw_nlri:
            printer.other(
                {"message": "update", "afi": reach.afi, "safi": reach.safi, "undecoded": "mp_reach"},
                f"UPDATE MP_REACH_NLRI for AFI {reach.afi} SAFI {reach.safi} (not decoded)",
            )
    if unreach is not None and unreach.raw_nlri:
        printer.other(
            {"message": "update", "afi": unreach.afi, "safi": unreach.safi, "undecoded": "mp_unreach"},
            f"UPDATE MP_UNREACH_NLRI for AFI {unreach.afi} SAFI {unreach.safi} (not decoded)",
        )


def _show_route(
    printer: _Printer, route: Route, update: Update, next_hop: IPAddress | None, action: Action
) -> None:
    if not isinstance(route, ipaddress.IPv4Network | ipaddress.IPv6Network):
        printer.route(route, update, next_hop, action)
        return
    family = "ipv4 unicast" if route.version == 4 else "ipv6 unicast"
    obj: dict[str, object] = {"action": action, "family": family, "prefix": str(route)}
    text = f"{action} {route}"
    if action == "announce" and next_hop is not None:
        obj["next_hop"] = str(next_hop)
        text += f" nexthop {next_hop}"
    printer.other(obj, text)


def _decode_one(printer: _Printer, decoder: MessageDecoder, data: bytes, where: str) -> None:
    try:
        message = decoder.decode(data)
    except MessageError as exc:
        printer.error(where, exc)
        if exc.action is Rfc7606Action.ATTRIBUTE_DISCARD and isinstance(exc.update, Update):
            _show_update(printer, exc.update)  # the rest of the UPDATE stands (RFC 7606 §2)
        return
    _show_message(printer, message)


def _describe(data: bytes, index: int) -> str:
    kind = _MESSAGE_NAMES.get(data[18], f"type {data[18]}") if len(data) > 18 else "?"
    return f"message {index} ({kind}, {len(data)} bytes)"


# -------------------------------------------------------------------------------------------------------
# inputs


def _decode_hex(printer: _Printer, data: bytes, options: DecodeOptions) -> None:
    decoder = MessageDecoder(options)
    splitter = MessageSplitter(decoder)
    index = 0
    offset = 0
    broken = False
    for item in splitter.feed(data):
        if isinstance(item, Skipped):
            printer.note(f"offset {offset}", f"skipped {item.count} bytes to the next BGP header")
            offset += item.count
            broken = False
        elif isinstance(item, MessageError):
            printer.error(f"offset {offset}", item)
            broken = True
        else:
            index += 1
            _decode_one(printer, decoder, item, f"{_describe(item, index)} at offset {offset}")
            offset += len(item)
    if splitter.pending:
        printer.malformed = True
        what = "no further BGP header found" if broken else "truncated BGP message"
        printer.err.write(f"error: offset {offset}: {splitter.pending} bytes left over: {what}\n")


def _decode_pcap(printer: _Printer, path: str, ports: list[int], options: DecodeOptions) -> None:
    try:
        stream = open(path, "rb")  # noqa: SIM115 - closed below; frames are read as decoding goes
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    decoders = _Decoders(options)
    counts: dict[tuple[Endpoint, Endpoint], int] = {}
    cut_short: list[str] = []
    try:
        for item in bgp_messages(_frames(stream, cut_short), ports):
            where = f"{item.timestamp:.6f} {item.src} > {item.dst}"
            if isinstance(item, StreamNote):
                printer.note(where, item.text)
            elif isinstance(item, FramingError):
                printer.error(where, item.error)
            else:
                _decode_captured(printer, decoders, counts, item, where)
    except PcapError as exc:
        raise UsageError(f"{path}: {exc}") from exc
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    finally:
        stream.close()
    for text in cut_short:
        printer.note(path, f"{text}: the capture was cut short; decoded what came before")


def _frames(stream: BinaryIO, cut_short: list[str]) -> Iterator[Frame]:
    """The frames of a capture; a file ending inside a record ends the iteration with a note."""
    try:
        yield from read_frames(stream)
    except PcapTruncated as exc:
        cut_short.append(str(exc))


def _decode_captured(
    printer: _Printer,
    decoders: _Decoders,
    counts: dict[tuple[Endpoint, Endpoint], int],
    item: BgpMessage,
    where: str,
) -> None:
    key = (item.src, item.dst)
    counts[key] = counts.get(key, 0) + 1
    decoder = decoders.get(item.src, item.dst)
    label = f"{where} {_describe(item.data, counts[key])}"
    try:
        message = decoder.decode(item.data)
    except MessageError as exc:
        printer.error(label, exc)
        if exc.action is Rfc7606Action.ATTRIBUTE_DISCARD and isinstance(exc.update, Update):
            printer.flow(item.src, item.dst, item.timestamp)
            _show_update(printer, exc.update)
        return
    if isinstance(message, Open) and decoders.saw_open(item.src, item.dst, message):
        printer.note(where, "ADD-PATH is negotiated for l2vpn evpn: path identifiers are not read (RFC 7911)")
    if _visible(message, printer.show_all):
        printer.flow(item.src, item.dst, item.timestamp)
    _show_message(printer, message)


def _visible(message: Message, show_all: bool) -> bool:
    if show_all:
        return True
    if not isinstance(message, Update):
        return False
    return any(not isinstance(r, ipaddress.IPv4Network | ipaddress.IPv6Network) for r in _routes(message))


def _routes(update: Update) -> Iterator[Route]:
    yield from update.announced_routes
    yield from update.withdrawn_routes


def run(args: argparse.Namespace, stdin: TextIO | None = None) -> int:
    """Execute ``decode``; returns the exit code."""
    out, err = sys.stdout, sys.stderr
    stdin = stdin if stdin is not None else sys.stdin
    printer = _Printer(out, err, args.json, args.all)
    options = DecodeOptions(four_octet_as=not args.two_octet_as)
    hex_args: list[str] = args.hex
    try:
        if args.pcap is not None:
            if hex_args:
                raise UsageError("give either --pcap FILE or hex input, not both")
            _decode_pcap(printer, args.pcap, args.port or [BGP_PORT], options)
        else:
            if args.port:
                raise UsageError("--port applies to --pcap input only")
            if hex_args == ["-"] or (not hex_args and not stdin.isatty()):
                text = stdin.read()
            elif "-" in hex_args:
                raise UsageError("'-' (stdin) cannot be combined with hex arguments")
            elif hex_args:
                text = " ".join(hex_args)
            else:
                raise UsageError("nothing to decode: give hex, '-' or pipe hex on stdin, or --pcap FILE")
            data = parse_hex(text)
            if not data:
                raise UsageError("no hex input")
            _decode_hex(printer, data, options)
    except UsageError as exc:
        out.flush()
        err.write(f"evpn-speaker decode: error: {exc}\n")
        return USAGE
    out.flush()
    return MALFORMED if printer.malformed else OK
