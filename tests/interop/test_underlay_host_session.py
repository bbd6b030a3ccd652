"""Issue #8 in CI: BGP-learned underlay, and an L3VNI host session carried across EVPN to an FRR leaf whose
VRF is a network namespace (FRR ``zebra -n``).

Topology (every namespace, process and device belongs to the ``Lab``; removed even on failure)::

    hs: FRR bgpd AS 64600 ("the host"), 10.10.10.0/24          srv 10.30.0.2
        host-100 192.169.10.3 | br-hs-110 -- vma                 |
                              |                                  | 10.30.0.1
    leafa (ours: evpn-speaker run, AS 64514)             leafb (FRR 8.4 zebra -n + bgpd, AS 64514)
      VRF red = namespace ``red``: pe-100 192.169.10.1,    VRF red = namespace ``bred`` (``red`` to zebra):
        br-pe-100 + vni100 (L3VNI 100)                       br-pe-100 + vni100 (L3VNI 100), network 10.30.0.0/24
      L2VNI 110 (br-pe-110 + vni110)                       L2VNI 110 (create_l2vni) -- vmb
      VTEP 100.65.0.1/32 on lo  --- 192.168.11.0/30 ---    VTEP 100.65.0.2/32 on lo, network 100.65.0.2/32

No static route to either VTEP: each leaf learns the other's /32 over BGP IPv4 unicast on the same iBGP
session that carries EVPN. The host session is OpenPERouter's (``hostSession`` asn 64514, hostASN 64600,
localCIDR 192.169.10.0/24, node index 1: router side .1, host side .3).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from evpn.config import SpeakerConfig, VrfBackend
from evpn.core import EvpnCore
from speaker.config_file import load_config
from tests.daemon.harness import DaemonProcess, run_cli
from tests.lab import (
    FrrRouter,
    Lab,
    Namespace,
    create_l2vni,
    create_l3vni_netns,
    netns_vrf_wrapper,
    wait_for,
)

pytestmark = [pytest.mark.interop, pytest.mark.root]

ASN, HOST_ASN = 64514, 64600
L2VNI, L3VNI = 110, 100
NODE_INDEX = 1
A_LINK, B_LINK = "192.168.11.1", "192.168.11.2"
A_VTEP, B_VTEP = "100.65.0.1", "100.65.0.2"  # host 1 and 2 of 100.65.0.0/24
A_ROUTER_ID, B_ROUTER_ID = "10.0.0.2", "10.0.0.3"  # host N+1 of 10.0.0.0/24
PE_IP, HOST_IP = "192.169.10.1", "192.169.10.3"  # router side, host side (router side + node index + 1)
HOST_PREFIX, HOST_SOURCE = "10.10.10.0/24", "10.10.10.1"
B_PREFIX, B_GATEWAY, SRV_IP = "10.30.0.0/24", "10.30.0.1", "10.30.0.2"
B_ROUTER_MAC = "02:00:00:0b:00:64"
VMA_IP, VMB_IP = "192.170.1.3", "192.170.1.30"
VMA_MAC, VMB_MAC = "02:00:c0:aa:01:03", "02:00:c0:aa:01:1e"
PROTO_OURS, PROTO_BGP, PROTO_STATIC = 201, 186, 4
FRR_VRF = "red"  # the name leaf B's zebra gives its VRF namespace (its /run/netns entry)


def speaker_config(vrf: str) -> str:
    """Our daemon's configuration: the native schema (OpenPERouter resources cannot say ``vrf_backend``),
    with OpenPERouter's per-node CIDRs, so ``--node-index 1`` derives the VTEP, the router id and the host
    session's veth addresses exactly as OpenPERouter's ipam does."""
    return f"""version: 1
underlay:
  asn: {ASN}
  router_id_cidr: 10.0.0.0/24
  vtep:
    cidrs: [100.65.0.0/24]
  neighbors:
    - address: {B_LINK}
      asn: {ASN}
      families: [l2vpn-evpn, ipv4-unicast]
      timers: {{keepalive: 3, hold: 9, connect_retry: 1}}
