"""The two namespace topologies every target runs on (one fresh :class:`tests.lab.Lab` per measurement).

**pair** (bulk, churn, restart): ``bench_speaker``'s namespace pair: the router under test in ``target``
(192.168.200.1, VTEP 100.65.0.1) and the raw injector in ``inj`` (192.168.200.2), joined by a veth. The
injected VTEPs (100.65.1.1-64) are routed via the injector, so FRR's next-hop tracking accepts them and
both kinds of router see the same underlay.

**fabric** (MAC moves): ``examples/two_leaf``'s addresses: an FRR spine (route reflector) and two leaves
running the target (both leaves the same kind), hosts in their own namespaces::

                    spine (FRR bgpd, route reflector)
              192.168.11.1 /          \\ 192.168.12.1
    leaf1 (target, VTEP 100.65.0.1)    leaf2 (target, VTEP 100.65.0.2)
       |            |                        |
     pinger      mover@a    <- one MAC ->   mover@b
  192.170.1.3   192.170.1.30             192.170.1.30

The moving host is two namespaces with the same MAC, one behind each leaf; only the active one holds the
IP address (the other is silent, as the source of a live migration is once the VM runs elsewhere).
Hosts plug straight into the leaf's ``br-pe-110`` on every target (evpn-speaker then runs without a host
bridge): the same kernel topology, so only the control planes differ. (With OpenPERouter's extra host
bridge ``br-hs-110`` in between, a silent old location keeps a stale entry there: the new location's
gratuitous ARP never crosses the VXLAN port, whose ``neigh_suppress`` stops gratuitous ARPs, so local
traffic to the moved host is lost until that entry ages out, whatever the control plane does.)
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from benchmarks.bench_speaker import INJ_IP, TARGET_VTEP, _pair
from benchmarks.churn.targets import Neighbor, Router, RouterPlan, make_router
from examples.two_leaf import HOST3, HOST30, LEAF1, LEAF2, HostPlan, LeafPlan, spine_config
from tests.lab import FrrRouter, Lab, Namespace, wait_for

INJECTED_VTEPS = "100.65.1.0/24"


@dataclass
class Pair:
    router: Router
    target: Namespace
    inj: Namespace


def build_pair(lab: Lab, kind: str) -> Pair:
    """The router under test (started) and the injector's namespace."""
    target, inj = _pair(lab)
    target.add_route(INJECTED_VTEPS, via=INJ_IP)
    plan = RouterPlan("dut", TARGET_VTEP, TARGET_VTEP, (Neighbor(INJ_IP, passive=True, fast_timers=False),))
    router = make_router(kind, lab, target, plan)
    router.start()
    return Pair(router, target, inj)


@dataclass
class Host:
    ns: Namespace
    plan: HostPlan
    leaf: Router


@dataclass
class Fabric:
    spine: FrrRouter
    leaves: tuple[Router, Router]
    pinger: Host
    mover: tuple[Host, Host]  # the moving host's location behind leaf1, behind leaf2


def _leaf(lab: Lab, kind: str, plan: LeafPlan, ns: Namespace) -> Router:
    rplan = RouterPlan(plan.role, plan.router_id, plan.vtep, (Neighbor(plan.spine_ip),))
    return make_router(kind, lab, ns, rplan)


def _plug(lab: Lab, role: str, plan: HostPlan, leaf: Router, with_ip: bool) -> Host:
    ns = lab.namespace(role)
    ns.disable_ipv6()
    side, bridge = leaf.host_side()
    lab.veth(ns, side, f"{plan.ip}/24" if with_ip else None, None, a_ifname="eth0", b_ifname=f"to-{role}")
    ns.ip("link", "set", "eth0", "address", plan.mac)
    side.ip("link", "set", f"to-{role}", "master", bridge, "up")
    return Host(ns, plan, leaf)


def build_fabric(lab: Lab, kind: str) -> Fabric:
    """Spine, two leaves of ``kind`` (started, sessions up), pinger and both locations of the mover."""
    spine_ns = lab.namespace("spine")
    spine_ns.enable_forwarding()
    leaf_ns: dict[str, Namespace] = {}
    for plan in (LEAF1, LEAF2):
        ns = leaf_ns[plan.role] = lab.namespace(plan.role)
        ns.enable_forwarding()
        lab.veth(spine_ns, ns, f"{plan.spine_ip}/30", f"{plan.ip}/30")
        spine_ns.add_route(f"{plan.vtep}/32", via=plan.ip)
        other = LEAF2 if plan is LEAF1 else LEAF1
        ns.add_route(f"{other.vtep}/32", via=plan.spine_ip)
    spine = lab.frr(spine_ns, spine_config((LEAF1, LEAF2)))
    leaves = (_leaf(lab, kind, LEAF1, leaf_ns["leaf1"]), _leaf(lab, kind, LEAF2, leaf_ns["leaf2"]))
    with ThreadPoolExecutor(2) as pool:  # both leaves start at once (the exabgp engine takes seconds)
        for started in [pool.submit(leaf.start) for leaf in leaves]:
            started.result()
    for leaf in leaves:
        side, bridge = leaf.host_side()
        wait_for(lambda s=side, b=bridge: b in s.ip("link", "show"), 30, 0.1, f"{bridge} in {side.name}")  # type: ignore[misc]
    pinger = _plug(lab, "ping", HOST3, leaves[0], with_ip=True)
    mover = (
        _plug(lab, "mva", HOST30, leaves[0], with_ip=True),
        _plug(lab, "mvb", HOST30, leaves[1], with_ip=False),
    )
    for leaf, plan in zip(leaves, (LEAF1, LEAF2), strict=True):
        spine.wait_established(plan.ip, 60)
        leaf.wait_established(plan.spine_ip, 60)
    return Fabric(spine, leaves, pinger, mover)
