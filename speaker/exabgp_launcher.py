"""ExaBGP 5.0.15 launcher for the ``exabgp`` session engine (run as ``python -m speaker.exabgp_launcher``).

Two roles, chosen by the command line:

``python -m speaker.exabgp_launcher CONFIG``
    Registers seven API commands with ExaBGP's own ``Command.register`` mechanism, then calls ExaBGP's
    ``main()`` on CONFIG (the process *is* ExaBGP; no reactor embedding, no thread):

    ``neighbor <ip> evpn-announce <next-hop> <attributes-hex> <key>=<nlri-hex> [<key>=<nlri-hex> ...]``
    ``neighbor <ip> evpn-withdraw <key>=<nlri-hex> [<key>=<nlri-hex> ...]``
    ``neighbor <ip> ipv4-announce|ipv6-announce <next-hop> <attributes-hex> <nlri-hex> [<nlri-hex> ...]``
    ``neighbor <ip> ipv4-withdraw|ipv6-withdraw <nlri-hex> [<nlri-hex> ...]``
    ``neighbor <ip> evpn-cease``

    ``nlri-hex`` is one NLRI encoded by our codec (an EVPN route: type, length, value; a unicast prefix:
    length in bits, then the prefix octets, RFC 4271 §4.3) and ``attributes-hex`` our encoded path
    attributes (without MP_REACH/MP_UNREACH; with NEXT_HOP for IPv4 unicast only, RFC 4760 §3); both travel
    unchanged, as ExaBGP EVPN / INET NLRI objects carrying our bytes and ``GenericAttribute`` objects (ExaBGP
    packs those verbatim). ``key`` is an opaque token for the EVPN route key (RD, Ethernet Tag, MAC, IP for
    a type-2): ExaBGP keys its RIB on it, so an announcement replaces the earlier one of the same route
    even when a label changed, and a withdraw names it (a unicast route's key is its prefix, as in
    ExaBGP). ``evpn-cease`` ends the session with a Cease / Administrative Shutdown NOTIFICATION even when
    graceful restart was negotiated (ExaBGP otherwise closes such sessions silently), for good: the neighbor
    neither reconnects nor accepts a connection again in this ExaBGP process (it is meant for ``stop``).

    After sending a NOTIFICATION, ExaBGP's socket half-closes and lingers (``linger_close``) instead of closing
    at once, so a peer that is writing at that moment reads the NOTIFICATION rather than a TCP reset.

    One documented change of ExaBGP behaviour, on by default: EVPN and IPv6 unicast routes sharing
    attributes and next hop are grouped into one UPDATE (ExaBGP 5.0.15 groups only IPv4 unicast and
    MCAST-VPN; see EXABGP.md). ``EVPN_SPEAKER_EXABGP_GROUP=0`` in the environment turns it off.

``python -m speaker.exabgp_launcher --relay SOCKET``
    The API process ExaBGP runs: copies ExaBGP's JSON lines (its stdin) to the engine's Unix socket and the
    engine's command lines back to ExaBGP (its stdout). It exits when either side closes.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

EXABGP_VERSION = "5.0.15"
# ExaBGP dispatches a line to the first registered command (reverse-sorted) equal to it, ending it or
# followed by a space inside it: a verb must never put a built-in command (``withdraw ipv4``, ``announce
# route`` ...) in the line, hence ``ipv4-withdraw`` and not ``inet-withdraw ipv4``.
COMMANDS = (
    "evpn-announce",
    "evpn-withdraw",
    "ipv4-announce",
    "ipv4-withdraw",
    "ipv6-announce",
    "ipv6-withdraw",
    "evpn-cease",
)
ATTR_EXTENDED_LENGTH = 0x10
NEXT_HOP = 3
MP_REACH, MP_UNREACH = 14, 15
PMSI_TUNNEL = 22
CEASE_ADMINISTRATIVE_SHUTDOWN = 2
NOTIFICATION_LINGER = 2.0  # seconds a socket stays open for reading after we sent a NOTIFICATION


class CommandError(ValueError):
    """A launcher command line that cannot be parsed."""


@dataclass(frozen=True, slots=True)
class EvpnCommand:
    """A parsed launcher command (pure data: no ExaBGP object).

    ``family`` is ``evpn``, ``ipv4`` or ``ipv6`` (unicast); ``routes`` are (key, NLRI bytes), the key
    empty for unicast (the prefix is its own key).
    """

    action: str
    peers: tuple[str, ...]
    next_hop: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    attributes: tuple[tuple[int, int, bytes], ...] = ()
    routes: tuple[tuple[str, bytes], ...] = ()
    family: str = "evpn"


def split_attributes(data: bytes) -> list[tuple[int, int, bytes]]:
    """Cut encoded path attributes into (flags, type code, value); MP_REACH/MP_UNREACH are refused."""
    out: list[tuple[int, int, bytes]] = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 3:
            raise CommandError("truncated path attribute header")
        flags, code = data[pos], data[pos + 1]
        if flags & ATTR_EXTENDED_LENGTH:
            if len(data) - pos < 4:
                raise CommandError("truncated path attribute header")
            length = int.from_bytes(data[pos + 2 : pos + 4], "big")
            pos += 4
        else:
            length = data[pos + 2]
            pos += 3
        if pos + length > len(data):
            raise CommandError(f"path attribute {code} overruns the attribute bytes")
        if code in (MP_REACH, MP_UNREACH):
            raise CommandError("MP_REACH_NLRI/MP_UNREACH_NLRI are built by ExaBGP, not passed in")
        out.append((flags & ~ATTR_EXTENDED_LENGTH, code, data[pos : pos + length]))
        pos += length
    return out


def _unhex(text: str, what: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise CommandError(f"{what} is not hex: {text[:40]!r}") from None


def _routes(tokens: list[str]) -> tuple[tuple[str, bytes], ...]:
    out = []
    for token in tokens:
        key, sep, nlri_hex = token.partition("=")
        if not sep or not key:
            raise CommandError(f"route token must be <key>=<nlri-hex>: {token[:40]!r}")
        nlri = _unhex(nlri_hex, "NLRI")
        if len(nlri) < 2 or nlri[1] != len(nlri) - 2:
            raise CommandError(f"NLRI {nlri_hex[:40]} is not one EVPN route (type, length, value)")
        out.append((key, nlri))
    if not out:
        raise CommandError("no route given")
    return tuple(out)


def _prefixes(family: str, tokens: list[str]) -> tuple[tuple[str, bytes], ...]:
    """Unicast NLRIs: one prefix each, length in bits then ceil(length / 8) octets (RFC 4271 §4.3)."""
    bits = 32 if family == "ipv4" else 128
    out = []
    for token in tokens:
        nlri = _unhex(token, "NLRI")
        if not nlri or nlri[0] > bits or len(nlri) != 1 + (nlri[0] + 7) // 8:
            raise CommandError(f"NLRI {token[:40]} is not one {family} prefix")
        out.append(("", nlri))
    if not out:
        raise CommandError("no route given")
    return tuple(out)


def _next_hop(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise CommandError(f"bad next hop {text!r}") from None


def parse_command(line: str) -> EvpnCommand:
    """Parse ``neighbor <ip> [neighbor <ip> ...] <verb> ...`` (the peers come first, as in ExaBGP)."""
    tokens = line.split()
    peers: list[str] = []
    while len(tokens) >= 2 and tokens[0] == "neighbor":
        peers.append(str(ipaddress.ip_address(tokens[1])))
        tokens = tokens[2:]
    if not tokens or tokens[0] not in COMMANDS:
        raise CommandError(f"not an evpn command: {line[:60]!r}")
    verb, args = tokens[0], tokens[1:]
    if verb == "evpn-cease":
        if args:
            raise CommandError("evpn-cease takes no argument")
        return EvpnCommand("cease", tuple(peers))
    if verb == "evpn-withdraw":
        return EvpnCommand("withdraw", tuple(peers), routes=_routes(args))
    if verb.startswith(("ipv4-", "ipv6-")):
        family, _, action = verb.partition("-")
        if action == "withdraw":
            return EvpnCommand("withdraw", tuple(peers), routes=_prefixes(family, args), family=family)
        if len(args) < 3:
            raise CommandError(f"{verb} <next-hop> <attributes-hex> <nlri-hex>...")
        next_hop = _next_hop(args[0])
        raw = b"" if args[1] == "-" else _unhex(args[1], "attributes")
        attributes = tuple(split_attributes(raw))
        hops = [value for _, code, value in attributes if code == NEXT_HOP]
        if family == "ipv4" and (next_hop.version != 4 or hops != [next_hop.packed]):
            raise CommandError(
                "IPv4 unicast needs the IPv4 next hop in a NEXT_HOP attribute (RFC 4271 §5.1.3)"
            )
        if family == "ipv6" and hops:
            raise CommandError("NEXT_HOP is for IPv4 unicast only (RFC 4760 §3: the next hop is in MP_REACH)")
        return EvpnCommand(
            "announce", tuple(peers), next_hop, attributes, _prefixes(family, args[2:]), family
        )
    if len(args) < 3:
        raise CommandError("evpn-announce <next-hop> <attributes-hex> <key>=<nlri-hex>...")
    next_hop = _next_hop(args[0])
    raw = b"" if args[1] == "-" else _unhex(args[1], "attributes")
    attributes = tuple(split_attributes(raw))
    if any(code == NEXT_HOP for _, code, _ in attributes):
        raise CommandError("NEXT_HOP is for IPv4 unicast only (RFC 4760 §3: the next hop is in MP_REACH)")
    return EvpnCommand("announce", tuple(peers), next_hop, attributes, _routes(args[2:]))


def format_command(
    verb: str,
    peer: str,
    *,
    next_hop: str | None = None,
    attributes: bytes = b"",
    routes: tuple[tuple[str, bytes], ...] | list[tuple[str, bytes]] = (),
) -> str:
    """The command line the engine writes (the inverse of ``parse_command``)."""
    parts = ["neighbor", peer, verb]
    if verb.endswith("-announce"):
        parts += [str(next_hop), attributes.hex() or "-"]
    if verb.startswith(("ipv4-", "ipv6-")):
        parts += [nlri.hex() for _, nlri in routes]
    else:
        parts += [f"{key}={nlri.hex()}" for key, nlri in routes]
    return " ".join(parts)


def linger_close(sock: socket.socket, timeout: float = NOTIFICATION_LINGER) -> threading.Thread:
    """Close ``sock`` (a BGP connection we just sent a NOTIFICATION on) so that the peer can read it.

    A plain ``close()`` with unread bytes from the peer (a KEEPALIVE crossing our NOTIFICATION), or bytes
    arriving after it, makes the kernel answer with a RST; a peer that writes before it reads then sees
    ECONNRESET and drops the connection without the NOTIFICATION (ExaBGP does: a Cease became "closing
    connection", taken for a graceful restart). So: FIN after the NOTIFICATION (``shutdown(SHUT_WR)``), read
    and discard until the peer closes too or ``timeout``, then close. Runs in a non-daemon thread, so the
    process finishes lingering before it exits (at most ``timeout``). Takes ownership of ``sock``.
    """

    def run() -> None:
        try:
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(timeout)
            while sock.recv(65536):
                pass
        except OSError:
            pass
        finally:
            sock.close()

    thread = threading.Thread(target=run, name="evpn-notification-linger")
    thread.start()
    return thread


# -- inside ExaBGP ---------------------------------------------------------------------------------------
def _install() -> None:  # pragma: no cover - runs inside the ExaBGP process (covered by the contract tests)
    from exabgp.bgp.message import Action
    from exabgp.bgp.message.update import Update
    from exabgp.bgp.message.update.attribute import Attributes
    from exabgp.bgp.message.update.attribute.generic import GenericAttribute
    from exabgp.bgp.message.update.nlri.cidr import CIDR
    from exabgp.bgp.message.update.nlri.evpn.nlri import GenericEVPN
    from exabgp.bgp.message.update.nlri.inet import INET
    from exabgp.protocol.family import AFI, SAFI
    from exabgp.protocol.ip import IP
    from exabgp.reactor.api.command.command import Command
    from exabgp.reactor.api.command.limit import match_neighbor
    from exabgp.reactor.network.connection import Connection
    from exabgp.reactor.protocol import Protocol
    from exabgp.rib.change import Change
    from exabgp.rib.outgoing import OutgoingRIB
    from exabgp.version import version

    if version != EXABGP_VERSION:
        sys.stderr.write(f"evpn launcher: ExaBGP {version} found, {EXABGP_VERSION} required\n")
        sys.exit(2)

    families = {
        "evpn": (AFI.l2vpn, SAFI.evpn),
        "ipv4": (AFI.ipv4, SAFI.unicast),
        "ipv6": (AFI.ipv6, SAFI.unicast),
    }

    class KeyedEVPN(GenericEVPN):  # type: ignore[misc]
        """Our NLRI bytes, keyed in ExaBGP's RIB by our route key (so labels/ESI changes replace)."""

        def __init__(self, code: int, packed: bytes, key: str) -> None:
            GenericEVPN.__init__(self, code, packed)
            self._evpn_key = key.encode()

        def index(self) -> bytes:
            return b"evpn-speaker:" + self._evpn_key

    class NextHopBytes(GenericAttribute):  # type: ignore[misc]
        """Our NEXT_HOP attribute bytes; ``Attributes.pack`` asks a NEXT_HOP whether it is IPv4."""

        def ipv4(self) -> bool:
            return len(self.data) == 4

    def build_attributes(cmd: EvpnCommand) -> Any:
        attributes = Attributes()
        for flags, code, value in cmd.attributes:
            kind = NextHopBytes if code == NEXT_HOP else GenericAttribute
            attributes.add(kind(code, flags, value))
        return attributes

    def build_nlri(cmd: EvpnCommand, key: str, nlri_bytes: bytes) -> Any:
        if cmd.family == "evpn":
            return KeyedEVPN(nlri_bytes[0], nlri_bytes[2:], key)
        afi, safi = families[cmd.family]
        inet = INET(afi, safi)
        size = 4 if cmd.family == "ipv4" else 16
        inet.cidr = CIDR(nlri_bytes[1:] + bytes(size - len(nlri_bytes) + 1), nlri_bytes[0])
        return inet

    def changes(cmd: EvpnCommand) -> Iterator[Any]:
        attributes = build_attributes(cmd) if cmd.action == "announce" else Attributes()
        nexthop = IP.create(str(cmd.next_hop)) if cmd.next_hop is not None else None
        for key, nlri_bytes in cmd.routes:
            nlri = build_nlri(cmd, key, nlri_bytes)
            if cmd.action == "announce":
                nlri.action = Action.ANNOUNCE
                nlri.nexthop = nexthop
            else:
                nlri.action = Action.WITHDRAW
            yield Change(nlri, attributes)

    def handler(self: Any, reactor: Any, service: str, line: str, use_json: bool) -> bool:
        def callback() -> Iterator[bool]:
            try:
                cmd = parse_command(line)
                # ExaBGP's extract_neighbors returns a different shape for one-word commands: match ourselves.
                peers = [
                    name
                    for name in reactor.peers(service)
                    if not cmd.peers or any(match_neighbor([f"neighbor {ip}"], name) for ip in cmd.peers)
                ]
                if not peers:
                    self.log_failure(f"no neighbor matching the command: {line[:80]}")
                    reactor.processes.answer_error(service)
                    yield True
                    return
                if cmd.action == "cease":
                    for name in peers:
                        # ExaBGP closes silently when graceful restart was announced (peer.py _main);
                        # an administrative shutdown must say so (RFC 4486 §4).
                        for neighbor in (reactor.configuration.neighbors.get(name), reactor.neighbor(name)):
                            if neighbor is not None:
                                neighbor["capability"]["graceful-restart"] = 0
                        # Not reactor.teardown_peer: it restarts the peer, which reconnects (and accepts the
                        # peer's reconnection) at once, so a new session could come up after the Cease and
                        # before the engine stops this ExaBGP, only to be closed then without a NOTIFICATION.
                        # Without restart the peer stays down and refuses connections with Cease 6/3.
                        peer = reactor._peers.get(name)
                        if peer is not None:
                            peer.teardown(CEASE_ADMINISTRATIVE_SHUTDOWN, restart=False)
                        self.log_message(f"administrative shutdown of {name}")
                    reactor.processes.answer_done(service)
                    yield True
                    return
                for name in peers:
                    neighbor = reactor.configuration.neighbors.get(name)
                    if neighbor is None or families[cmd.family] not in neighbor.families():
                        continue
                    rib = neighbor.rib.outgoing
                    for change in changes(cmd):
                        if cmd.action == "announce":
                            rib.add_to_rib(change, force=True)
                        else:
                            rib.del_from_rib(change)
                    yield False
                reactor.processes.answer_done(service)
            except (CommandError, ValueError) as exc:
                self.log_failure(f"evpn command refused: {exc}")
                reactor.processes.answer_error(service)
                yield True
            except Exception as exc:  # ExaBGP's scheduler would swallow it silently
                sys.stderr.write(f"evpn launcher: {line[:80]}: {type(exc).__name__}: {exc}\n")
                sys.stderr.flush()
                raise

        reactor.asynchronous.schedule(service, line, callback())
        return True

    for name in COMMANDS:
        Command.register(name)(handler)

    # Received attributes are decoded by our codec from the raw bytes; ExaBGP only needs to carry them.
    # Its PMSI_TUNNEL parser refuses valid tunnel identifiers (an IPv6 VTEP: NOTIFICATION 3/9), so PMSI is
    # left to its generic (opaque, transitive) handling.
    from exabgp.bgp.message.update.attribute.attribute import Attribute

    for key in [k for k in Attribute.registered_attributes if k[0] == PMSI_TUNNEL]:
        del Attribute.registered_attributes[key]

    # ExaBGP 5.0.15 accepts only a 4-octet (IPv4) next hop in a received EVPN MP_REACH_NLRI; an IPv6 VTEP
    # (16, or 32 with a link-local, RFC 2545 §3) is valid EVPN (RFC 7432 §7, RFC 8365 §5.1.3).
    from exabgp.protocol.family import Family as ExaFamily

    ExaFamily.size[(AFI.l2vpn, SAFI.evpn)] = ((4, 16, 32), 0)

    # ExaBGP closes the socket right after writing a NOTIFICATION: see linger_close. The connection's own
    # descriptor is closed as before (ExaBGP's poller sees nothing new); a duplicate keeps the socket open.
    original_notification: Callable[..., Iterator[Any]] = Protocol.new_notification
    original_close: Callable[[Any], None] = Connection.close

    def new_notification(self: Any, notification: Any) -> Iterator[Any]:
        if self.connection is not None:
            self.connection.evpn_linger = True
        yield from original_notification(self, notification)

    def close(self: Any) -> None:
        if self.io is not None and getattr(self, "evpn_linger", False):
            self.evpn_linger = False
            with contextlib.suppress(OSError):
                linger_close(self.io.dup())
        original_close(self)

    Protocol.new_notification = new_notification
    Connection.close = close

    if os.environ.get("EVPN_SPEAKER_EXABGP_GROUP", "1") != "0":
        original: Callable[..., Iterator[Any]] = OutgoingRIB.updates
        groupable = {families["evpn"], families["ipv6"]}  # ExaBGP groups IPv4 unicast itself

        def grouped_updates(self: Any, grouped: bool) -> Iterator[Any]:
            """ExaBGP's updates(), with consecutive one-route EVPN (IPv6 unicast) UPDATEs of one attribute set
            and family merged."""
            pending: list[Any] = []
            attributes: Any = None
            family: Any = None

            def flush() -> Iterator[Any]:
                if pending:
                    yield Update(list(pending), attributes)
                    pending.clear()

            for message in original(self, grouped):
                nlris = getattr(message, "nlris", None)
                if (
                    grouped
                    and isinstance(message, Update)
                    and nlris is not None
                    and len(nlris) == 1
                    and nlris[0].family().afi_safi() in groupable
                ):
                    if pending and (
                        message.attributes is not attributes or nlris[0].family().afi_safi() != family
                    ):
                        yield from flush()
                    attributes = message.attributes
                    family = nlris[0].family().afi_safi()
                    pending.append(nlris[0])
                    continue
                yield from flush()
                yield message
            yield from flush()

        OutgoingRIB.updates = grouped_updates


def relay(path: str) -> int:
    """Copy stdin lines to the engine's socket and the socket's lines to stdout, until either closes."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    sock.sendall(f"hello {os.getpid()}\n".encode())
    done = threading.Event()

    def upstream() -> None:
        stdin = sys.stdin.buffer
        try:
            while True:
                line = stdin.readline()
                if not line:
                    break
                sock.sendall(line)
        except OSError:
            pass
        finally:
            done.set()
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    threading.Thread(target=upstream, daemon=True).start()
    out = sys.stdout.buffer
    reader = sock.makefile("rb")
    try:
        for line in reader:
            out.write(line)
            out.flush()
    except (OSError, ValueError):
        pass
    return 0


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) == 2 and args[0] == "--relay":
        return relay(args[1])
    if not args or args[0].startswith("-"):
        sys.stderr.write("usage: python -m speaker.exabgp_launcher CONFIG | --relay SOCKET\n")
        return 2
    _install()
    from exabgp.application.main import main as exabgp_main

    sys.argv = ["exabgp", *args]
    exabgp_main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
