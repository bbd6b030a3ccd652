"""Configuration rules (OpenPERouter's admission rules, FRR's ranges): ``validate`` raises ``ConfigError``.

Each rule names the object (kind and name), the field and the reason, so a user can fix the YAML at once.
Text helpers (``parse_route_target`` ...) turn a syntax error into the same kind of ``ConfigError``.
"""

from __future__ import annotations

import ipaddress

from evpn.config import HostBridge, HostSession, L2Vni, L3Vni, Neighbor, SpeakerConfig, Underlay
from evpn.errors import ConfigError, InvalidValue
from evpn.route_distinguisher import RouteDistinguisher
from evpn.route_target import RouteTarget, RouteTargetMatcher

MAX_VNI = (1 << 24) - 1
IFNAMSIZ = 15
"""Linux interface names hold at most 15 characters (IFNAMSIZ - 1)."""

L2_DEVICE_PATTERNS = ("br-pe-{vni}", "vni{vni}", "host-e-{vni}", "pe-e-{vni}", "br-hs-{vni}")
"""Devices derived from an L2VNI's number (OpenPERouter host plumbing, DESIGN §4)."""


def parse_route_target(text: str, kind: str, name: str, field: str) -> RouteTarget:
    """An export RT from text (``ASN:N`` or ``IP:N``), or ConfigError naming where it came from."""
    try:
        return RouteTarget.from_text(text)
    except (InvalidValue, ValueError) as exc:
        raise ConfigError(kind, name, field, f"bad route target {text!r}: {exc}") from exc


def parse_route_target_matcher(text: str, kind: str, name: str, field: str) -> RouteTargetMatcher:
    """An import RT from text (``ASN:N``, ``IP:N`` or FRR's wildcard ``*:N``), or ConfigError."""
    try:
        return RouteTargetMatcher.from_text(text)
    except (InvalidValue, ValueError) as exc:
        raise ConfigError(kind, name, field, f"bad route target {text!r}: {exc}") from exc


def parse_route_distinguisher(text: str, kind: str, name: str, field: str) -> RouteDistinguisher:
    """An RD from text (``ASN:N`` or ``IP:N``, RFC 4364 §4.2), or ConfigError."""
    try:
        return RouteDistinguisher.from_text(text)
    except (InvalidValue, ValueError) as exc:
        raise ConfigError(kind, name, field, f"bad route distinguisher {text!r}: {exc}") from exc


def validate(config: SpeakerConfig) -> None:
    """Check every rule; raise ConfigError for the first object that breaks one."""
    _underlay(config.underlay)
    seen_vni: dict[int, str] = {}
    l3_by_vrf: dict[str, L3Vni] = {}
    names: set[str] = set()
    for l3 in config.l3vnis:
        _unique_name("l3vni", l3.name, names)
        _unique_vni("l3vni", l3.name, l3.vni, seen_vni)
        _l3vni(l3)
        if l3.vrf in l3_by_vrf:
            raise ConfigError(
                "l3vni", l3.name, "vrf", f"VRF {l3.vrf!r} already has L3VNI {l3_by_vrf[l3.vrf].vni}"
            )
        l3_by_vrf[l3.vrf] = l3
    names = set()
    for l2 in config.l2vnis:
        _unique_name("l2vni", l2.name, names)
        _unique_vni("l2vni", l2.name, l2.vni, seen_vni)
        _l2vni(l2, l3_by_vrf)
    dup = config.duplicate_detection
    if dup.max_moves < 2 or dup.max_moves > 1000:
        raise ConfigError("duplicate-detection", "global", "max_moves", "must be 2..1000 (FRR)")
    if dup.window < 2 or dup.window > 1800:
        raise ConfigError("duplicate-detection", "global", "window", "must be 2..1800 seconds (FRR)")
    if dup.freeze_time is not None and not 30 <= dup.freeze_time <= 3600:
        raise ConfigError("duplicate-detection", "global", "freeze_time", "must be 30..3600 seconds (FRR)")
    _host_sessions(config)
    gr = config.graceful_restart
    if not 1 <= gr.restart_time <= 4095:
        raise ConfigError("graceful-restart", "global", "restart_time", "must be 1..4095 (RFC 4724 §3)")
    if gr.stalepath_time < 1:
        raise ConfigError("graceful-restart", "global", "stalepath_time", "must be at least 1 second")


