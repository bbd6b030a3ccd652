"""Fixtures of the dataplane suite: leaf configurations and namespaces from the lab (cleaned up always)."""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import os
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from dataplane import netns
from dataplane.layout import Layout, Namespaces
from evpn.config import HostBridge, HostSession, L2Vni, L3Vni, SpeakerConfig, Underlay, VrfBackend
from evpn.mac import MacAddress
from tests.lab import Lab, in_ci


@pytest.fixture
def root(requires_root: None) -> None:
    """Root and namespaces; in CI a missing privilege fails instead of skipping."""
    if os.geteuid() != 0 and in_ci():
        pytest.fail("dataplane tests need root in CI", pytrace=False)


def leaf_config(
    index: int,
    *,
    l2: tuple[L2Vni, ...] | None = None,
    l3: tuple[L3Vni, ...] = (),
    backend: VrfBackend = VrfBackend.NETNS,
    mtu: int = 1500,
    passthrough: HostSession | None = None,
) -> SpeakerConfig:
    """Leaf ``index`` (1, 2 ...): VTEP 100.65.0.<index>, L2VNI 110 with gateway 192.170.1.1/24 by default."""
    if l2 is None:
        l2 = (
            L2Vni(
                name="l2-110",
                vni=110,
                host_bridge=HostBridge(),
                gateway_ips=(ipaddress.ip_interface("192.170.1.1/24"),),
            ),
        )
    return SpeakerConfig(
        underlay=Underlay(
            asn=64512,
            router_id=ipaddress.IPv4Address(f"10.0.0.{index}"),
            vtep_ipv4=ipaddress.IPv4Address(f"100.65.0.{index}"),
            mtu=mtu,
        ),
        l2vnis=l2,
        l3vnis=l3,
        vrf_backend=backend,
        passthrough=passthrough,
    )


def red(index: int) -> L3Vni:
    return L3Vni(
        name="red", vrf="red", vni=100, router_mac=MacAddress.from_text(f"02:00:00:00:00:{index:02x}")
    )


RED_SESSION = HostSession(
    asn=64514,
    host_asn=64515,
    local_cidr_ipv4=ipaddress.IPv4Network("192.169.10.0/24"),
    local_cidr_ipv6=ipaddress.IPv6Network("2001:db8:10::/64"),
)
"""Router side 192.169.10.1 / 2001:db8:10::1 (``pe-100``), host side .2 / ::2 (``host-100``)."""
PASSTHROUGH = HostSession(
    asn=64514,
    host_asn=64516,
    local_cidr_ipv4=ipaddress.IPv4Network("192.168.9.0/24"),
    local_cidr_ipv6=ipaddress.IPv6Network("2001:db8:9::/64"),
    node_index=3,
)
"""Router side 192.168.9.1 / 2001:db8:9::1 (``pt-ns``), host side .5 / ::5 (``pt-host``, node index 3)."""


def red_with_session(index: int) -> L3Vni:
    return dataclasses.replace(red(index), host_session=RED_SESSION)


@dataclass(frozen=True, slots=True)
class Leaf:
    """A leaf's namespaces (router, host) in one lab, with the layout of its configuration."""

    lab: Lab
    router: str
    host: str
    layout: Layout

    def with_config(self, config: SpeakerConfig) -> Leaf:
        return Leaf(self.lab, self.router, self.host, Layout(config, self.layout.namespaces))


LeafFactory = Callable[[str, SpeakerConfig], Leaf]


@pytest.fixture
def make_leaf(lab: Lab, root: None) -> LeafFactory:
    """``make_leaf("l1", config)``: router and host namespaces; VRF namespaces are removed at cleanup too."""

    def make(role: str, config: SpeakerConfig) -> Leaf:
        router = lab.namespace(role)
        host = lab.namespace(f"{role}h")
        template = f"{router.name}-{{vrf}}"
        for l3 in config.l3vnis:
            name = template.format(vrf=l3.vrf)
            lab.add_cleanup(functools.partial(netns.delete, name), f"delete namespace {name}")
        return Leaf(lab, router.name, host.name, Layout(config, Namespaces(router.name, host.name, template)))

    return make
