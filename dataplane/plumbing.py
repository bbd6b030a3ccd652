"""Creates the node's EVPN devices from the configuration, OpenPERouter style, idempotently (DESIGN §4, §5).

Besides the VNIs' bridges, VXLAN devices and host veths, each host session gets its veth pair
(:meth:`dataplane.layout.Layout.host_veths`): ``pe-<vni>`` in the VRF <-> ``host-<vni>`` with the host, and
``pt-ns`` in the router namespace <-> ``pt-host`` for the passthrough session, addressed from the session's
CIDRs (router side, host side) with duplicate address detection off so BGP can connect at once.

Every device created here carries the alias :data:`dataplane.layout.OWNER_ALIAS`; only such devices are
ever changed or deleted (a device with one of our names but without the alias is a conflict, reported).
Each step reads the kernel first and sends a request only for a difference, so a second run with the same
configuration sends no change at all; :class:`PlumbingReport` lists what was done.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
from dataclasses import dataclass
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from dataplane import netns
from dataplane.errors import PlumbingError, VrfUnsupportedError
from dataplane.layout import (
    OWNER_ALIAS,
    HostVeth,
    Layout,
    anycast_mac,
    host_bridge_name,
    host_veth_name,
    router_bridge_name,
    router_veth_name,
    vrf_table,
    vxlan_name,
)
from evpn.config import HostBridgeMode, L2Vni, L3Vni, VrfBackend

ROUTER_SYSCTLS = (
    ("net.ipv4.ip_forward", "1"),
    ("net.ipv6.conf.all.forwarding", "1"),
    ("net.ipv4.conf.all.arp_accept", "1"),
    ("net.ipv4.conf.default.arp_accept", "1"),
    ("net.ipv6.conf.all.accept_untracked_na", "1"),
    ("net.ipv6.conf.default.accept_untracked_na", "1"),
)
SVI_SYSCTLS = (("arp_accept", "ipv4", "1"), ("accept_untracked_na", "ipv6", "1"))
IFF_UP = 1


@dataclass(frozen=True, slots=True)
class PlumbingReport:
    """What one run changed, one line per change (empty when the kernel already matched)."""

    changes: tuple[str, ...]


def _attr(msg: Any, *path: str) -> Any:
    value = msg
    for name in path:
        if value is None:
            return None
        value = value.get(name)
    return value


class _Ns:
    """A pyroute2 handle on one namespace plus the change log."""

    def __init__(self, name: str | None, log: list[str]) -> None:
        self.name = name
        self.log = log
        self.ipr: Any = IPRoute() if name is None else IPRoute(netns=name, flags=0)

    def close(self) -> None:
        self.ipr.close()

    def note(self, text: str) -> None:
        self.log.append(f"{self.name or '(self)'}: {text}")

    def get(self, ifname: str) -> Any | None:
        try:
            return self.ipr.link("get", ifname=ifname)[0]
        except NetlinkError as exc:
            if exc.code == errno.ENODEV:
                return None
            raise

    def index(self, ifname: str) -> int:
        link = self.get(ifname)
        if link is None:
            raise PlumbingError(f"device {ifname} missing in namespace {self.name or '(self)'}")
        return int(link["index"])

    def owned(self, ifname: str) -> Any | None:
        """The link if it exists and is ours; raise if it exists and is someone else's."""
        link = self.get(ifname)
        if link is not None and link.get("ifalias") != OWNER_ALIAS:
            raise PlumbingError(
                f"{ifname} exists in namespace {self.name or '(self)'} and was not created by us"
            )
        return link

    def ensure_link(self, ifname: str, *, master: str | None, mtu: int | None, mac: str | None = None) -> int:
        """Converge alias, master, MTU, MAC and up state of an existing device we own (or attach to)."""
        link = self.get(ifname)
        if link is None:
            raise PlumbingError(f"device {ifname} missing in namespace {self.name or '(self)'}")
        changes: dict[str, Any] = {}
        if link.get("ifalias") != OWNER_ALIAS:
            changes["ifalias"] = OWNER_ALIAS
        want_master = self.index(master) if master is not None else None
        if want_master is not None and link.get("master") != want_master:
            changes["master"] = want_master
        if mtu is not None and link.get("mtu") != mtu:
            changes["mtu"] = mtu
        if mac is not None and str(link.get("address")).lower() != mac.lower():
            changes["address"] = mac
        if not int(link["flags"]) & IFF_UP:
            changes["state"] = "up"
        if changes:
            self.ipr.link("set", index=link["index"], **changes)
            self.note(f"set {ifname} {sorted(changes)}")
        return int(link["index"])

    def ensure_addresses(
        self, ifname: str, wanted: set[ipaddress.IPv4Interface | ipaddress.IPv6Interface], *, exclusive: bool
    ) -> None:
        index = self.index(ifname)
        have = set()
        for msg in self.ipr.addr("dump", index=index):
            have.add(ipaddress.ip_interface(f"{msg.get('address')}/{msg['prefixlen']}"))
        for addr in sorted(wanted - have, key=str):
            self.ipr.addr("add", index=index, address=str(addr.ip), prefixlen=addr.network.prefixlen)
            self.note(f"address {addr} on {ifname}")
        if exclusive:
            for addr in sorted(have - wanted, key=str):
                if addr.version == 6 and addr.ip.is_link_local:
                    continue
                self.ipr.addr("del", index=index, address=str(addr.ip), prefixlen=addr.network.prefixlen)
                self.note(f"removed address {addr} from {ifname}")

    def ensure_brport(self, ifname: str, **flags: int) -> None:
        link = self.get(ifname)
        if link is None:
            raise PlumbingError(f"bridge port {ifname} missing")
        slave = _attr(link, "linkinfo", "slave_data")
        wrong = {k: v for k, v in flags.items() if slave is None or slave.get(k) != v}
        if wrong:
            self.ipr.brport("set", index=link["index"], **wrong)
            self.note(f"bridge port {ifname} {wrong}")

    def sysctl(self, key: str, value: str) -> None:
        if netns.write_sysctl(self.name, key, value):
            self.note(f"sysctl {key}={value}")

    def ours(self) -> dict[str, Any]:
        return {
            link.get("ifname"): link for link in self.ipr.link("dump") if link.get("ifalias") == OWNER_ALIAS
        }


