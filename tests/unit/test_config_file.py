"""speaker.config_file: the native schema, OpenPERouter resources (both API groups), node-index derivation, errors."""

from __future__ import annotations

import dataclasses
import ipaddress
import textwrap
from pathlib import Path

import pytest

from evpn.codec.families import Family
from evpn.config import (
    GracefulRestartConfig,
    HostBridge,
    HostBridgeMode,
    HostSession,
    L2Vni,
    L3Vni,
    Neighbor,
    PeerType,
    SpeakerConfig,
    Timers,
    Underlay,
    VrfBackend,
)
from evpn.mac import MacAddress
from evpn.route_distinguisher import RouteDistinguisher
from evpn.route_target import RouteTarget, RouteTargetMatcher
from speaker.config_file import (
    ConfigFileError,
    load_config,
    node_router_id,
    node_vtep,
    parse_config,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "configs"


def _y(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


def v4(text: str) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(text)


# --------------------------------------------------------------------------------------------------------------
# The seeds' resources, exactly as published.

# 000: OpenPERouter's multi-cluster KubeVirt example, "1. OpenPERouter Resources".
SEED_000_VNIS = _y("""
    apiVersion: openpe.openperouter.github.io/v1alpha1
    kind: L3VNI
    metadata:
      name: red
      namespace: openperouter-system
    spec:
      vni: 100
      vrf: red
    ---
    apiVersion: openpe.openperouter.github.io/v1alpha1
    kind: L2VNI
    metadata:
      name: layer2
      namespace: openperouter-system
    spec:
      hostmaster:
        autocreate: true
        type: bridge
      l2gatewayip: 192.170.1.1/24
      vni: 110
      vrf: red
""")

# 001: the FOSDEM 2026 talk's Underlay, L2VNI and L3VNI slides.
SEED_001_UNDERLAY = _y("""
    apiVersion: openpe.openperouter.github.io/v1alpha1
    kind: Underlay
    metadata:
      name: underlay
      namespace: openperouter-system
    spec:
      asn: 64514
      evpn:
        vtepcidr: 100.65.0.0/24
      nics:
        - toswitch
      neighbors:
        - asn: 64512
          address: 192.168.11.2
""")
SEED_001_L2VNI = _y("""
    apiVersion: openpe.openperouter.github.io/v1alpha1
    kind: L2VNI
    metadata:
      name: layer2
      namespace: openperouter-system
    spec:
      hostmaster:
        type: linux-bridge
        linux-bridge:
          autocreate: true
      l2gatewayip: 192.170.1.1/24    # ONLY NEEDED FOR L3
      vni: 110
      vrf: red
""")
SEED_001_L3VNI = _y("""
    apiVersion: openpe.openperouter.github.io/v1alpha1
    kind: L3VNI
    metadata:
      name: red
      namespace: openperouter-system
    spec:
      vni: 100
      vrf: red
""")


UNICAST4_EVPN = (Family.IPV4_UNICAST, Family.L2VPN_EVPN)


def seed_expected(node_index: int) -> SpeakerConfig:
    """What the seeds mean on node ``node_index``: VTEP host N of 100.65.0.0/24, router id host N+1 of 10.0.0.0/24.

    As OpenPERouter's FRR template: the neighbor carries IPv4 unicast (the VTEP /32 is announced there) and
    l2vpn evpn (there are VNIs), both with ``allowas-in``; next hops are tracked, resolving via a default route.
    """
    return SpeakerConfig(
        underlay=Underlay(
            asn=64514,
            router_id=v4(f"10.0.0.{node_index + 1}"),
            vtep_ipv4=v4(f"100.65.0.{node_index}"),
            neighbors=(
                Neighbor(address=ip("192.168.11.2"), asn=64512, families=UNICAST4_EVPN, allowas_in=3),
            ),
            interfaces=("toswitch",),
            announce_vtep=True,
            nexthop_tracking=True,
            nexthop_resolve_via_default=True,
        ),
        l2vnis=(
            L2Vni(
                name="layer2",
                vni=110,
                vrf="red",
                host_bridge=HostBridge(HostBridgeMode.MANAGED, None),
                gateway_ips=(ipaddress.IPv4Interface("192.170.1.1/24"),),
            ),
        ),
        l3vnis=(L3Vni(name="red", vrf="red", vni=100),),
        graceful_restart=GracefulRestartConfig(enabled=False),
    )


@pytest.mark.parametrize("node_index", [0, 1, 7])
def test_seed_000_resources_with_the_fosdem_underlay(node_index: int) -> None:
    text = SEED_001_UNDERLAY + "---\n" + SEED_000_VNIS
    assert parse_config(text, "seed.yaml", node_index=node_index) == seed_expected(node_index)


def test_seed_001_slides_load_to_the_same_config() -> None:
    text = "---\n".join((SEED_001_UNDERLAY, SEED_001_L2VNI, SEED_001_L3VNI))
    assert parse_config(text, "fosdem.yaml", node_index=0) == seed_expected(0)


def test_seed_vtep_matches_the_capture_in_the_seed() -> None:
    # The seed's tcpdump shows node 0 encapsulating from 100.65.0.0: host 0 of the VTEP CIDR.
    config = parse_config(SEED_001_UNDERLAY, "u.yaml", node_index=0)
    assert config.underlay.vtep == v4("100.65.0.0")
    assert config.underlay.router_id == v4("10.0.0.1")


# Today's upstream API, same network.
NEW_API_SEED = _y("""
    apiVersion: network.openperouter.io/v1alpha1
    kind: Underlay
    metadata:
      name: underlay
      namespace: openperouter-system
    spec:
      asn: 64514
      routerIDCIDR: 10.0.0.0/24
      tunnelEndpoint:
        cidrs: [100.65.0.0/24]
      interfaces:
        - type: NetworkDevice
          networkDevice:
            interfaceName: toswitch
      neighbors:
        - asn: 64512
          address: 192.168.11.2
    ---
    apiVersion: network.openperouter.io/v1alpha1
    kind: L3VNI
    metadata:
      name: red
      namespace: openperouter-system
    spec:
      vni: 100
      vrf: red
    ---
    apiVersion: network.openperouter.io/v1alpha1
    kind: L2VNI
    metadata:
      name: layer2
      namespace: openperouter-system
    spec:
      vni: 110
      routingDomain:
        type: L3VNI
        l3vni:
          name: red
      hostMaster:
        type: LinuxBridge
        linuxBridge:
          lifecycle: Managed
      gatewayIPs: [192.170.1.1/24]
""")


@pytest.mark.parametrize("node_index", [0, 3])
def test_new_api_seed_equivalent(node_index: int) -> None:
    assert parse_config(NEW_API_SEED, "new.yaml", node_index=node_index) == seed_expected(node_index)


def test_kubectl_list_is_read_item_by_item() -> None:
    items = "".join(
        textwrap.indent("- " + textwrap.indent(doc, "  ")[2:], "  ")
        for doc in (SEED_001_UNDERLAY, SEED_001_L3VNI, SEED_001_L2VNI)
    )
    text = "apiVersion: v1\nkind: List\nmetadata: {}\nitems:\n" + items
    assert parse_config(text, "list.yaml", node_index=0) == seed_expected(0)


NEW_API_FULL = _y("""
    apiVersion: network.openperouter.io/v1alpha1
    kind: Underlay
    metadata: {name: underlay}
    spec:
      asn: 65001
      routerIDCIDR: 172.16.0.0/24
      tunnelEndpoint:
        cidrs: [100.65.0.0/24, "fd00:65::/64"]
      interfaces:
        - {type: NetworkDevice, networkDevice: {interfaceName: eth1}}
        - {type: NetworkDevice, networkDevice: {interfaceName: eth2}}
      routeReflector: {clusterID: 192.0.2.9}
      gracefulRestart: {restartTimeSeconds: 90}
      neighbors:
        - type: Internal
          address: 192.168.11.2
          port: 1179
          holdTimeSeconds: 9
          keepaliveTimeSeconds: 3
          connectTimeSeconds: 5
          properties:
            - type: ebgpMultiHop
              ebgpMultiHop: {ttl: 4}
          addressFamilies:
            - type: evpn
              properties: [{type: routeReflectorClient}]
        - type: External
          address: "fd00::2"
          bfd: {receiveInterval: 300}
          addressFamilies: [{type: evpn}, {type: ipv6unicast}]
    ---
    apiVersion: network.openperouter.io/v1alpha1
    kind: L3VNI
    metadata: {name: red}
    spec:
      vni: 100
      vrf: red
      vxlanPort: 4790
      importRTs: ["65001:100", "*:100"]
      exportRTs: [65001:100]
      hostsession:
        asn: 64514
        hostasn: 64515
        localcidr: {ipv4: 192.169.10.0/24}
    ---
    apiVersion: network.openperouter.io/v1alpha1
    kind: L2VNI
    metadata: {name: vms}
    spec:
      nodeSelector: {matchLabels: {role: leaf}}
      vni: 210
      hostMaster:
        type: LinuxBridge
        linuxBridge: {lifecycle: External, name: br-vms}
    ---
    apiVersion: network.openperouter.io/v1alpha1
    kind: L3Passthrough
    metadata: {name: passthrough}
    spec:
      hostsession:
        asn: 64514
        hostasn: 64515
        localcidr: {ipv4: 192.169.11.0/24}
""")


def test_new_api_all_mapped_fields() -> None:
    warnings: list[str] = []
    config = parse_config(NEW_API_FULL, "full.yaml", node_index=2, warn=warnings.append)
    u = config.underlay
    assert (u.asn, u.router_id, u.vtep_ipv4, u.vtep_ipv6) == (
        65001,
        v4("172.16.0.3"),
        v4("100.65.0.2"),
        ipaddress.IPv6Address("fd00:65::2"),
    )
    assert u.interfaces == ("eth1", "eth2")
    assert u.cluster_id == v4("192.0.2.9")
    assert (u.announce_vtep, u.nexthop_tracking, u.nexthop_resolve_via_default) == (True, True, True)
    assert u.neighbors == (
        Neighbor(
            address=ip("192.168.11.2"),
            peer_type=PeerType.INTERNAL,
            port=1179,
            timers=Timers(keepalive=3, hold_time=9, connect_retry=5),
            route_reflector_client=True,
            ebgp_multihop=4,
            allowas_in=3,
        ),
        Neighbor(
            address=ip("fd00::2"),
            peer_type=PeerType.EXTERNAL,
            families=(Family.L2VPN_EVPN, Family.IPV6_UNICAST),
            allowas_in=3,
        ),
    )
    assert config.graceful_restart == GracefulRestartConfig(enabled=True, restart_time=90, stalepath_time=360)
    assert config.l3vnis == (
        L3Vni(
            name="red",
            vrf="red",
            vni=100,
            vxlan_port=4790,
            import_rts=(RouteTargetMatcher.from_text("65001:100"), RouteTargetMatcher(100)),
            export_rts=(RouteTarget.from_text("65001:100"),),
            # node 2: router side 192.169.10.1 (the network address ends in 0), host side .1 + 2 + 1
            host_session=HostSession(
                asn=64514,
                host_asn=64515,
                local_cidr_ipv4=ipaddress.IPv4Network("192.169.10.0/24"),
                node_index=2,
            ),
        ),
    )
    assert config.passthrough == HostSession(
        asn=64514, host_asn=64515, local_cidr_ipv4=ipaddress.IPv4Network("192.169.11.0/24"), node_index=2
    )
    assert config.l2vnis == (
        L2Vni(name="vms", vni=210, host_bridge=HostBridge(HostBridgeMode.EXTERNAL, "br-vms")),
    )
    assert len(warnings) == 2
    assert any('full.yaml:29: Underlay "underlay": spec.neighbors[1].bfd: BFD' in w for w in warnings)
    assert any('L2VNI "vms": spec.nodeSelector: node selectors are not evaluated' in w for w in warnings)


OLD_API_FULL = _y("""
    apiVersion: openpe.openperouter.github.io/v1alpha1
    kind: Underlay
    metadata: {name: underlay}
    spec:
      asn: 64514
      vtepcidr: 100.65.0.0/16
      routeridcidr: 10.1.0.0/16
      nics: [toswitch]
      neighbors:
        - asn: 64512
          address: 192.168.11.2
          password: s3cret
          holdTime: 1m30s
          keepaliveTime: 30s
          connectTime: 10s
          ebgpMultiHop: true
        - asn: 64513
          address: 192.168.12.2
          holdTime: 9s
    ---
    apiVersion: openpe.openperouter.github.io/v1alpha1
    kind: L2VNI
    metadata: {name: dual}
    spec:
      vni: 120
      vxlanport: 4790
      hostmaster: {type: bridge, name: br0}
      l2gatewayips: [192.170.2.1/24, "fd00:170::1/64"]
      vrf: blue
    ---
    apiVersion: openpe.openperouter.github.io/v1alpha1
    kind: L2VNI
    metadata: {name: plain}
    spec:
      vni: 130
      hostmaster: {type: linux-bridge, linuxBridge: {autoCreate: true}}
    ---
    apiVersion: openpe.openperouter.github.io/v1alpha1
    kind: L3VNI
    metadata: {name: blue}
    spec:
      vni: 200
""")


def test_old_api_all_mapped_fields() -> None:
    config = parse_config(OLD_API_FULL, "old.yaml", node_index=256)
    u = config.underlay
    assert u.vtep_ipv4 == v4("100.65.1.0")  # host 256 of 100.65.0.0/16
    assert u.router_id == v4("10.1.1.1")  # host 257 of 10.1.0.0/16
    assert u.neighbors[0] == Neighbor(
        address=ip("192.168.11.2"),
        asn=64512,
        password="s3cret",
        timers=Timers(keepalive=30, hold_time=90, connect_retry=10),
        ebgp_multihop=255,
        families=UNICAST4_EVPN,
        allowas_in=3,
    )
    assert u.neighbors[1].timers == Timers(keepalive=3, hold_time=9, connect_retry=120)
    assert config.l3vnis == (L3Vni(name="blue", vrf="blue", vni=200),)  # vrf defaults to the name
    assert config.l2vnis == (
        L2Vni(
            name="dual",
            vni=120,
            vrf="blue",
            vxlan_port=4790,
            host_bridge=HostBridge(HostBridgeMode.EXTERNAL, "br0"),
            gateway_ips=(
                ipaddress.IPv4Interface("192.170.2.1/24"),
                ipaddress.IPv6Interface("fd00:170::1/64"),
            ),
        ),
        L2Vni(name="plain", vni=130, host_bridge=HostBridge(HostBridgeMode.MANAGED, None)),
    )


def test_old_api_vtep_out_of_a_small_cidr() -> None:
    with pytest.raises(ConfigFileError) as err:
        parse_config(OLD_API_FULL, "old.yaml", node_index=65536)
    assert str(err.value) == (
        'old.yaml:6: Underlay "underlay": spec.vtepcidr: node index 65536: '
        "100.65.0.0/16 holds hosts 0..65535, not host 65536"
    )


def test_node_index_rule_helpers() -> None:
    # Mirrors OpenPERouter internal/ipam: VTEPIp = Host(cidr, N), RouterID = Host(cidr, N + 1).
    assert node_vtep(ipaddress.ip_network("192.168.1.0/24"), 0) == v4("192.168.1.0")
    assert node_vtep(ipaddress.ip_network("192.168.1.0/24"), 1) == v4("192.168.1.1")
    assert node_vtep(ipaddress.ip_network("fd00::/64"), 5) == ipaddress.IPv6Address("fd00::5")
    assert node_router_id(ipaddress.IPv4Network("10.0.0.0/24"), 0) == v4("10.0.0.1")
    with pytest.raises(ValueError, match=r"holds hosts 0\.\.255"):
        node_router_id(ipaddress.IPv4Network("10.0.0.0/24"), 255)
    # host bits are dropped, as net.ParseCIDR does
    config = parse_config(SEED_001_UNDERLAY.replace("100.65.0.0/24", "100.65.0.9/24"), "u.yaml", node_index=4)
    assert config.underlay.vtep == v4("100.65.0.4")


# --------------------------------------------------------------------------------------------------------------
# The native schema


NATIVE_FULL = _y("""
    version: 1
    underlay:
      asn: 65010
      router_id: 10.0.0.11
      vtep: {ipv4: 100.65.0.11, ipv6: "fd00:65::11"}
      interfaces: [eth1]
      mtu: 9000
      cluster_id: 10.255.0.1
      neighbors:
        - address: 10.1.0.1
          type: internal
          port: 1179
          password: pw
          timers: {keepalive: 10, hold: 30, connect_retry: 5}
          route_reflector_client: true
          passive: true
          families: [l2vpn-evpn, ipv4-unicast]
          ebgp_multihop: 3
          max_prefixes: 1000
          description: spine
        - address: "fd00::1"
          asn: 65000
          timers: {hold: 90}
    l3vnis:
      - name: red
        vni: 100
        rd: 10.0.0.11:100
        import_rts: ["*:100", 65010:100]
        export_rts: [65010:100]
        router_mac: 00:f3:00:00:00:65
        vxlan_port: 4790
    l2vnis:
      - name: layer2
        vni: 110
        vrf: red
        host_bridge: {mode: external, name: brvm}
        gateway_ips: [192.170.1.1/24]
        rd: 10.0.0.11:110
        import_rts: ["*:110"]
        export_rts: ["65010:110"]
        advertise_gateway: true
    duplicate_detection: {enabled: true, max_moves: 3, window: 60, freeze: true, freeze_time: 120}
    graceful_restart: {enabled: false, restart_time: 60, stalepath_time: 120}
    vrf_backend: netns
    engine: exabgp
""")


def test_native_schema_all_fields() -> None:
    config = parse_config(NATIVE_FULL, "native.yaml")
    assert config.underlay == Underlay(
        asn=65010,
        nexthop_tracking=True,  # the model's default is off; a configuration file turns it on
        router_id=v4("10.0.0.11"),
        vtep_ipv4=v4("100.65.0.11"),
        vtep_ipv6=ipaddress.IPv6Address("fd00:65::11"),
        interfaces=("eth1",),
        mtu=9000,
        cluster_id=v4("10.255.0.1"),
        neighbors=(
            Neighbor(
                address=ip("10.1.0.1"),
                peer_type=PeerType.INTERNAL,
                port=1179,
                password="pw",
                timers=Timers(keepalive=10, hold_time=30, connect_retry=5),
                route_reflector_client=True,
                passive=True,
                families=(Family.L2VPN_EVPN, Family.IPV4_UNICAST),
                ebgp_multihop=3,
                max_prefixes=1000,
                description="spine",
            ),
            Neighbor(address=ip("fd00::1"), asn=65000, timers=Timers(keepalive=30, hold_time=90)),
        ),
    )
    assert config.l3vnis == (
        L3Vni(
            name="red",
            vrf="red",
            vni=100,
            rd=RouteDistinguisher.from_text("10.0.0.11:100"),
            import_rts=(RouteTargetMatcher(100), RouteTargetMatcher.from_text("65010:100")),
            export_rts=(RouteTarget.from_text("65010:100"),),
            router_mac=MacAddress.from_text("00:f3:00:00:00:65"),
            vxlan_port=4790,
        ),
    )
    assert config.l2vnis == (
        L2Vni(
            name="layer2",
            vni=110,
            vrf="red",
            host_bridge=HostBridge(HostBridgeMode.EXTERNAL, "brvm"),
            gateway_ips=(ipaddress.IPv4Interface("192.170.1.1/24"),),
            rd=RouteDistinguisher.from_text("10.0.0.11:110"),
            import_rts=(RouteTargetMatcher(110),),
            export_rts=(RouteTarget.from_text("65010:110"),),
            advertise_gateway=True,
        ),
    )
    assert config.duplicate_detection.max_moves == 3
    assert config.duplicate_detection.freeze_time == 120
    assert config.graceful_restart == GracefulRestartConfig(
        enabled=False, restart_time=60, stalepath_time=120
    )
    assert config.vrf_backend is VrfBackend.NETNS
    assert config.engine == "exabgp"


def test_native_minimal_defaults() -> None:
    text = "underlay: {asn: 65001, router_id: 10.0.0.1, vtep: {ipv4: 100.65.0.1}}\n"
    assert parse_config(text, "min.yaml") == SpeakerConfig(
        underlay=Underlay(
            asn=65001,
            router_id=v4("10.0.0.1"),
            vtep_ipv4=v4("100.65.0.1"),
            announce_vtep=True,
            nexthop_tracking=True,
            nexthop_resolve_via_default=True,
        )
    )


def test_native_base60_looking_route_targets_stay_text() -> None:
    # YAML 1.1 reads an unquoted 65000:10 as the base-60 integer 3900010; route targets must not suffer.
    text = _y("""
        underlay: {asn: 65000, router_id: 10.0.0.1, vtep: {ipv4: 100.65.0.1}}
        l3vnis: [{name: red, vni: 100, export_rts: [65000:10], rd: 65000:10}]
    """)
    l3 = parse_config(text, "rt.yaml").l3vnis[0]
    assert l3.export_rts == (RouteTarget.from_text("65000:10"),)
    assert l3.rd == RouteDistinguisher.from_text("65000:10")


def test_host_netns_from_file_and_override() -> None:
    text = "underlay: {asn: 1, router_id: 10.0.0.1, vtep: {ipv4: 100.65.0.1}}\nhost_netns: hostA\n"
    assert dataclasses.asdict(parse_config(text, "h.yaml"))["host_netns"] == "hostA"
    assert dataclasses.asdict(parse_config(text, "h.yaml", host_netns="hostB"))["host_netns"] == "hostB"


# --------------------------------------------------------------------------------------------------------------
# The examples


def test_example_leaf_native() -> None:
    for node_index in (0, 1):
        config = load_config(EXAMPLES / "leaf-native.yaml", node_index=node_index)
        assert config.underlay.asn == 64514
        assert config.underlay.vtep == v4(f"100.65.0.{node_index}")
        assert config.underlay.router_id == v4(f"10.0.0.{node_index + 1}")
        assert config.l3vnis == (L3Vni(name="red", vrf="red", vni=100),)
        assert config.l2vnis == (
            L2Vni(
                name="layer2",
                vni=110,
                vrf="red",
                host_bridge=HostBridge(HostBridgeMode.MANAGED, None),
                gateway_ips=(ipaddress.IPv4Interface("192.170.1.1/24"),),
            ),
        )
        assert config.l3vni_for_vrf("red") == config.l3vnis[0]


def test_example_openperouter_seed() -> None:
    config = load_config(EXAMPLES / "openperouter-seed.yaml", node_index=0)
    assert config == seed_expected(0)
    # the native example describes the same leaf, apart from OpenPERouter's graceful-restart default
    native = load_config(EXAMPLES / "leaf-native.yaml", node_index=0)
    assert dataclasses.replace(native, graceful_restart=config.graceful_restart) == config


# --------------------------------------------------------------------------------------------------------------
# Errors: file, line, object, field, reason


OLD_UNDERLAY = _y("""
    apiVersion: openpe.openperouter.github.io/v1alpha1
    kind: Underlay
    metadata: {name: underlay}
    spec:
      asn: 64514
      evpn: {vtepcidr: 100.65.0.0/24}
      nics: [toswitch]
      neighbors:
        - {asn: 64512, address: 192.168.11.2}
    ---
""")  # the next document starts on line 11


def l2vni(spec: str, api: str = "openpe.openperouter.github.io/v1alpha1") -> str:
    """OLD_UNDERLAY then an L2VNI "layer2" whose spec (lines from 15) is ``spec``."""
    body = textwrap.indent(_y(spec), "  ")
    return OLD_UNDERLAY + f"apiVersion: {api}\nkind: L2VNI\nmetadata: {{name: layer2}}\nspec:\n{body}"


def underlay(spec: str, api: str = "openpe.openperouter.github.io/v1alpha1") -> str:
    """An Underlay "underlay" whose spec starts on line 5."""
    body = textwrap.indent(_y(spec), "  ")
    return f"apiVersion: {api}\nkind: Underlay\nmetadata: {{name: underlay}}\nspec:\n{body}"


NEW = "network.openperouter.io/v1alpha1"
GOOD_NEIGHBOR = "neighbors: [{asn: 64512, address: 192.168.11.2}]\n"

MALFORMED: list[tuple[str, str, str]] = [
    (
        "vni zero",
        l2vni("vni: 0\n"),
        'cluster.yaml:15: L2VNI "layer2": spec.vni: must be 1..16777215, got 0',
    ),
    (
        "vni too big",
        l2vni("vni: 16777216\n"),
        'cluster.yaml:15: L2VNI "layer2": spec.vni: must be 1..16777215, got 16777216',
    ),
    (
        "vni not a number",
        l2vni("vni: abc\n"),
        "cluster.yaml:15: L2VNI \"layer2\": spec.vni: must be an integer, got string 'abc'",
    ),
    (
        "vni missing",
        l2vni("vrf: red\n"),
        'cluster.yaml:15: L2VNI "layer2": spec.vni: required field is missing',
    ),
    (
        "gateway without prefix",
        l2vni("vni: 110\nl2gatewayip: 192.170.1.1\n"),
        "cluster.yaml:16: L2VNI \"layer2\": spec.l2gatewayip: '192.170.1.1' is not an address with a "
        "prefix length (e.g. 192.170.1.1/24)",
    ),
    (
        "gateway is the network address",
        l2vni("vni: 110\nl2gatewayip: 192.170.1.0/24\n"),
        'cluster.yaml:16: L2VNI "layer2": spec.l2gatewayip: 192.170.1.0/24 is the network address, '
        "not a gateway address",
    ),
    (
        "two IPv4 gateways",
        l2vni("vni: 110\nl2gatewayips: [192.170.1.1/24, 192.170.2.1/24]\n"),
        'cluster.yaml:16: L2VNI "layer2": spec.l2gatewayips[1]: two addresses must be one IPv4 and one IPv6',
    ),
    (
        "vrf too long",
        l2vni("vni: 110\nvrf: averyveryverylongvrf\n"),
        "cluster.yaml:16: L2VNI \"layer2\": spec.vrf: 'averyveryverylongvrf' is not a device name "
        "(1..15 characters matching ^[a-zA-Z][a-zA-Z0-9_-]*$)",
    ),
    (
        "hostmaster with neither name nor autocreate",
        l2vni("vni: 110\nhostmaster: {type: bridge}\n"),
        'cluster.yaml:16: L2VNI "layer2": spec.hostmaster: either name must be set or autocreate must be true',
    ),
    (
        "OVS bridge",
        l2vni("vni: 110\nhostmaster: {type: ovs-bridge, autocreate: true}\n"),
        'cluster.yaml:16: L2VNI "layer2": spec.hostmaster.type: OVS bridges are not supported by '
        "evpn-speaker: use a Linux bridge",
    ),
    (
        "autocreate not a boolean",
        l2vni("vni: 110\nhostmaster: {type: bridge, autocreate: maybe}\n"),
        "cluster.yaml:16: L2VNI \"layer2\": spec.hostmaster.autocreate: must be true or false, got string 'maybe'",
    ),
    (
        "duplicate field",
        l2vni("vni: 110\nvni: 111\n"),
        'cluster.yaml:16: L2VNI "layer2": spec.vni: duplicate field (first set on line 15)',
    ),
    (
        "spec is a list",
        OLD_UNDERLAY + "apiVersion: openpe.openperouter.github.io/v1alpha1\nkind: L3VNI\n"
        "metadata: {name: red}\nspec: [1, 2]\n",
        'cluster.yaml:14: L3VNI "red": spec: must be a mapping, got a list',
    ),
    (
        "metadata without name",
        OLD_UNDERLAY + "apiVersion: openpe.openperouter.github.io/v1alpha1\nkind: L3VNI\n"
        "metadata: {namespace: x}\nspec: {vni: 1}\n",
        "cluster.yaml:13: L3VNI: metadata.name: required field is missing",
    ),
    (
        "neighbor without asn or type",
        underlay("asn: 64514\nevpn: {vtepcidr: 100.65.0.0/24}\nneighbors: [{address: 192.168.11.2}]\n"),
        'cluster.yaml:7: Underlay "underlay": spec.neighbors[0].asn: either asn or type '
        "(internal/external) must be set",
    ),
    (
        "neighbor with asn and type",
        underlay(
            "asn: 1\nevpn: {vtepcidr: 100.65.0.0/24}\nneighbors: [{asn: 2, type: external, address: 10.0.0.9}]\n"
        ),
        'cluster.yaml:7: Underlay "underlay": spec.neighbors[0].type: asn and type cannot be set together',
    ),
    (
        "neighbor bad address",
        underlay(
            "asn: 64514\nevpn: {vtepcidr: 100.65.0.0/24}\nneighbors: [{asn: 1, address: 192.168.11.300}]\n"
        ),
        "cluster.yaml:7: Underlay \"underlay\": spec.neighbors[0].address: '192.168.11.300' is not an IP address",
    ),
    (
        "duplicate neighbor",
        underlay(
            "asn: 64514\nevpn: {vtepcidr: 100.65.0.0/24}\nneighbors:\n"
            "  - {asn: 1, address: 10.9.0.1}\n  - {asn: 2, address: 10.9.0.1}\n"
        ),
        'cluster.yaml:9: Underlay "underlay": spec.neighbors[1].address: 10.9.0.1 is already neighbors[0]',
    ),
    (
        "hold time below 3",
        underlay(
            "asn: 1\nevpn: {vtepcidr: 100.65.0.0/24}\nneighbors: [{asn: 2, address: 10.0.0.9, holdTime: 2s}]\n"
        ),
        'cluster.yaml:7: Underlay "underlay": spec.neighbors[0].holdTime: must be 0 or 3..65535 (RFC 4271), got 2',
    ),
    (
        "hold time not whole seconds",
        underlay(
            "asn: 1\nevpn: {vtepcidr: 100.65.0.0/24}\nneighbors: [{asn: 2, address: 10.0.0.9, holdTime: 1500ms}]\n"
        ),
        'cluster.yaml:7: Underlay "underlay": spec.neighbors[0].holdTime: 1500ms is not a whole number of seconds',
    ),
    (
        "hold time not a duration",
        underlay(
            "asn: 1\nevpn: {vtepcidr: 100.65.0.0/24}\nneighbors: [{asn: 2, address: 10.0.0.9, holdTime: 90}]\n"
        ),
        "cluster.yaml:7: Underlay \"underlay\": spec.neighbors[0].holdTime: '90' is not a duration (e.g. 90s, 3m, 1m30s)",
    ),
    (
        "password secret",
        underlay(
            "asn: 1\nevpn: {vtepcidr: 100.65.0.0/24}\n"
            "neighbors: [{asn: 2, address: 10.0.0.9, passwordSecret: bgp}]\n"
        ),
        'cluster.yaml:7: Underlay "underlay": spec.neighbors[0].passwordSecret: Kubernetes Secrets cannot be '
        "read by evpn-speaker: give password",
    ),
    (
        "asn out of range",
        underlay("asn: 4294967296\nevpn: {vtepcidr: 100.65.0.0/24}\n" + GOOD_NEIGHBOR),
        'cluster.yaml:5: Underlay "underlay": spec.asn: must be 1..4294967295, got 4294967296',
    ),
    (
        "vtep cidr without prefix",
        underlay("asn: 1\nevpn: {vtepcidr: 100.65.0.0}\n" + GOOD_NEIGHBOR),
        "cluster.yaml:6: Underlay \"underlay\": spec.evpn.vtepcidr: '100.65.0.0' is not a CIDR (ADDRESS/PREFIX)",
    ),
    (
        "no vtep cidr",
        underlay("asn: 1\n" + GOOD_NEIGHBOR),
        'cluster.yaml:5: Underlay "underlay": spec.evpn.vtepcidr: required field is missing: the CIDR each '
        "node's VTEP is taken from",
    ),
    (
        "vtep interface",
        underlay("asn: 1\nevpn: {vtepInterface: lo}\n" + GOOD_NEIGHBOR),
        'cluster.yaml:6: Underlay "underlay": spec.evpn.vtepInterface: not supported by evpn-speaker: give vtepcidr',
    ),
    (
        "router id cidr is IPv6",
        underlay("asn: 1\nevpn: {vtepcidr: 100.65.0.0/24}\nrouteridcidr: fd00::/64\n" + GOOD_NEIGHBOR),
        'cluster.yaml:7: Underlay "underlay": spec.routeridcidr: must be an IPv4 CIDR (router ids are IPv4)',
    ),
    (
        "no neighbors",
        underlay("asn: 1\nevpn: {vtepcidr: 100.65.0.0/24}\n"),
        'cluster.yaml:5: Underlay "underlay": spec.neighbors: at least one neighbor is required',
    ),
    (
        "isis",
        underlay("asn: 1\nevpn: {vtepcidr: 100.65.0.0/24}\nisis: []\n" + GOOD_NEIGHBOR),
        'cluster.yaml:7: Underlay "underlay": spec.isis: not supported by evpn-speaker (EVPN over VXLAN only)',
    ),
    (
        "unknown underlay field",
        underlay("asn: 1\nvtepCIDR: 100.65.0.0/24\n" + GOOD_NEIGHBOR),
        'cluster.yaml:6: Underlay "underlay": spec.vtepCIDR: unknown field (known: asn, evpn, isis, '
        "neighbors, nics, nodeSelector, routeridcidr, srv6, vtepcidr)",
    ),
    (
        "new-api field in the old group",
        underlay("asn: 1\ntunnelEndpoint: {cidrs: [100.65.0.0/24]}\n" + GOOD_NEIGHBOR),
        'cluster.yaml:6: Underlay "underlay": spec.tunnelEndpoint: unknown field (known: asn, evpn, isis, '
        "neighbors, nics, nodeSelector, routeridcidr, srv6, vtepcidr)",
    ),
    (
        "new api: two IPv4 tunnel endpoints",
        underlay("asn: 1\ntunnelEndpoint: {cidrs: [100.65.0.0/24, 100.66.0.0/24]}\n" + GOOD_NEIGHBOR, NEW),
        'cluster.yaml:6: Underlay "underlay": spec.tunnelEndpoint.cidrs[1]: at most one IPv4 CIDR is allowed',
    ),
    (
        "new api: CNI interface",
        underlay(
            "asn: 1\ntunnelEndpoint: {cidrs: [100.65.0.0/24]}\n"
            "interfaces: [{type: CNIDevice, cniDevice: {type: RawConfig}}]\n" + GOOD_NEIGHBOR,
            NEW,
        ),
        'cluster.yaml:7: Underlay "underlay": spec.interfaces[0].type: CNIDevice interfaces are not supported '
        "by evpn-speaker: use NetworkDevice",
    ),
    (
        "new api: hold time without keepalive",
        underlay(
            "asn: 1\ntunnelEndpoint: {cidrs: [100.65.0.0/24]}\n"
            "neighbors: [{asn: 2, address: 10.0.0.9, holdTimeSeconds: 30}]\n",
            NEW,
        ),
        'cluster.yaml:7: Underlay "underlay": spec.neighbors[0].holdTimeSeconds: holdTimeSeconds and '
        "keepaliveTimeSeconds must be both set or both unset",
    ),
    (
        "new api: keepalive above hold",
        underlay(
            "asn: 1\ntunnelEndpoint: {cidrs: [100.65.0.0/24]}\n"
            "neighbors: [{asn: 2, address: 10.0.0.9, holdTimeSeconds: 30, keepaliveTimeSeconds: 40}]\n",
            NEW,
        ),
        'cluster.yaml:7: Underlay "underlay": spec.neighbors[0].keepaliveTimeSeconds: keepalive 40 must not '
        "exceed the hold time 30",
    ),
    (
        "new api: route reflector client of an external peer",
        underlay(
            "asn: 1\ntunnelEndpoint: {cidrs: [100.65.0.0/24]}\n"
            "neighbors: [{asn: 2, address: 10.0.0.9, addressFamilies: "
            "[{type: evpn, properties: [{type: routeReflectorClient}]}]}]\n",
            NEW,
        ),
        'cluster.yaml:7: Underlay "underlay": spec.neighbors[0].type: routeReflectorClient requires type Internal',
    ),
    (
        "new api: SRv6 VPN family",
        underlay(
            "asn: 1\ntunnelEndpoint: {cidrs: [100.65.0.0/24]}\n"
            "neighbors: [{asn: 2, address: 10.0.0.9, addressFamilies: [{type: ipv4vpn}]}]\n",
            NEW,
        ),
        'cluster.yaml:7: Underlay "underlay": spec.neighbors[0].addressFamilies[0].type: ipv4vpn (SRv6 L3VPN) '
        "is not supported by evpn-speaker",
    ),
    (
        "new api: routing domain naming a missing L3VNI",
        l2vni("vni: 110\nroutingDomain: {type: L3VNI, l3vni: {name: blue}}\n", NEW),
        "cluster.yaml:16: L2VNI \"layer2\": spec.routingDomain.l3vni.name: no L3VNI named 'blue' in this "
        "configuration (L3VNIs: none)",
    ),
    (
        "new api: gateway without routing domain",
        l2vni("vni: 110\ngatewayIPs: [192.170.1.1/24]\n", NEW),
        'cluster.yaml:16: L2VNI "layer2": spec.gatewayIPs: gatewayIPs cannot be set without routingDomain',
    ),
    (
        "new api: managed bridge with a name",
        l2vni(
            "vni: 110\nhostMaster: {type: LinuxBridge, linuxBridge: {lifecycle: Managed, name: br0}}\n", NEW
        ),
        'cluster.yaml:16: L2VNI "layer2": spec.hostMaster.linuxBridge.name: name must be set when lifecycle is '
        "External, and must not be set when it is Managed",
    ),
    (
        "new api: old spelling of the gateway",
        l2vni("vni: 110\nl2gatewayip: 192.170.1.1/24\n", NEW),
        'cluster.yaml:16: L2VNI "layer2": spec.l2gatewayip: unknown field (known: gatewayIPs, hostMaster, '
        "hostmaster, l2gatewayips, nodeSelector, routingDomain, sriovVFPair, underlayAddressFamily, vni, vrf, "
        "vxlanPort, vxlanport)",
    ),
    (
        "unknown kind",
        OLD_UNDERLAY + "apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\n"
        "metadata: {name: evpn}\nspec: {config: '{}'}\n",
        "cluster.yaml:12: kind: unknown kind 'NetworkAttachmentDefinition' (apiVersion k8s.cni.cncf.io/v1): "
        "evpn-speaker reads Underlay, L2VNI, L3VNI, L3Passthrough of openpe.openperouter.github.io/v1alpha1 "
        "or network.openperouter.io/v1alpha1",
    ),
    (
        "OpenPERouter kind in an unknown version",
        OLD_UNDERLAY + "apiVersion: openpe.openperouter.github.io/v1beta1\nkind: L2VNI\n"
        "metadata: {name: x}\nspec: {vni: 5}\n",
        "cluster.yaml:12: kind: unknown kind 'L2VNI' (apiVersion openpe.openperouter.github.io/v1beta1): "
        "evpn-speaker reads Underlay, L2VNI, L3VNI, L3Passthrough of openpe.openperouter.github.io/v1alpha1 "
        "or network.openperouter.io/v1alpha1",
    ),
    (
        "unsupported OpenPERouter kind",
        OLD_UNDERLAY + "apiVersion: openpe.openperouter.github.io/v1alpha1\nkind: RawFRRConfig\n"
        "metadata: {name: raw}\nspec: {rawConfig: x}\n",
        "cluster.yaml:12: kind: kind RawFRRConfig is an OpenPERouter resource evpn-speaker does not implement",
    ),
    (
        "unknown top-level field of an object",
        OLD_UNDERLAY + "apiVersion: openpe.openperouter.github.io/v1alpha1\nkind: L3VNI\n"
        "metadata: {name: red}\nspec: {vni: 1}\nstatuz: {}\n",
        "cluster.yaml:15: statuz: unknown field (known: apiVersion, items, kind, metadata, spec, status)",
    ),
    (
        "two underlays",
        OLD_UNDERLAY + OLD_UNDERLAY.removesuffix("---\n"),
        "cluster.yaml:11: Underlay \"underlay\": a second Underlay (the first, 'underlay', is on line 1): one per node",
    ),
    (
        "no underlay",
        "apiVersion: openpe.openperouter.github.io/v1alpha1\nkind: L3VNI\nmetadata: {name: red}\nspec: {vni: 1}\n",
        "cluster.yaml: no Underlay resource: the node's ASN, VTEP and neighbors are missing",
    ),
    (
        "YAML syntax error",
        l2vni("vni: [110\n"),
        "cluster.yaml:16: YAML syntax error: while parsing a flow sequence expected ',' or ']', but got '<stream end>'",
    ),
    (
        "validation: duplicate VNI",
        l2vni("vni: 110\n")
        + "---\n"
        + l2vni("vni: 110\n").replace(OLD_UNDERLAY, "").replace("layer2", "other"),
        "cluster.yaml:17: l2vni \"other\": vni: VNI 110 is already used by l2vni 'layer2'",
    ),
    (
        "validation: gateway in a VRF without L3VNI",
        l2vni("vni: 110\nvrf: blue\nl2gatewayip: 192.170.1.1/24\n"),
        "cluster.yaml:11: l2vni \"layer2\": vrf: routing domain 'blue' has no L3VNI (needed by gateway_ips)",
    ),
]


@pytest.mark.parametrize(("text", "message"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_malformed_openperouter(text: str, message: str) -> None:
    with pytest.raises(ConfigFileError) as err:
        parse_config(text, "cluster.yaml", node_index=0)
    assert str(err.value) == message


NATIVE_BASE = "underlay:\n  asn: 65001\n  router_id: 10.0.0.1\n  vtep: {ipv4: 100.65.0.1}\n"  # 4 lines

NATIVE_MALFORMED: list[tuple[str, str, str]] = [
    (
        "unknown top-level field",
        NATIVE_BASE + "l2vni: []\n",
        "leaf.yaml:5: l2vni: unknown field (known: duplicate_detection, engine, graceful_restart, host_netns, "
        "l2vnis, l3vnis, node_index, passthrough, underlay, version, vrf_backend)",
    ),
    (
        "l2vni vni zero",
        NATIVE_BASE + "l2vnis:\n  - name: layer2\n    vni: 0\n",
        'leaf.yaml:7: l2vni "layer2": l2vnis[0].vni: must be 1..16777215, got 0',
    ),
    (
        "l2vni unknown field names the object",
        NATIVE_BASE + "l2vnis:\n  - name: layer2\n    vni: 110\n    gateway: 192.170.1.1/24\n",
        'leaf.yaml:8: l2vni "layer2": l2vnis[0].gateway: unknown field (known: advertise_gateway, export_rts, '
        "gateway_ips, host_bridge, import_rts, name, rd, vni, vrf, vxlan_port)",
    ),
    (
        "neighbor without asn",
        NATIVE_BASE + "  neighbors:\n    - address: 10.0.0.2\n",
        "leaf.yaml:6: underlay.neighbors[0].asn: either asn or type (internal/external) must be set",
    ),
    (
        "neighbor bad type",
        NATIVE_BASE + "  neighbors:\n    - {address: 10.0.0.2, type: ibgp}\n",
        "leaf.yaml:6: underlay.neighbors[0].type: must be internal or external, got 'ibgp'",
    ),
    (
        "keepalive above hold",
        NATIVE_BASE + "  neighbors:\n    - {address: 10.0.0.2, asn: 2, timers: {keepalive: 100, hold: 90}}\n",
        "leaf.yaml:6: underlay.neighbors[0].timers.keepalive: keepalive 100 must not exceed the hold time 90",
    ),
    (
        "unknown family",
        NATIVE_BASE + "  neighbors:\n    - {address: 10.0.0.2, asn: 2, families: [vpnv4]}\n",
        "leaf.yaml:6: underlay.neighbors[0].families[0]: unknown address family 'vpnv4' "
        "(l2vpn-evpn, ipv4-unicast, ipv6-unicast)",
    ),
    (
        "bad route target",
        NATIVE_BASE + "l3vnis: [{name: red, vni: 100, export_rts: [red]}]\n",
        "leaf.yaml:5: l3vni \"red\": l3vnis[0].export_rts[0]: bad route target: malformed route target 'red': "
        "expected ADMIN:NUMBER",
    ),
    (
        "bad router mac",
        NATIVE_BASE + "l3vnis: [{name: red, vni: 100, router_mac: 00:11}]\n",
        "leaf.yaml:5: l3vni \"red\": l3vnis[0].router_mac: malformed MAC address '00:11'",
    ),
    (
        "router id is IPv6",
        "underlay:\n  asn: 65001\n  router_id: fd00::1\n  vtep: {ipv4: 100.65.0.1}\n",
        "leaf.yaml:3: underlay.router_id: fd00::1 is not an IPv4 address",
    ),
    (
        "no vtep address",
        "underlay:\n  asn: 65001\n  router_id: 10.0.0.1\n  vtep: {}\n",
        "leaf.yaml:4: underlay.vtep: needs ipv4, ipv6 or cidrs",
    ),
    (
        "vtep cidr without node index",
        "underlay:\n  asn: 65001\n  router_id: 10.0.0.1\n  vtep: {cidrs: [100.65.0.0/24]}\n",
        "leaf.yaml:4: underlay.vtep.cidrs[0]: the VTEP is host N of 100.65.0.0/24: pass the node index "
        "(--node-index N)",
    ),
    (
        "external bridge without name",
        NATIVE_BASE + "l2vnis: [{name: l2, vni: 5, host_bridge: {mode: external}}]\n",
        'leaf.yaml:5: l2vni "l2": l2vnis[0].host_bridge.name: an external bridge needs its name',
    ),
    (
        "bad vrf backend",
        NATIVE_BASE + "vrf_backend: vrf\n",
        "leaf.yaml:5: vrf_backend: must be device or netns, got 'vrf'",
    ),
    (
        "bad engine",
        NATIVE_BASE + "engine: frr\n",
        "leaf.yaml:5: engine: must be one of native, exabgp, got 'frr'",
    ),
    (
        "duplicate detection out of range",
        NATIVE_BASE + "duplicate_detection: {max_moves: 1}\n",
        "leaf.yaml:5: duplicate_detection.max_moves: must be 2..1000, got 1",
    ),
    (
        "version 2",
        "version: 2\n" + NATIVE_BASE,
        "leaf.yaml:1: version: this speaker reads version 1, got 2",
    ),
    (
        "missing underlay",
        "l3vnis: []\n",
        "leaf.yaml:1: underlay: required field is missing",
    ),
    (
        "validation: l2 vni reused by an l3 vni",
        NATIVE_BASE + "l3vnis: [{name: red, vni: 100}]\nl2vnis: [{name: l2, vni: 100}]\n",
        "leaf.yaml:6: l2vni \"l2\": vni: VNI 100 is already used by l3vni 'red'",
    ),
]


@pytest.mark.parametrize(
    ("text", "message"), [c[1:] for c in NATIVE_MALFORMED], ids=[c[0] for c in NATIVE_MALFORMED]
)
def test_malformed_native(text: str, message: str) -> None:
    with pytest.raises(ConfigFileError) as err:
        parse_config(text, "leaf.yaml")
    assert str(err.value) == message


def test_error_attributes() -> None:
    with pytest.raises(ConfigFileError) as err:
        parse_config(l2vni("vni: 0\n"), "cluster.yaml", node_index=0)
    e = err.value
    assert isinstance(e, ValueError)
    assert (e.source, e.line, e.document, e.kind, e.name, e.field) == (
        "cluster.yaml",
        15,
        2,
        "L2VNI",
        "layer2",
        "spec.vni",
    )
    assert e.reason == "must be 1..16777215, got 0"


def test_openperouter_file_needs_the_node_index() -> None:
    with pytest.raises(ConfigFileError) as err:
        load_config(EXAMPLES / "openperouter-seed.yaml")
    assert str(err.value).endswith(
        'openperouter-seed.yaml:12: Underlay "underlay": spec.evpn.vtepcidr: the VTEP is host N of '
        "100.65.0.0/24: pass the node index (--node-index N)"
    )


def test_negative_node_index() -> None:
    with pytest.raises(ConfigFileError, match="node index must be 0 or more, got -1"):
        parse_config(NEW_API_SEED, "x.yaml", node_index=-1)


def test_unreadable_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match="cannot read the file"):
        load_config(tmp_path / "missing.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n---\n")
    with pytest.raises(ConfigFileError, match=r"empty\.yaml: the file holds no configuration"):
        load_config(empty)


def test_native_and_resources_are_not_mixed() -> None:
    text = NATIVE_BASE + "---\n" + SEED_001_L3VNI
    # several documents are resources: the native mapping is then an object with unknown fields
    with pytest.raises(ConfigFileError, match=r"mix\.yaml:1: underlay: unknown field \(known: apiVersion,"):
        parse_config(text, "mix.yaml", node_index=0)


HOST_MASTERS = [
    (
        "old flat autocreate",
        "hostmaster: {type: bridge, autocreate: true}",
        None,
        HostBridge(HostBridgeMode.MANAGED),
    ),
    (
        "old flat name",
        "hostmaster: {type: bridge, name: br0}",
        None,
        HostBridge(HostBridgeMode.EXTERNAL, "br0"),
    ),
    (
        "old flat both",
        "hostmaster: {type: bridge, name: br0, autocreate: true}",
        None,
        HostBridge(HostBridgeMode.MANAGED, "br0"),
    ),
    (
        "old nested name",
        "hostmaster: {type: linux-bridge, linuxBridge: {name: br0}}",
        None,
        HostBridge(HostBridgeMode.EXTERNAL, "br0"),
    ),
    (
        "new intermediate autoCreate",
        "hostmaster: {type: linux-bridge, linuxBridge: {autoCreate: true}}",
        NEW,
        HostBridge(HostBridgeMode.MANAGED),
    ),
    (
        "new external",
        "hostMaster: {type: LinuxBridge, linuxBridge: {lifecycle: External, name: br0}}",
        NEW,
        HostBridge(HostBridgeMode.EXTERNAL, "br0"),
    ),
    ("absent", "vxlanport: 4789", None, None),
]


@pytest.mark.parametrize(
    ("spec", "api", "bridge"), [c[1:] for c in HOST_MASTERS], ids=[c[0] for c in HOST_MASTERS]
)
def test_host_master_variants(spec: str, api: str | None, bridge: HostBridge | None) -> None:
    text = l2vni(f"vni: 110\n{spec}\n", api or "openpe.openperouter.github.io/v1alpha1")
    assert parse_config(text, "hm.yaml", node_index=0).l2vnis[0].host_bridge == bridge


def test_l3passthrough_needs_its_host_session() -> None:
    text = OLD_UNDERLAY + (
        "apiVersion: openpe.openperouter.github.io/v1alpha1\nkind: L3Passthrough\n"
        "metadata: {name: pt}\nspec: {nodeSelector: {}}\n"
    )
    with pytest.raises(ConfigFileError) as err:
        parse_config(text, "pt.yaml", node_index=0, warn=lambda _: None)
    assert str(err.value) == 'pt.yaml:14: L3Passthrough "pt": spec.hostsession: required field is missing'
