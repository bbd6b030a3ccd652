"""Where every device of a configuration lives: names (OpenPERouter's), namespaces, VRF tables.

Pure functions of the configuration and the :class:`Namespaces` the node uses, shared by the plumbing
(which creates the devices), the reconciler (VNI -> device for each entry) and the monitor (which devices to
watch). No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass

from evpn.config import HostSession, L2Vni, L3Vni, SpeakerConfig, VrfBackend
from evpn.mac import MacAddress

OWNER_ALIAS = "evpn-speaker"
"""The interface alias (``ip link set DEV alias``) marking devices the plumbing created and may remove."""

VXLAN_OVERHEAD = 50


@dataclass(frozen=True, slots=True)
class Namespaces:
    """Namespaces by name; ``None`` is the namespace the speaker runs in.

    ``router``: underlay, VTEP on ``lo``, VXLAN sockets, router-side bridges. ``host``: the host side of
    L2VNIs (``br-hs-<vni>``, ``host-e-<vni>``). ``vrf_template``: the namespace of a VRF with the ``netns``
    backend (FRR ``zebra -n`` uses the VRF name itself, the default).
    """

    router: str | None = None
    host: str | None = None
    vrf_template: str = "{vrf}"

    def vrf(self, vrf: str) -> str:
        return self.vrf_template.format(vrf=vrf)


def anycast_mac(vni: int) -> MacAddress:
    """OpenPERouter's gateway MAC: ``00:f3:`` + big-endian ``vni + 1`` (VNI 110 -> ``00:f3:00:00:00:6f``)."""
    return MacAddress(b"\x00\xf3" + (vni + 1).to_bytes(4, "big"))


def vxlan_name(vni: int) -> str:
    return f"vni{vni}"


def router_bridge_name(vni: int) -> str:
    return f"br-pe-{vni}"


def host_bridge_name(l2: L2Vni) -> str:
    if l2.host_bridge is not None and l2.host_bridge.name:
        return l2.host_bridge.name
    return f"br-hs-{l2.vni}"


def host_veth_name(vni: int) -> str:
    return f"host-e-{vni}"


def router_veth_name(vni: int) -> str:
    return f"pe-e-{vni}"


def host_session_host_veth(vni: int) -> str:
    """Host side of an L3VNI's host session (OpenPERouter ``host-<vni>``)."""
    return f"host-{vni}"


def host_session_router_veth(vni: int) -> str:
    """Router side of an L3VNI's host session, in the VRF (OpenPERouter ``pe-<vni>``)."""
    return f"pe-{vni}"


PASSTHROUGH_HOST_VETH = "pt-host"
"""Host side of the passthrough host session (OpenPERouter L3Passthrough)."""
PASSTHROUGH_ROUTER_VETH = "pt-ns"
"""Router side of the passthrough host session, in the router namespace (the default VRF)."""
MAIN_TABLE = 254


def vrf_table(l3: L3Vni) -> int:
    """The kernel routing table of a VRF device: the L3VNI itself (unique per node, stable)."""
    return l3.vni


@dataclass(frozen=True, slots=True)
class VniDevices:
    """The devices of one VNI: its VXLAN device and SVI (bridge), both in ``netns``."""

    vni: int
    netns: str | None
    vxlan: str
    svi: str
    l3: bool


@dataclass(frozen=True, slots=True)
class VrfPlace:
    """Where a VRF's routes go: the namespace, the table, and the L3 SVI they leave through."""

    vrf: str
    l3vni: int
    netns: str | None
    table: int
    svi: str


@dataclass(frozen=True, slots=True)
class UnicastTable:
    """Where BGP unicast routes of a VRF go: ``vrf`` "" is the default VRF (the router's main table)."""

    vrf: str
    netns: str | None
    table: int


@dataclass(frozen=True, slots=True)
class HostVeth:
    """One host-session veth pair: ``router`` in ``router_netns`` (enslaved to ``master`` when given),
    ``host`` in ``host_netns``; ``mtu`` None leaves the kernel's default."""

    router: str
    host: str
    router_netns: str | None
    host_netns: str | None
    master: str | None
    mtu: int | None
    session: HostSession


@dataclass(frozen=True, slots=True)
class Layout:
    config: SpeakerConfig
    namespaces: Namespaces

    def l3_for(self, l2: L2Vni) -> L3Vni | None:
        return self.config.l3vni_for_vrf(l2.vrf) if l2.vrf else None

    def vrf_netns(self, l3: L3Vni) -> str | None:
        if self.config.vrf_backend is VrfBackend.NETNS:
            return self.namespaces.vrf(l3.vrf)
        return self.namespaces.router

    def l2_netns(self, l2: L2Vni) -> str | None:
        """An L2VNI's router-side devices live with its VRF when VRFs are namespaces, else in the router."""
        l3 = self.l3_for(l2)
        return self.vrf_netns(l3) if l3 is not None else self.namespaces.router

    def host_netns(self) -> str | None:
        return self.namespaces.host if self.namespaces.host is not None else self.namespaces.router

    def vnis(self) -> dict[int, VniDevices]:
        devices: dict[int, VniDevices] = {}
        for l2 in self.config.l2vnis:
            devices[l2.vni] = VniDevices(
                l2.vni, self.l2_netns(l2), vxlan_name(l2.vni), router_bridge_name(l2.vni), False
            )
        for l3 in self.config.l3vnis:
            devices[l3.vni] = VniDevices(
                l3.vni, self.vrf_netns(l3), vxlan_name(l3.vni), router_bridge_name(l3.vni), True
            )
        return devices

    def vrfs(self) -> dict[str, VrfPlace]:
        places: dict[str, VrfPlace] = {}
        for l3 in self.config.l3vnis:
            netns = self.vrf_netns(l3)
            table = vrf_table(l3) if self.config.vrf_backend is VrfBackend.DEVICE else MAIN_TABLE
            places[l3.vrf] = VrfPlace(l3.vrf, l3.vni, netns, table, router_bridge_name(l3.vni))
        return places

    def unicast_tables(self) -> dict[str, UnicastTable]:
        """``""``: the router namespace's main table; each VRF: its namespace's main table (``netns``
        backend) or its VRF device's table (``device`` backend)."""
        tables = {"": UnicastTable("", self.namespaces.router, MAIN_TABLE)}
        for vrf, place in self.vrfs().items():
            tables[vrf] = UnicastTable(vrf, place.netns, place.table)
        return tables

    def host_veths(self) -> list[HostVeth]:
        """The veth pairs of the host sessions: the passthrough one, then one per L3VNI with a session."""
        config = self.config
        out: list[HostVeth] = []
        if config.passthrough is not None:
            out.append(
                HostVeth(
                    PASSTHROUGH_ROUTER_VETH,
                    PASSTHROUGH_HOST_VETH,
                    self.namespaces.router,
                    self.host_netns(),
                    None,
                    None,
                    config.passthrough,
                )
            )
        device = config.vrf_backend is VrfBackend.DEVICE
        for l3 in config.l3vnis:
            if l3.host_session is None:
                continue
            out.append(
                HostVeth(
                    host_session_router_veth(l3.vni),
                    host_session_host_veth(l3.vni),
                    self.vrf_netns(l3),
                    self.host_netns(),
                    l3.vrf if device else None,
                    self.mtu(),
                    l3.host_session,
                )
            )
        return out

    def mtu(self) -> int:
        return self.config.underlay.mtu - VXLAN_OVERHEAD
