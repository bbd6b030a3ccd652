"""Embedding evpn-speaker: two speakers in one process, talking BGP EVPN over loopback.

Run: ``.venv/bin/python examples/embed.py`` (no root needed: the in-memory dataplane stands in for the
kernel). Leaf 1 learns a MAC locally; leaf 2 receives the type-2 route, installs the remote MAC behind
leaf 1's VTEP and shows it as remote in its ``show evpn mac vni 110`` model.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evpn.config import L2Vni, Neighbor, SpeakerConfig, Timers, Underlay
from evpn.dataplane_state import FdbEntry
from evpn.events import LocalMacLearned
from evpn.mac import MacAddress
from speaker.speaker import DataplaneApplied, Speaker

ASN = 64512
VNI = 110


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def leaf(index: int, ports: dict[int, int]) -> SpeakerConfig:
    """Leaf ``index`` (1 or 2): BGP on 127.0.0.<index>, VTEP 10.1.0.<index>, iBGP to the other leaf."""
    other = 3 - index
    return SpeakerConfig(
        underlay=Underlay(
            asn=ASN,
            router_id=ipaddress.IPv4Address(f"10.0.0.{index}"),
            vtep_ipv4=ipaddress.IPv4Address(f"10.1.0.{index}"),
            neighbors=(
                Neighbor(
                    ipaddress.IPv4Address(f"127.0.0.{other}"),
                    asn=ASN,
                    port=ports[other],
                    timers=Timers(keepalive=3, hold_time=9, connect_retry=1),
                ),
            ),
        ),
        l2vnis=(L2Vni("vm-network", VNI),),
    )


async def main() -> None:
    ports = {1: free_port("127.0.0.1"), 2: free_port("127.0.0.2")}
    mac = MacAddress.from_text("02:00:00:00:aa:01")
    options = {"initial_backoff": 0.1}
    async with (
        Speaker(
            leaf(1, ports), listen_address="127.0.0.1", listen_port=ports[1], engine_options=options
        ) as one,
        Speaker(
            leaf(2, ports), listen_address="127.0.0.2", listen_port=ports[2], engine_options=options
        ) as two,
        two.subscribe() as changes,
    ):
        await one.inject(LocalMacLearned(VNI, mac))  # what the kernel monitor reports on a real node
        async for change in changes:  # wait for leaf 2's dataplane to receive the remote MAC
            if isinstance(change, DataplaneApplied) and any(
                isinstance(e, FdbEntry) and e.mac == mac for e in change.delta.add
            ):
                added = ", ".join(
                    f"{e.mac} via {e.vtep}" for e in change.delta.add if isinstance(e, FdbEntry)
                )
                print(
                    f"leaf 2 dataplane: added FDB {added} ({change.result.added} entries, ok={change.result.ok})"
                )
                break
        for name, spk in (("leaf 1", one), ("leaf 2", two)):
            print(f"{name}: show bgp summary:")
            for p in spk.peer_states():
                print(f"  {p.peer} AS{p.asn} {p.state} msgs {p.messages_in}/{p.messages_out}")
            print(f"{name}: show evpn mac vni {VNI}:")
            for row in spk.mac_table(VNI).rows:
                print(f"  {row.mac} {row.kind:<6} vtep={row.vtep} seq={row.local_seq}/{row.remote_seq}")
        remote = next(r for r in two.mac_table(VNI).rows if r.mac == mac)
        assert remote.kind == "remote" and str(remote.vtep) == "10.1.0.1"
        print(f"{mac} learned on leaf 1 is remote on leaf 2 behind VTEP {remote.vtep}")


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR, format="%(name)s: %(message)s")
    asyncio.run(main())