l3vnis:
  - name: red
    vni: {L3VNI}
    vrf: {vrf}
    host_session:
      asn: {ASN}
      host_asn: {HOST_ASN}
      local_cidr: {{ipv4: 192.169.10.0/24}}
      timers: {{keepalive: 3, hold: 9}}
l2vnis:
  - name: layer2
    vni: {L2VNI}
    host_bridge: {{mode: managed}}
vrf_backend: netns
graceful_restart: {{enabled: false}}
"""


LEAF_B_ZEBRA = f"""
vrf {FRR_VRF}
 vni {L3VNI}
exit-vrf
"""

LEAF_B_BGP = f"""
router bgp {ASN}
 bgp router-id {B_ROUTER_ID}
 no bgp default ipv4-unicast
 neighbor {A_LINK} remote-as {ASN}
 neighbor {A_LINK} timers 3 9
 neighbor {A_LINK} timers connect 1
 address-family ipv4 unicast
  network {B_VTEP}/32
  neighbor {A_LINK} activate
 exit-address-family
 address-family l2vpn evpn
  neighbor {A_LINK} activate
  advertise-all-vni
 exit-address-family
exit
router bgp {ASN} vrf {FRR_VRF}
 bgp router-id {B_ROUTER_ID}
 address-family ipv4 unicast
  network {B_PREFIX}
 exit-address-family
 address-family l2vpn evpn
  advertise ipv4 unicast
 exit-address-family
exit
"""

HOST_BGP = f"""
router bgp {HOST_ASN}
 bgp router-id {HOST_IP}
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor {PE_IP} remote-as {ASN}
 neighbor {PE_IP} timers 3 9
 neighbor {PE_IP} timers connect 1
 address-family ipv4 unicast
  network {HOST_PREFIX}
 exit-address-family
"""


OPENPEROUTER_RESOURCES = f"""apiVersion: network.openperouter.io/v1alpha1
kind: Underlay
metadata: {{name: underlay, namespace: openperouter-system}}
spec:
  asn: {ASN}
  routerIDCIDR: 10.0.0.0/24
  tunnelEndpoint: {{cidrs: [100.65.0.0/24]}}
  neighbors:
    - address: {B_LINK}
      asn: {ASN}
      addressFamilies: [{{type: evpn}}, {{type: ipv4unicast}}]
---
apiVersion: network.openperouter.io/v1alpha1
kind: L3VNI
metadata: {{name: red, namespace: openperouter-system}}
spec:
  vrf: red
  vni: {L3VNI}
  hostSession:
    asn: {ASN}
    hostASN: {HOST_ASN}
    localCIDR: {{ipv4: 192.169.10.0/24}}
---
apiVersion: network.openperouter.io/v1alpha1
kind: L2VNI
metadata: {{name: layer2, namespace: openperouter-system}}
spec:
  vni: {L2VNI}
  hostMaster: {{type: LinuxBridge, linuxBridge: {{lifecycle: Managed}}}}
"""
"""The same node in OpenPERouter's terms (see ``test_native_config_matches_openperouter_resources``)."""


@dataclass
class Topology:
    lab: Lab
    leafa: Namespace
    red: Namespace
    hs: Namespace
    vma: Namespace
    leafb: Namespace
    bred: Namespace
    vmb: Namespace
    srv: Namespace
    leaf_b: FrrRouter
    host: FrrRouter
    config_path: Path

    @property
    def socket(self) -> Path:
        return self.lab.workdir / "control.sock"

    def show(self, *words: str) -> Any:
        """``evpn-speaker show WORDS --json`` through our control socket."""
        result = run_cli("show", *words, "--json", "--socket", str(self.socket))
        assert result.returncode == 0, result
        return json.loads(result.stdout)

    def start_daemon(self) -> DaemonProcess:
        daemon = DaemonProcess(
            self.lab,
            self.leafa,
            [
                "--config", str(self.config_path),
                "--socket", str(self.socket),
                "--node-index", str(NODE_INDEX),
                "--host-netns", self.hs.name,
                "--log-level", "info,dataplane=debug",
            ],
            "speaker",
        )  # fmt: skip
        daemon.wait_log(r"evpn-speaker running")
        return daemon