def _unique_name(kind: str, name: str, names: set[str]) -> None:
    if not name:
        raise ConfigError(kind, name, "name", "must not be empty")
    if name in names:
        raise ConfigError(kind, name, "name", "duplicate name")
    names.add(name)


def _unique_vni(kind: str, name: str, vni: int, seen: dict[int, str]) -> None:
    if not 1 <= vni <= MAX_VNI:
        raise ConfigError(kind, name, "vni", f"{vni} is outside 1..{MAX_VNI}")
    if vni in seen:
        raise ConfigError(kind, name, "vni", f"VNI {vni} is already used by {seen[vni]}")
    seen[vni] = f"{kind} {name!r}"


def _underlay(u: Underlay) -> None:
    if not 1 <= u.asn <= 0xFFFFFFFF:
        raise ConfigError("underlay", "underlay", "asn", f"{u.asn} is outside 1..4294967295")
    if u.router_id == ipaddress.IPv4Address(0):
        raise ConfigError("underlay", "underlay", "router_id", "0.0.0.0 is not a valid router id")
    if u.vtep_ipv4 is None and u.vtep_ipv6 is None:
        raise ConfigError("underlay", "underlay", "vtep", "a VTEP address is required")
    for vtep in (u.vtep_ipv4, u.vtep_ipv6):
        if vtep is not None and (vtep.is_unspecified or vtep.is_multicast):
            raise ConfigError("underlay", "underlay", "vtep", f"{vtep} cannot be a tunnel endpoint")
    if not 68 <= u.mtu <= 65535:
        raise ConfigError("underlay", "underlay", "mtu", f"{u.mtu} is outside 68..65535")
    for nic in u.interfaces:
        _ifname("underlay", "underlay", "interfaces", nic)
    seen: set[object] = set()
    for n in u.neighbors:
        if n.address in seen:
            raise ConfigError("neighbor", str(n.address), "address", "duplicate neighbor")
        seen.add(n.address)
        _neighbor(n)


def _neighbor(n: Neighbor) -> None:
    name = str(n.address)
    if n.asn is None and n.peer_type is None:
        raise ConfigError("neighbor", name, "asn", "needs asn or peer_type (internal/external)")
    if n.asn is not None and not 1 <= n.asn <= 0xFFFFFFFF:
        raise ConfigError("neighbor", name, "asn", f"{n.asn} is outside 1..4294967295")
    hold = n.timers.hold_time
    if hold != 0 and not 3 <= hold <= 65535:
        raise ConfigError("neighbor", name, "timers.hold_time", "must be 0 or 3..65535 (RFC 4271 §4.2)")
    if not 0 <= n.timers.keepalive <= 65535:
        raise ConfigError("neighbor", name, "timers.keepalive", "must be 0..65535")
    if not 1 <= n.port <= 65535:
        raise ConfigError("neighbor", name, "port", f"{n.port} is outside 1..65535")
    if n.password is not None and not 1 <= len(n.password.encode()) <= 80:
        raise ConfigError("neighbor", name, "password", "TCP MD5 keys are 1..80 bytes (RFC 2385)")
    if n.ebgp_multihop is not None and not 1 <= n.ebgp_multihop <= 255:
        raise ConfigError("neighbor", name, "ebgp_multihop", "must be 1..255")
    if not n.families:
        raise ConfigError("neighbor", name, "families", "at least one address family")


