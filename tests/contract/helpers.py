"""Engine-agnostic helpers for the contract tests: an event recorder, free ports, a raw BGP peer, sample routes."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import time
from collections.abc import Callable
from typing import TypeVar

from evpn.codec.attributes import AsPath, Origin, PathAttributes
from evpn.codec.capabilities import FourOctetAs, GracefulRestart, Multiprotocol, RouteRefresh
from evpn.codec.evpn_nlri import InclusiveMulticastRoute, MacIpRoute
from evpn.codec.extcommunity import Encapsulation, RouterMac, TunnelType
from evpn.codec.families import Family
from evpn.codec.messages import (
    Keepalive,
    Message,
    MessageDecoder,
    NotificationMessage,
    Open,
)
from evpn.codec.pmsi import PmsiTunnel
from evpn.mac import MacAddress
from evpn.route_distinguisher import RouteDistinguisher
from evpn.route_target import RouteTarget
from speaker.engine import EngineEvent, SessionEngine

T = TypeVar("T")
E = TypeVar("E")

VNI = 110


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (bound and released)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class EventLog:
    """Collects an engine's events in the background; ``wait_for`` polls for a matching one."""

    def __init__(self, engine: SessionEngine) -> None:
        self.engine = engine
        self.events: list[EngineEvent] = []
        self.done = False
        self._task = asyncio.ensure_future(self._pump())

    async def _pump(self) -> None:
        async for event in self.engine.events():
            self.events.append(event)
        self.done = True

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]

    async def wait_for(
        self,
        kind: type[E],
        predicate: Callable[[E], bool] = lambda e: True,
        timeout: float = 10.0,
        start: int = 0,
    ) -> E:
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events[start:]:
                if isinstance(event, kind) and predicate(event):
                    return event
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {kind.__name__} matching in {self.events!r}")
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        if not self._task.done():
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._task), 5.0)
        if not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def rd(router_id: str, vni: int = VNI) -> RouteDistinguisher:
    return RouteDistinguisher.ipv4(router_id, vni)


def imet(router_id: str, vtep: str) -> InclusiveMulticastRoute:
    return InclusiveMulticastRoute(rd(router_id), ipaddress.ip_address(vtep))


def mac_ip(router_id: str, mac: str, ip: str | None = None, l3vni: int | None = None) -> MacIpRoute:
    return MacIpRoute(
        rd(router_id),
        MacAddress.from_text(mac),
        ipaddress.ip_address(ip) if ip else None,
        label1=VNI,
        label2=l3vni,
    )


def evpn_attributes(
    asn: int, vtep: str, *, pmsi: bool = False, router_mac: str | None = None
) -> PathAttributes:
    """Attributes as FRR sends them for a VNI: RT asn:VNI, encapsulation VXLAN, optional PMSI / Router's MAC."""
    ext: list[object] = [RouteTarget.from_text(f"{asn & 0xFFFF}:{VNI}"), Encapsulation(TunnelType.VXLAN)]
    if router_mac:
        ext.append(RouterMac(MacAddress.from_text(router_mac)))
    return PathAttributes(
        origin=Origin.IGP,
        as_path=AsPath(),
        ext_communities=tuple(ext),  # type: ignore[arg-type]
        pmsi=PmsiTunnel.ingress_replication(VNI, ipaddress.ip_address(vtep)) if pmsi else None,
    )


class RawPeer:
    """A scripted BGP speaker on a plain socket (our codec): OPEN, KEEPALIVE, then arbitrary bytes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.decoder = MessageDecoder()
        self.buffer = bytearray()
        self.received: list[Message] = []

    @classmethod
    async def connect(cls, host: str, port: int, local: str | None = None) -> RawPeer:
        reader, writer = await asyncio.open_connection(host, port, local_addr=(local, 0) if local else None)
        return cls(reader, writer)

    async def handshake(
        self, asn: int, router_id: str, hold: int = 90, families: tuple[Family, ...] = (Family.L2VPN_EVPN,)
    ) -> Open:
        caps = (
            *(Multiprotocol(f.afi, f.safi) for f in families),
            RouteRefresh(),
            FourOctetAs(asn),
            GracefulRestart(120),
        )
        await self.send(
            Open(asn if asn < 65536 else 23456, hold, ipaddress.IPv4Address(router_id), caps).encode()
        )
        their_open = await self.expect(Open)
        await self.send(Keepalive().encode())
        await self.expect(Keepalive)
        return their_open

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def next_message(self, timeout: float = 10.0) -> Message:
        while True:
            msgs, _ = self.decoder.split(self.buffer)
            if msgs:
                del self.buffer[: len(msgs[0])]
                message = self.decoder.decode(msgs[0])
                self.received.append(message)
                return message
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not data:
                raise ConnectionError("raw peer: connection closed")
            self.buffer += data

    async def expect(self, kind: type[T], timeout: float = 10.0) -> T:
        """Next message of ``kind``, skipping keepalives (unless a keepalive is what is expected)."""
        while True:
            message = await self.next_message(timeout)
            if isinstance(message, kind):
                return message
            if isinstance(message, NotificationMessage):
                raise AssertionError(f"raw peer got NOTIFICATION {message}")

    async def next_message_of_type_notification(self, timeout: float = 10.0) -> NotificationMessage:
        """Skip everything up to a NOTIFICATION and return it."""
        while True:
            message = await self.next_message(timeout)
            if isinstance(message, NotificationMessage):
                return message

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()