def build(lab: Lab) -> Topology:
    leafa, red, hs, vma = (lab.namespace(r) for r in ("leafa", "red", "hs", "vma"))
    leafb, bred, vmb, srv = (lab.namespace(r) for r in ("leafb", "bred", "vmb", "srv"))
    for ns in (vma, vmb, srv):
        ns.disable_ipv6()
    for ns in (leafb, bred):
        ns.enable_forwarding()
    lab.veth(leafa, leafb, f"{A_LINK}/30", f"{B_LINK}/30")

    # leaf B: L2VNI 110 in its namespace, L3VNI 100 whose VRF is the namespace bred
    create_l2vni(leafb, L2VNI, B_VTEP)
    create_l3vni_netns(leafb, bred, L3VNI, B_VTEP, router_mac=B_ROUTER_MAC)
    lab.veth(vmb, leafb, f"{VMB_IP}/24", None)
    vmb.ip("link", "set", "to-leafb", "address", VMB_MAC)
    leafb.ip("link", "set", "to-vmb", "master", f"br-pe-{L2VNI}", "up")
    lab.veth(srv, bred, f"{SRV_IP}/24", f"{B_GATEWAY}/24")
    srv.add_route("default", via=B_GATEWAY)
    leaf_b = lab.frr(
        leafb,
        LEAF_B_BGP,
        zebra_config=LEAF_B_ZEBRA,
        zebra_args=["-n"],
        wrapper=netns_vrf_wrapper(lab.workdir / "netns-leafb", {FRR_VRF: bred}),
    )

    # the host: vma behind br-hs-110 (attached once the daemon made the bridge), FRR as the host's BGP
    lab.veth(vma, hs, f"{VMA_IP}/24", None)
    vma.ip("link", "set", "to-hs", "address", VMA_MAC)
    hs.add_address("lo", f"{HOST_SOURCE}/32")
    host = lab.frr(hs, HOST_BGP)

    config_path = lab.workdir / "speaker.yaml"
    config_path.write_text(speaker_config(red.name))
    return Topology(lab, leafa, red, hs, vma, leafb, bred, vmb, srv, leaf_b, host, config_path)