def _host_sessions(config: SpeakerConfig) -> None:
    """Host sessions (OpenPERouter ``hostSession``): ranges, derivable veth addresses, unique peers."""
    sessions: list[tuple[str, str, HostSession]] = []
    if config.passthrough is not None:
        sessions.append(("l3passthrough", "passthrough", config.passthrough))
    sessions.extend(
        ("l3vni", l3.name, l3.host_session) for l3 in config.l3vnis if l3.host_session is not None
    )
    peers: dict[object, str] = {str(n.address): "the underlay" for n in config.underlay.neighbors}
    cidrs: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]] = []
    for kind, name, hs in sessions:
        if not 1 <= hs.asn <= 0xFFFFFFFF:
            raise ConfigError(kind, name, "host_session.asn", f"{hs.asn} is outside 1..4294967295")
        if hs.host_asn is None and hs.host_type is None:
            raise ConfigError(kind, name, "host_session.host_asn", "needs host_asn or host_type")
        if hs.host_asn is not None and not 1 <= hs.host_asn <= 0xFFFFFFFF:
            raise ConfigError(kind, name, "host_session.host_asn", f"{hs.host_asn} is outside 1..4294967295")
        if not hs.cidrs():
            raise ConfigError(kind, name, "host_session.local_cidr", "needs an IPv4 or an IPv6 CIDR")
        if hs.node_index < 0:
            raise ConfigError(kind, name, "host_session.node_index", "must not be negative")
        for cidr in hs.cidrs():
            field = f"host_session.local_cidr.ipv{cidr.version}"
            try:
                hs.host_side(cidr)
            except ValueError as exc:
                raise ConfigError(kind, name, field, str(exc)) from exc
            for other, owner in cidrs:
                if cidr.overlaps(other):
                    raise ConfigError(kind, name, field, f"{cidr} overlaps {other} of {owner}")
            cidrs.append((cidr, f"{kind} {name!r}"))
        for n in hs.neighbors(None):
            user = peers.get(str(n.address))
            if user is not None:
                raise ConfigError(kind, name, "host_session", f"host address {n.address} is used by {user}")
            peers[str(n.address)] = f"{kind} {name!r}"


def _ifname(kind: str, name: str, field: str, ifname: str) -> None:
    if not ifname or len(ifname) > IFNAMSIZ:
        raise ConfigError(kind, name, field, f"device name {ifname!r} must be 1..{IFNAMSIZ} characters")
    if "/" in ifname or any(c.isspace() for c in ifname):
        raise ConfigError(kind, name, field, f"device name {ifname!r} has a '/' or a space")


def _route_targets(
    kind: str, name: str, imports: tuple[RouteTargetMatcher, ...], exports: tuple[RouteTarget, ...]
) -> None:
    for m in imports:
        if not isinstance(m, RouteTargetMatcher):
            raise ConfigError(kind, name, "import_rts", f"{m!r} is not a route target")
        if m.route_target is None and not 0 <= m.assigned < 1 << 32:
            raise ConfigError(kind, name, "import_rts", f"wildcard *:{m.assigned} out of range")
    for rt in exports:
        if not isinstance(rt, RouteTarget):
            raise ConfigError(kind, name, "export_rts", f"{rt!r} is not a route target")


def _l2vni(l2: L2Vni, l3_by_vrf: dict[str, L3Vni]) -> None:
    for pattern in L2_DEVICE_PATTERNS:
        _ifname("l2vni", l2.name, "vni", pattern.format(vni=l2.vni))
    hb: HostBridge | None = l2.host_bridge
    if hb is not None and hb.name is not None:
        _ifname("l2vni", l2.name, "host_bridge.name", hb.name)
    if l2.gateway_ips:
        if l2.vrf is None:
            raise ConfigError("l2vni", l2.name, "gateway_ips", "gateway IPs need a routing domain (vrf)")
        if l2.vrf not in l3_by_vrf:
            raise ConfigError(
                "l2vni", l2.name, "vrf", f"routing domain {l2.vrf!r} has no L3VNI (needed by gateway_ips)"
            )
        if len(set(l2.gateway_ips)) != len(l2.gateway_ips):
            raise ConfigError("l2vni", l2.name, "gateway_ips", "duplicate gateway IP")
    if l2.vrf is not None:
        _ifname("l2vni", l2.name, "vrf", l2.vrf)
    if not 1 <= l2.vxlan_port <= 65535:
        raise ConfigError("l2vni", l2.name, "vxlan_port", "must be 1..65535")
    _route_targets("l2vni", l2.name, l2.import_rts, l2.export_rts)


def _l3vni(l3: L3Vni) -> None:
    _ifname("l3vni", l3.name, "vrf", l3.vrf)
    for pattern in ("br-pe-{vni}", "vni{vni}"):
        _ifname("l3vni", l3.name, "vni", pattern.format(vni=l3.vni))
    if l3.router_mac is not None and (l3.router_mac.is_multicast or l3.router_mac.is_zero):
        raise ConfigError("l3vni", l3.name, "router_mac", f"{l3.router_mac} is not a unicast MAC")
    if not 1 <= l3.vxlan_port <= 65535:
        raise ConfigError("l3vni", l3.name, "vxlan_port", "must be 1..65535")
    _route_targets("l3vni", l3.name, l3.import_rts, l3.export_rts)
    if l3.host_session is not None:
        _ifname("l3vni", l3.name, "vni", f"host-{l3.vni}")
