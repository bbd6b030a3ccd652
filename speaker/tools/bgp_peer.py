"""Run one native engine with routes given as arguments; print received events as JSON lines.

Meant for interop tests and debugging (``ip netns exec NS python -m speaker.tools.bgp_peer ...``)::

    python -m speaker.tools.bgp_peer --asn 64513 --router-id 10.255.0.2 --listen 192.168.100.2 \\
        --neighbor 192.168.100.1,asn=64512,password=secret \\
        --route '{"type": 3, "rd": "10.255.0.2:110", "vni": 110, "nexthop": "10.255.0.2"}'

stdout gets one JSON object per line: ``ready``, ``peer_up``, ``routes`` (each route as
``evpn.codec.route_view.route_to_dict``), ``end_of_rib``, ``peer_down``, ``states``, ``error``.
stdin takes JSON commands, one per line: ``{"op": "announce", "route": {...}}``, ``{"op": "withdraw",
"route": {...}}``, ``{"op": "raw", "hex": "..."}`` (raw bytes on every established session: fault
injection), ``{"op": "states"}``, ``{"op": "stop", "graceful": false}`` (graceful: no NOTIFICATION, RFC 4724).
SIGTERM/SIGINT stop the engine (Cease) and exit.

Route objects: ``type`` 2, 3 or 5; ``rd``; ``vni`` (label 1, PMSI label; default 110); ``rt`` (list, default
``ASN:VNI``); ``nexthop`` (VTEP); type 2: ``mac``, ``ip``, ``l3vni`` (label 2), ``router_mac``; type 3:
``originator`` (default the next hop), ``pmsi`` (default true); type 5: ``prefix``, ``gateway``,
``router_mac``; optional ``esi``, ``ethernet_tag``, ``local_pref``, ``as_path`` (list).
Attributes follow RFC 4271 §5.1 per neighbor: eBGP prepends our AS, iBGP carries LOCAL_PREF 100.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import ipaddress
import json
import logging
import signal
import sys
from typing import Any

from evpn.codec.attributes import AsPath, Origin, PathAttributes
from evpn.codec.evpn_nlri import EvpnRoute, InclusiveMulticastRoute, IPAddress, IpPrefixRoute, MacIpRoute
from evpn.codec.extcommunity import Encapsulation, ExtCommunity, RouterMac, TunnelType
from evpn.codec.pmsi import PmsiTunnel
from evpn.codec.route_view import route_to_dict
from evpn.config import Neighbor, Timers, Underlay
from evpn.esi import ZERO_ESI, Esi
from evpn.events import EndOfRib, PeerDown, PeerUp
from evpn.mac import MacAddress
from evpn.route_distinguisher import RouteDistinguisher
from evpn.route_target import RouteTarget
from speaker.engine import EndOfRibMode, EngineEvent
from speaker.native_engine import NativeEngine

Json = dict[str, Any]


def parse_neighbor(text: str, timers: Timers) -> Neighbor:
    """``ADDRESS,asn=N[,port=P][,password=S][,passive][,rr-client][,max-prefixes=N]``."""
    address, *opts = text.split(",")
    kw: dict[str, Any] = {}
    for opt in opts:
        key, _, value = opt.partition("=")
        if key == "asn":
            kw["asn"] = int(value)
        elif key == "port":
            kw["port"] = int(value)
        elif key == "password":
            kw["password"] = value
        elif key == "passive":
            kw["passive"] = True
        elif key == "rr-client":
            kw["route_reflector_client"] = True
        elif key == "max-prefixes":
            kw["max_prefixes"] = int(value)
        else:
            raise argparse.ArgumentTypeError(f"unknown neighbor option {opt!r}")
    return Neighbor(ipaddress.ip_address(address), timers=timers, **kw)


def route_from_json(spec: Json) -> EvpnRoute:
    """An EVPN route from its JSON description (see the module docstring)."""
    kind = int(spec["type"])
    rd = RouteDistinguisher.from_text(spec["rd"])
    vni = int(spec.get("vni", 110))
    esi = Esi.from_text(spec["esi"]) if "esi" in spec else ZERO_ESI
    tag = int(spec.get("ethernet_tag", 0))
    if kind == 2:
        ip = ipaddress.ip_address(spec["ip"]) if spec.get("ip") else None
        l3 = spec.get("l3vni")
        return MacIpRoute(
            rd, MacAddress.from_text(spec["mac"]), ip, vni, int(l3) if l3 is not None else None, esi, tag
        )
    if kind == 3:
        return InclusiveMulticastRoute(
            rd, ipaddress.ip_address(spec.get("originator") or spec["nexthop"]), tag
        )
    if kind == 5:
        gw = ipaddress.ip_address(spec["gateway"]) if spec.get("gateway") else None
        return IpPrefixRoute(rd, ipaddress.ip_network(spec["prefix"]), vni, gw, esi, tag)
    raise ValueError(f"route type {kind} not supported by this tool")


def attributes_from_json(spec: Json, local_asn: int, ebgp: bool) -> PathAttributes:
    """Path attributes for one route spec as sent to an iBGP or eBGP neighbor."""
    vni = int(spec.get("vni", 110))
    rts = spec.get("rt", [f"{local_asn & 0xFFFF}:{vni}"])
    ext: list[ExtCommunity] = [RouteTarget.from_text(rt) for rt in rts]
    ext.append(Encapsulation(TunnelType.VXLAN))
    if spec.get("router_mac"):
        ext.append(RouterMac(MacAddress.from_text(spec["router_mac"])))
    pmsi = None
    if int(spec["type"]) == 3 and spec.get("pmsi", True):
        pmsi = PmsiTunnel.ingress_replication(
            vni, ipaddress.ip_address(spec.get("originator") or spec["nexthop"])
        )
    path = [int(a) for a in spec.get("as_path", [])]
    if ebgp:
        path = [local_asn, *path]
    return PathAttributes(
        origin=Origin.IGP,
        as_path=AsPath.sequence(*path),
        local_pref=None if ebgp else int(spec.get("local_pref", 100)),
        ext_communities=tuple(ext),
        pmsi=pmsi,
    )


def event_to_json(event: EngineEvent) -> Json:
    if isinstance(event, PeerUp):
        return {
            "event": "peer_up",
            "peer": str(event.peer),
            "asn": event.peer_asn,
            "router_id": str(event.peer_router_id),
            "ibgp": event.ibgp,
            "families": sorted(str(f) for f in event.families),
            "graceful_restart": event.graceful_restart,
        }
    if isinstance(event, PeerDown):
        return {
            "event": "peer_down",
            "peer": str(event.peer),
            "reason": event.reason,
            "graceful": event.graceful,
        }
    if isinstance(event, EndOfRib):
        return {"event": "end_of_rib", "peer": str(event.peer), "family": str(event.family)}
    out: Json = {"event": "routes", "peer": str(event.peer)}
    out["announced"] = [_route_json(r, event.attributes, event.next_hop, "announce") for r in event.announced]
    out["withdrawn"] = [_route_json(r, None, None, "withdraw") for r in event.withdrawn]
    if event.attributes is not None:
        out["as_path"] = str(event.attributes.as_path)
        out["local_pref"] = event.attributes.local_pref
    return out


def _route_json(
    route: object, attributes: PathAttributes | None, next_hop: IPAddress | None, action: str
) -> Json:
    if isinstance(route, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return {"action": action, "prefix": str(route), "next_hop": str(next_hop) if next_hop else None}
    return route_to_dict(route, attributes, next_hop, action)  # type: ignore[arg-type]


class Tool:
    def __init__(self, args: argparse.Namespace) -> None:
        timers = Timers(
            keepalive=max(1, args.hold // 3), hold_time=args.hold, connect_retry=args.connect_retry
        )
        neighbors = tuple(parse_neighbor(n, timers) for n in args.neighbor)
        self.underlay = Underlay(
            asn=args.asn, router_id=ipaddress.IPv4Address(args.router_id), neighbors=neighbors
        )
        self.engine = NativeEngine(
            self.underlay,
            listen_address=args.listen,
            listen_port=args.port,
            listen=not args.no_listen,
            local_address=args.local_address,
            end_of_rib_mode=EndOfRibMode(args.end_of_rib),
            initial_backoff=args.initial_backoff,
        )
        self.routes: list[Json] = [json.loads(r) for r in args.route]
        self.done = asyncio.Event()
        self.graceful = False

    def emit(self, obj: Json) -> None:
        sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
        sys.stdout.flush()

    async def announce(self, spec: Json) -> None:
        route = route_from_json(spec)
        next_hop = ipaddress.ip_address(spec["nexthop"])
        for nb in self.underlay.neighbors:
            ebgp = nb.asn is not None and nb.asn != self.underlay.asn
            await self.engine.advertise(
                nb.address, attributes_from_json(spec, self.underlay.asn, ebgp), next_hop, [route]
            )

    async def command(self, line: str) -> None:
        cmd = json.loads(line)
        op = cmd.get("op")
        if op == "announce":
            await self.announce(cmd["route"])
        elif op == "withdraw":
            await self.engine.withdraw(None, [route_from_json(cmd["route"])])
        elif op == "raw":
            for nb in self.underlay.neighbors:
                if self.engine.session(nb.address).established:
                    await self.engine.send_raw(nb.address, bytes.fromhex(cmd["hex"]))
        elif op == "end_of_rib":
            await self.engine.end_of_rib(None)
        elif op == "states":
            self.emit({"event": "states", "peers": [_state_json(s) for s in self.engine.peer_states()]})
        elif op == "stop":
            self.graceful = bool(cmd.get("graceful", False))
            self.done.set()
        else:
            raise ValueError(f"unknown op {op!r}")
        self.emit({"event": "ack", "op": op})

    async def read_commands(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        try:
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        except (OSError, ValueError):
            return  # stdin is not a pipe (e.g. /dev/null): commands are off
        while line := await reader.readline():
            if not line.strip():
                continue
            try:
                await self.command(line.decode())
            except Exception as exc:
                self.emit({"event": "error", "error": f"{type(exc).__name__}: {exc}", "line": line.decode()})

    async def pump(self) -> None:
        async for event in self.engine.events():
            self.emit(event_to_json(event))

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.done.set)
        for spec in self.routes:
            await self.announce(spec)
        await self.engine.start()
        self.emit({"event": "ready", "port": self.engine.listen_port})
        pump = asyncio.ensure_future(self.pump())
        commands = asyncio.ensure_future(self.read_commands())
        await self.done.wait()
        await self.engine.stop(graceful=self.graceful)
        commands.cancel()
        with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError):
            await asyncio.wait_for(pump, 5.0)
        self.emit({"event": "stopped"})
        return 0


def _state_json(state: Any) -> Json:
    out = dataclasses.asdict(state)
    out["peer"] = str(state.peer)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bgp_peer", description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--asn", type=int, required=True)
    parser.add_argument("--router-id", required=True)
    parser.add_argument("--listen", default=None, help="listen address (default: all)")
    parser.add_argument("--port", type=int, default=179)
    parser.add_argument("--no-listen", action="store_true")
    parser.add_argument("--local-address", default=None, help="source of outgoing connections")
    parser.add_argument(
        "--neighbor", action="append", default=[], help="ADDRESS,asn=N[,port=P][,password=S][,passive]"
    )
    parser.add_argument("--route", action="append", default=[], help="route as JSON (repeatable)")
    parser.add_argument("--hold", type=int, default=9)
    parser.add_argument("--connect-retry", type=int, default=5)
    parser.add_argument("--initial-backoff", type=float, default=0.5)
    parser.add_argument("--end-of-rib", choices=[m.value for m in EndOfRibMode], default="auto")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    return asyncio.run(Tool(args).run())


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["attributes_from_json", "main", "route_from_json"]
