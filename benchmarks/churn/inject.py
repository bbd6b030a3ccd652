"""The injector of every scenario: ``bench_speaker``'s raw BGP sender (our codec, 100 type-2 NLRIs per
UPDATE, pre-packed before the clock starts), here with the graceful-restart capability and End-of-RIB, so it
behaves as a real peer when the router under test restarts.

Routes are ``bench_speaker.type2_routes``: MAC-only type-2 routes of VNI 110, MAC ``0a:00:00:00:00:00`` +
i, VTEP ``100.65.1.(i % 64 + 1)``, RD ``10.0.0.2:1``, RT ``64512:110``.
"""

from __future__ import annotations

import ipaddress
import time

from benchmarks.bench_speaker import (
    INJ_IP,
    TARGET_IP,
    VTEPS,
    Injector,
    pack_announce,
    pack_withdraw,
    type2_routes,
)
from benchmarks.churn.targets import Router
from evpn.codec.capabilities import GracefulRestart, GracefulRestartFamily
from evpn.codec.evpn_nlri import MacIpRoute
from evpn.codec.families import Family
from evpn.codec.messages import end_of_rib
from tests.lab import Namespace

Pair = tuple[ipaddress.IPv4Address, MacIpRoute]
GR_CAP = GracefulRestart(120, families=(GracefulRestartFamily(25, 70, forwarding_preserved=False),))
EOR = end_of_rib(Family.L2VPN_EVPN)

__all__ = ["EOR", "VTEPS", "Pair", "connect", "mac_key", "pack_announce", "pack_withdraw", "type2_routes"]


def mac_key(route: MacIpRoute) -> bytes:
    """The 6 MAC bytes of a route, as the FDB watch keys them."""
    return int(route.mac).to_bytes(6, "big")


def connect(ns: Namespace, router: Router, timeout: float = 60.0) -> Injector:
    """Connect the injector to the router (retrying while nothing listens yet) and wait until the router
    reports the session Established."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            injector = Injector(ns, TARGET_IP, extra_caps=(GR_CAP,))
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    try:
        while not router.established(INJ_IP):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{router.kind}: the injector's session did not come up")
            time.sleep(0.02)
    except BaseException:
        injector.close()
        raise
    return injector