class Plumbing:
    """Converges the devices of ``layout`` (call :meth:`apply` again after a configuration change)."""

    def __init__(self, layout: Layout, previous: Layout | None = None) -> None:
        """``previous`` is the layout applied before (a reload): the VRF namespaces it used are swept of our
        devices too, so an L3VNI removed from the configuration leaves nothing of ours behind. The namespaces
        themselves stay: they may be the operator's."""
        self._layout = layout
        self._previous = previous

    async def apply_async(self) -> PlumbingReport:
        """:meth:`apply` in a worker thread: pyroute2's synchronous ``IPRoute`` runs its own event loop and
        cannot be created in a thread whose loop is running."""
        return await asyncio.to_thread(self.apply)

    def apply(self) -> PlumbingReport:
        """Converge now (blocking; from asyncio use :meth:`apply_async`)."""
        layout = self._layout
        config = layout.config
        log: list[str] = []
        handles: dict[str | None, _Ns] = {}

        if config.vrf_backend is VrfBackend.NETNS:
            for l3 in config.l3vnis:
                name = layout.vrf_netns(l3)
                if name is not None and netns.create(name):
                    log.append(f"created namespace {name}")

        def ns(name: str | None) -> _Ns:
            if name not in handles:
                handles[name] = _Ns(name, log)
            return handles[name]

        try:
            router = ns(layout.namespaces.router)
            if config.vrf_backend is VrfBackend.DEVICE:
                for l3 in config.l3vnis:
                    self._vrf_device(router, l3)
            self._router_base(router)
            wanted: dict[str | None, set[str]] = {}
            for l3 in config.l3vnis:
                self._l3vni(router, ns(layout.vrf_netns(l3)), l3, wanted)
            for l2 in config.l2vnis:
                self._l2vni(router, ns(layout.l2_netns(l2)), ns(layout.host_netns()), l2, wanted)
            for veth in layout.host_veths():
                self._host_veth(ns(veth.router_netns), ns(veth.host_netns), veth, wanted)
            for name in {
                layout.namespaces.router,
                layout.host_netns(),
                *wanted,
                *self._previous_vrf_namespaces(),
            }:
                self._remove_stale(ns(name), wanted.get(name, set()))
        finally:
            for handle in handles.values():
                handle.close()
        return PlumbingReport(tuple(log))

    def _previous_vrf_namespaces(self) -> set[str]:
        previous = self._previous
        if previous is None or previous.config.vrf_backend is not VrfBackend.NETNS:
            return set()
        names = {previous.vrf_netns(l3) for l3 in previous.config.l3vnis}
        return {name for name in names if name is not None and netns.exists(name)}

    # -- steps ------------------------------------------------------------------------------------------

    def _router_base(self, router: _Ns) -> None:
        for key, value in ROUTER_SYSCTLS:
            router.sysctl(key, value)
        lo = router.get("lo")
        if lo is not None and not int(lo["flags"]) & IFF_UP:
            router.ipr.link("set", index=lo["index"], state="up")
            router.note("lo up")
        underlay = self._layout.config.underlay
        vteps: set[ipaddress.IPv4Interface | ipaddress.IPv6Interface] = set()
        if underlay.vtep_ipv4 is not None:
            vteps.add(ipaddress.IPv4Interface((underlay.vtep_ipv4, 32)))
        if underlay.vtep_ipv6 is not None:
            vteps.add(ipaddress.IPv6Interface((underlay.vtep_ipv6, 128)))
        router.ensure_addresses("lo", vteps, exclusive=False)

    def _vrf_device(self, router: _Ns, l3: L3Vni) -> None:
        link = router.owned(l3.vrf)
        if link is None:
            try:
                router.ipr.link("add", ifname=l3.vrf, kind="vrf", vrf_table=vrf_table(l3))
            except NetlinkError as exc:
                if exc.code in (errno.EOPNOTSUPP, errno.ENOTSUP):
                    raise VrfUnsupportedError() from None
                raise
            router.note(f"created VRF {l3.vrf} table {vrf_table(l3)}")
        router.ensure_link(l3.vrf, master=None, mtu=None)

    def _bridge(
        self, where: _Ns, name: str, *, master: str | None, mac: str | None, l2_only: bool = False
    ) -> None:
        if where.owned(name) is None:
            where.ipr.link("add", ifname=name, kind="bridge", br_stp_state=0)
            where.note(f"created bridge {name}")
        if l2_only:
            _no_ipv6_link_local(where, name)
        where.ensure_link(name, master=master, mtu=self._layout.mtu(), mac=mac)

    def _vxlan(self, router: _Ns, where: _Ns, vni: int, port: int, master: str) -> None:
        """``vni<vni>``: created in the router namespace (its UDP socket stays there), then moved."""
        name = vxlan_name(vni)
        local = str(self._layout.config.underlay.vtep)
        link = where.owned(name)
        if link is not None:
            data = _attr(link, "linkinfo", "data")
            have = (
                (
                    data.get("vxlan_id"),
                    data.get("vxlan_port"),
                    data.get("vxlan_local") or data.get("vxlan_local6"),
                    data.get("vxlan_learning"),
                )
                if data is not None
                else None
            )
            if have != (vni, port, local, 0):
                where.ipr.link("del", index=link["index"])
                where.note(f"deleted {name} to recreate it ({have})")
                link = None
        if link is None:
            if router.owned(name) is None:
                key = "vxlan_local" if self._layout.config.underlay.vtep.version == 4 else "vxlan_local6"
                router.ipr.link(
                    "add",
                    ifname=name,
                    kind="vxlan",
                    vxlan_id=vni,
                    vxlan_port=port,
                    vxlan_learning=0,
                    **{key: local},
                )
                router.ipr.link("set", index=router.index(name), ifalias=OWNER_ALIAS)
                router.note(f"created {name} (id {vni} dstport {port} local {local} nolearning)")
            if where is not router:
                router.ipr.link("set", index=router.index(name), net_ns_fd=where.name)
                router.note(f"moved {name} to {where.name}")
        _no_ipv6_link_local(where, name)
        where.ensure_link(name, master=master, mtu=self._layout.mtu())
        where.ensure_brport(name, neigh_suppress=1, learning=0)

    def _svi_sysctls(self, where: _Ns, name: str) -> None:
        for key, family, value in SVI_SYSCTLS:
            where.sysctl(f"net.{family}.conf.{name}.{key}", value)

    def _l3vni(self, router: _Ns, where: _Ns, l3: L3Vni, wanted: dict[str | None, set[str]]) -> None:
        if where is not router:
            for key, value in ROUTER_SYSCTLS:
                where.sysctl(key, value)
            lo = where.get("lo")
            if lo is not None and not int(lo["flags"]) & IFF_UP:
                where.ipr.link("set", index=lo["index"], state="up")
        svi = router_bridge_name(l3.vni)
        master = l3.vrf if self._layout.config.vrf_backend is VrfBackend.DEVICE else None
        self._bridge(where, svi, master=master, mac=str(l3.router_mac) if l3.router_mac else None)
        self._vxlan(router, where, l3.vni, l3.vxlan_port, svi)
        self._svi_sysctls(where, svi)
        names = wanted.setdefault(where.name, set())
        names |= {svi, vxlan_name(l3.vni)}
        if master is not None:
            names.add(master)

    def _l2vni(
        self, router: _Ns, where: _Ns, host: _Ns, l2: L2Vni, wanted: dict[str | None, set[str]]
    ) -> None:
        l3 = self._layout.l3_for(l2)
        svi = router_bridge_name(l2.vni)
        master = l3.vrf if l3 is not None and self._layout.config.vrf_backend is VrfBackend.DEVICE else None
        self._bridge(where, svi, master=master, mac=str(anycast_mac(l2.vni)))
        where.ensure_addresses(svi, set(l2.gateway_ips), exclusive=True)
        self._svi_sysctls(where, svi)
        self._vxlan(router, where, l2.vni, l2.vxlan_port, svi)
        names = wanted.setdefault(where.name, set())
        names |= {svi, vxlan_name(l2.vni)}
        if l2.host_bridge is None:
            return
        host_names = wanted.setdefault(host.name, set())
        bridge = host_bridge_name(l2)
        if l2.host_bridge.mode is HostBridgeMode.MANAGED:
            self._bridge(host, bridge, master=None, mac=None, l2_only=True)
            host_names.add(bridge)
        elif host.get(bridge) is None:
            raise PlumbingError(f"host bridge {bridge} of L2VNI {l2.vni} does not exist")
        pe, he = router_veth_name(l2.vni), host_veth_name(l2.vni)
        if where.owned(pe) is None:
            if host.owned(he) is not None:  # half of an old pair
                host.ipr.link("del", index=host.index(he))
            peer: dict[str, Any] = {"ifname": he}
            if host.name != where.name:
                peer["net_ns_fd"] = host.name
            where.ipr.link("add", ifname=pe, kind="veth", peer=peer)
            where.ipr.link("set", index=where.index(pe), ifalias=OWNER_ALIAS)
            host.ipr.link("set", index=host.index(he), ifalias=OWNER_ALIAS)
            where.note(f"created veth {pe} <-> {he}")
        _no_ipv6_link_local(where, pe)
        _no_ipv6_link_local(host, he)
        where.ensure_link(pe, master=svi, mtu=self._layout.mtu())
        host.ensure_link(he, master=bridge, mtu=self._layout.mtu())
        names.add(pe)
        host_names.add(he)

    def _host_veth(self, where: _Ns, host: _Ns, veth: HostVeth, wanted: dict[str | None, set[str]]) -> None:
        """A host session's veth pair (``pe-<vni>``/``pt-ns`` in the VRF or the router namespace, the other end
        with the host), up, with the session's addresses; no DAD, so IPv6 works (and BGP connects) at once."""
        pe, he = veth.router, veth.host
        link = where.owned(pe)
        if link is not None and host.owned(he) is None:  # the other half is gone (host namespace recreated)
            where.ipr.link("del", index=link["index"])
            where.note(f"deleted {pe} (its peer {he} is gone)")
            link = None
        if link is None:
            if host.owned(he) is not None:  # half of an old pair
                host.ipr.link("del", index=host.index(he))
            peer: dict[str, Any] = {"ifname": he}
            if host.name != where.name:
                peer["net_ns_fd"] = host.name
            where.ipr.link("add", ifname=pe, kind="veth", peer=peer)
            where.ipr.link("set", index=where.index(pe), ifalias=OWNER_ALIAS)
            host.ipr.link("set", index=host.index(he), ifalias=OWNER_ALIAS)
            where.note(f"created veth {pe} <-> {he}")
        where.sysctl(f"net.ipv6.conf.{pe}.accept_dad", "0")
        host.sysctl(f"net.ipv6.conf.{he}.accept_dad", "0")
        where.ensure_link(pe, master=veth.master, mtu=veth.mtu)  # enslaved before addresses: a VRF keeps them
        host.ensure_link(he, master=None, mtu=veth.mtu)
        session = veth.session
        where.ensure_addresses(pe, {session.router_side(c) for c in session.cidrs()}, exclusive=True)
        host.ensure_addresses(he, {session.host_side(c) for c in session.cidrs()}, exclusive=True)
        wanted.setdefault(where.name, set()).add(pe)
        wanted.setdefault(host.name, set()).add(he)

    def _remove_stale(self, where: _Ns, keep: set[str]) -> None:
        for ifname, link in sorted(where.ours().items()):
            if ifname in keep:
                continue
            try:
                where.ipr.link("del", index=link["index"])
            except NetlinkError as exc:
                if exc.code != errno.ENODEV:  # a veth peer already gone with its pair
                    raise
                continue
            where.note(f"removed {ifname}")


def _no_ipv6_link_local(where: _Ns, name: str) -> None:
    """``addrgenmode none``: a pure layer-2 device (VXLAN, veth, host bridge) never sends ND or RS, so its
    own MAC is never learned as a local host. Set before the device goes up."""
    where.sysctl(f"net.ipv6.conf.{name}.addr_gen_mode", "1")