def routes(ns: Namespace, *args: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = ns.ip_json("route", "show", *args)
    return data


def route_to(ns: Namespace, prefix: str) -> dict[str, Any] | None:
    """The main-table route for exactly ``prefix`` (``a.b.c.d`` for a /32) in ``ns``, or None."""
    dst = prefix.removesuffix("/32")
    return next((r for r in routes(ns) if r.get("dst") == dst), None)


def ping_ok(src: Namespace, dst: str, *extra: str) -> bool:
    result = src.run(["ping", "-c", "1", "-W", "1", *extra, dst], check=False)
    return result.returncode == 0


def frr_type5(router: FrrRouter, prefix: str) -> list[dict[str, Any]]:
    """Every path of the type-5 route for ``prefix``, all RDs (``show bgp l2vpn evpn route type prefix``)."""
    data = router.vtysh_json("show bgp l2vpn evpn route type prefix")
    address, length = prefix.split("/")
    key = f"[5]:[0]:[{length}]:[{address}]"
    paths: list[dict[str, Any]] = []
    for entry in data.values():
        if isinstance(entry, dict) and isinstance(entry.get(key), dict):
            for group in entry[key].get("paths", []):
                paths.extend(group if isinstance(group, list) else [group])
    return paths


def stays(problem: Callable[[], str], seconds: float, what: str, details: Callable[[], str]) -> None:
    """``problem()`` is empty at every sample for ``seconds`` (a route that flaps fails here, saying how)."""
    start = time.monotonic()
    while (elapsed := time.monotonic() - start) < seconds:
        if found := problem():
            raise AssertionError(f"{what}: after {elapsed:.1f}s: {found}\n{details()}")
        time.sleep(0.1)


def test_underlay_host_session_type5_netns_vrf(lab: Lab) -> None:
    topo = build(lab)
    # leaf B's L3VNI is up in its namespace VRF before we exist (the FRR part stands on its own)
    vni = topo.leaf_b.wait_for(
        lambda: (v := topo.leaf_b.vtysh_json(f"show evpn vni {L3VNI}")).get("state") == "Up" and v,
        15,
        what=f"L3VNI {L3VNI} up",
    )
    assert vni["type"] == "L3" and vni["vrf"] == FRR_VRF and vni["routerMac"] == B_ROUTER_MAC, vni

    router_mac = str(EvpnCore(load_config(topo.config_path, node_index=NODE_INDEX)).router_macs()[L3VNI])
    daemon = topo.start_daemon()
    topo.leaf_b.wait_established(A_LINK, 30)
    topo.host.wait_established(PE_IP, 30)

    # (1) underlay: each VTEP /32 learned over BGP, no static route on either side ...
    ours = wait_for(lambda: route_to(topo.leafa, B_VTEP), 15, what="B's VTEP /32 in our main table")
    assert str(ours["protocol"]) == str(PROTO_OURS) and ours.get("gateway") == B_LINK, ours
    theirs = wait_for(lambda: route_to(topo.leafb, A_VTEP), 15, what="A's VTEP /32 in B's main table")
    assert theirs["protocol"] == "bgp" and theirs.get("gateway") == A_LINK, theirs
    for ns in (topo.leafa, topo.leafb):
        assert routes(ns, "proto", "static") == [], routes(ns)
        assert routes(ns, "proto", "boot") == [], routes(ns)
    # ... and L2VNI 110 forwards over it
    topo.hs.ip("link", "set", "to-vma", "master", f"br-hs-{L2VNI}", "up")
    wait_for(lambda: ping_ok(topo.vma, VMB_IP), 30, what="vma pings vmb across L2VNI 110", details=daemon.log)

    # (2) our next-hop tracking resolves B's VTEP through that /32
    nexthops = wait_for(
        lambda: (n := topo.show("evpn", "next-hops")).get(B_VTEP, {}).get("reachable") and n,
        10,
        what="B's VTEP reachable in show evpn next-hops",
    )
    assert nexthops[B_VTEP]["resolvedVia"] == f"{B_VTEP}/32", nexthops

    # (3) the host's 10.10.10.0/24 reaches leaf B as a type-5 with our Router's MAC, installed in its VRF
    assert topo.red.ip_json("link", "show", "dev", f"br-pe-{L3VNI}")[0]["address"] == router_mac
    paths = topo.leaf_b.wait_for(
        lambda: [p for p in frr_type5(topo.leaf_b, HOST_PREFIX) if p.get("peerId") == A_LINK],
        20,
        what=f"type-5 {HOST_PREFIX} from us",
    )
    for path in paths:
        assert path["nexthops"][0]["ip"] == A_VTEP, path
        assert f"Rmac:{router_mac}" in path["extendedCommunity"]["string"], (router_mac, path)
        assert path["path"] == str(HOST_ASN), path
    installed = topo.leaf_b.wait_for(
        lambda: route_to(topo.bred, HOST_PREFIX), 15, what=f"{HOST_PREFIX} in B's VRF namespace"
    )
    assert installed.get("gateway") == A_VTEP and installed.get("dev") == f"br-pe-{L3VNI}", installed
    assert "onlink" in installed.get("flags", []), installed

    # (4) leaf B's 10.30.0.0/24 reaches the host through our session and the host installs it
    def host_has_b_prefix() -> bool:
        rib = topo.host.vtysh_json("show bgp ipv4 unicast").get("routes", {}).get(B_PREFIX, [])
        best = [p for p in rib if p.get("bestpath") or p.get("best")]
        kernel = route_to(topo.hs, B_PREFIX)
        return bool(
            best
            and best[0]["peerId"] == PE_IP
            and best[0]["path"] == str(ASN)
            and kernel is not None
            and kernel.get("gateway") == PE_IP
        )

    topo.host.wait_for(host_has_b_prefix, 20, what=f"{B_PREFIX} best and installed at the host")

    # ... and stays so. The host's FRR sends B's prefix back to us (AS path 64600 64514, accepted by
    # ``allowas-in origin``): that echo must lose to the EVPN route (as in FRR: AS path 0 < 2), never
    # replace our VRF's route to B's VTEP nor be exported to B as a type-5 of ours.
    def our_vrf_route_is_evpn() -> bool:
        route = route_to(topo.red, B_PREFIX)
        return route is not None and route.get("gateway") == B_VTEP and route.get("dev") == f"br-pe-{L3VNI}"

    def unstable() -> str:
        route = route_to(topo.red, B_PREFIX)
        if route is None or route.get("gateway") != B_VTEP or route.get("dev") != f"br-pe-{L3VNI}":
            return f"our VRF's route is {route} (wanted via {B_VTEP} dev br-pe-{L3VNI} onlink)"
        echo = [p for p in frr_type5(topo.leaf_b, B_PREFIX) if p.get("peerId") == A_LINK]
        if echo:
            return f"we export the host's echo to leaf B as a type-5: {echo}"
        if not host_has_b_prefix():
            return f"the host lost its best path or kernel route: {route_to(topo.hs, B_PREFIX)}"
        return ""

    stays(unstable, 6.0, f"{B_PREFIX} stable", lambda: diagnostics(topo))

    # (5) end to end: the host (source 10.10.10.1) reaches the server behind leaf B's VRF
    wait_for(
        lambda: ping_ok(topo.hs, SRV_IP, "-I", HOST_SOURCE),
        20,
        what=f"ping {SRV_IP} from the host",
        details=lambda: diagnostics(topo),
    )


def test_native_config_matches_openperouter_resources(tmp_path: Path) -> None:
    """The daemon's native file says what these OpenPERouter resources say (node index 1): same VTEP, router
    id, sessions and host-session addresses; only ``vrf_backend: netns`` has no OpenPERouter field."""
    resources = tmp_path / "openperouter.yaml"
    resources.write_text(OPENPEROUTER_RESOURCES)
    native = tmp_path / "native.yaml"
    native.write_text(speaker_config("red"))
    ours, theirs = load_config(native, node_index=NODE_INDEX), load_config(resources, node_index=NODE_INDEX)
    for config in (ours, theirs):
        assert (str(config.underlay.vtep), str(config.underlay.router_id)) == (A_VTEP, A_ROUTER_ID)
        session = config.l3vnis[0].host_session
        assert session is not None
        cidr = session.cidrs()[0]
        assert (str(session.router_side(cidr).ip), str(session.host_side(cidr).ip)) == (PE_IP, HOST_IP)

    def sessions(config: SpeakerConfig) -> list[tuple[object, ...]]:
        return [(n.address, n.asn, n.local_asn, n.vrf, n.families) for n in config.neighbors()]

    assert sessions(ours) == sessions(theirs)
    assert [(v.vni, v.vrf) for v in ours.l3vnis] == [(v.vni, v.vrf) for v in theirs.l3vnis]
    assert [(v.vni, v.host_bridge) for v in ours.l2vnis] == [(v.vni, v.host_bridge) for v in theirs.l2vnis]
    assert ours.vrf_backend is VrfBackend.NETNS


def diagnostics(topo: Topology) -> str:
    parts = []
    for ns in (topo.hs, topo.red, topo.leafa, topo.leafb, topo.bred):
        parts.append(f"--- {ns.name} routes ---\n{ns.ip('route', 'show', check=False)}")
        parts.append(f"--- {ns.name} neigh ---\n{ns.ip('neigh', 'show', check=False)}")
    for ns, dev in ((topo.red, f"vni{L3VNI}"), (topo.bred, f"vni{L3VNI}")):
        out = subprocess.run(
            ["bridge", "-n", ns.name, "fdb", "show", "dev", dev], capture_output=True, text=True, check=False
        ).stdout
        parts.append(f"--- {ns.name} fdb {dev} ---\n{out}")
    return "\n".join(parts)
