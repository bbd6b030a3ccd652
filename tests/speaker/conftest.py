"""Builders for in-process speakers on loopback (127.0.0.x, distinct high ports, short timers)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from dataplane.memory import MemoryDataplane
from evpn.config import GracefulRestartConfig, L2Vni, Neighbor, SpeakerConfig, Timers, Underlay
from evpn.dataplane_state import DataplaneEntry, FdbEntry
from evpn.mac import MacAddress
from speaker.speaker import Speaker, SpeakerChange

T = TypeVar("T")
ASN = 65010
VNI = 110
TIMERS = Timers(keepalive=1, hold_time=3, connect_retry=1)


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Node:
    """One speaker's identity: loopback address and port for BGP, router id, VTEP."""

    index: int
    port: int

    @property
    def address(self) -> str:
        return f"127.0.0.{self.index + 1}"

    @property
    def router_id(self) -> ipaddress.IPv4Address:
        return ipaddress.IPv4Address(f"10.0.0.{self.index + 1}")

    @property
    def vtep(self) -> ipaddress.IPv4Address:
        return ipaddress.IPv4Address(f"10.1.0.{self.index + 1}")


def make_nodes(n: int) -> list[Node]:
    return [Node(i, free_port(f"127.0.0.{i + 1}")) for i in range(n)]


def node_config(node: Node, nodes: list[Node], gr: GracefulRestartConfig | None = None) -> SpeakerConfig:
    neighbors = tuple(
        Neighbor(ipaddress.IPv4Address(other.address), asn=ASN, port=other.port, timers=TIMERS)
        for other in nodes
        if other is not node
    )
    return SpeakerConfig(
        underlay=Underlay(asn=ASN, router_id=node.router_id, vtep_ipv4=node.vtep, neighbors=neighbors),
        l2vnis=(L2Vni("l2-110", VNI),),
        graceful_restart=gr or GracefulRestartConfig(restart_time=30, stalepath_time=30),
    )


def make_speaker(node: Node, nodes: list[Node], **options: Any) -> Speaker:
    gr = options.pop("gr", None)
    options.setdefault("engine_options", {"initial_backoff": 0.1, "connect_timeout": 2.0})
    options.setdefault("tick_interval", 0.2)
    return Speaker(
        node_config(node, nodes, gr),
        listen_address=node.address,
        listen_port=node.port,
        name=f"s{node.index + 1}",
        **options,
    )


def mac(n: int) -> MacAddress:
    return MacAddress.from_int(0x02AA00000000 + n)


async def eventually(
    predicate: Callable[[], T | None], what: str, timeout: float = 10.0, interval: float = 0.02
) -> T:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(interval)


def entries(speaker: Speaker) -> frozenset[DataplaneEntry]:
    """The MemoryDataplane's entries (read synchronously for polling)."""
    assert isinstance(speaker.dataplane, MemoryDataplane)
    return speaker.dataplane.entries()


def fdb_vtep(speaker: Speaker, m: MacAddress) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    for e in entries(speaker):
        if isinstance(e, FdbEntry) and e.vni == VNI and e.mac == m:
            return e.vtep
    return None


def behind(speaker: Speaker, m: MacAddress, vtep: ipaddress.IPv4Address) -> bool:
    return fdb_vtep(speaker, m) == vtep


def row(speaker: Speaker, m: MacAddress) -> Any:
    for r in speaker.mac_table(VNI).rows:
        if r.mac == m:
            return r
    return None


async def all_established(speakers: list[Speaker], timeout: float = 10.0) -> None:
    await eventually(
        lambda: all(p.state == "Established" for s in speakers for p in s.peer_states()),
        "every session Established",
        timeout,
    )


@dataclass
class Recorder:
    """Collects a speaker's changes in a background task."""

    changes: list[SpeakerChange] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


@pytest.fixture
async def speakers() -> AsyncIterator[list[Speaker]]:
    """Speakers appended here are stopped after the test, even on failure."""
    made: list[Speaker] = []
    yield made
    for spk in made:
        with contextlib.suppress(Exception):  # cleanup goes on with the others
            await asyncio.wait_for(spk.stop(), 10)
