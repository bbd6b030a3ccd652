"""Load a :class:`~evpn.config.SpeakerConfig` from YAML: our native schema, or OpenPERouter resources as they are.

Two inputs (``speaker/CONFIG.md`` documents both):

* the native schema: one YAML document with ``underlay``, ``l2vnis``, ``l3vnis`` ... (FRR/OpenPERouter terms);
* OpenPERouter resources: a multi-document YAML of ``Underlay``, ``L2VNI``, ``L3VNI`` (and ``L3Passthrough``)
  objects of either API group, ``openpe.openperouter.github.io/v1alpha1`` (the seeds' older API) or today's
  ``network.openperouter.io/v1alpha1``; per-node addresses come from ``node_index`` as OpenPERouter's ipam
  derives them (VTEP = host N of the VTEP CIDR, router id = host N+1 of ``routerIDCIDR``, the host side of a
  host session's veth = router side + N + 1).

Every problem raises :class:`ConfigFileError` naming the file, the line, the object, the field path and the
reason. Unknown kinds and fields are errors; known OpenPERouter features the speaker does not implement are
either errors (when ignoring them would change routing) or warnings (``warn``, default: this module's logger).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from evpn.codec.families import Family
from evpn.config import (
    DEFAULT_VXLAN_PORT,
    DuplicateDetection,
    GracefulRestartConfig,
    HostBridge,
    HostBridgeMode,
    HostSession,
    IPAddress,
    IPInterface,
    L2Vni,
    L3Vni,
    Neighbor,
    PeerType,
    SpeakerConfig,
    Timers,
    Underlay,
    VrfBackend,
)
from evpn.config_validation import validate
from evpn.errors import ConfigError, InvalidValue
from evpn.mac import MacAddress
from evpn.route_distinguisher import RouteDistinguisher
from evpn.route_target import RouteTarget, RouteTargetMatcher

__all__ = [
    "DEFAULT_ROUTER_ID_CIDR",
    "NEW_API",
    "OLD_API",
    "ConfigFileError",
    "load_config",
    "node_router_id",
    "node_vtep",
    "parse_config",
]

log = logging.getLogger(__name__)

OLD_API = "openpe.openperouter.github.io/v1alpha1"
NEW_API = "network.openperouter.io/v1alpha1"
DEFAULT_ROUTER_ID_CIDR = "10.0.0.0/24"
"""OpenPERouter's default ``routerIDCIDR``."""
DEFAULT_CLUSTER_ID = "192.0.2.1"
"""OpenPERouter's default ``routeReflector.clusterID``."""
MAX_VNI = (1 << 24) - 1
MAX_ASN = 0xFFFFFFFF
MAX_NODE_INDEX = (1 << 31) - 1
FRR_ALLOWAS_IN = 3
"""FRR's count for a plain ``neighbor X allowas-in`` (OpenPERouter's template sets it on underlay neighbors)."""
ENGINES = ("native", "exabgp")

Warn = Callable[[str], None]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_IFNAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9._-]*$")
_VRF_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9_-]*$")


class ConfigFileError(ValueError):
    """A configuration file is malformed: where (file, line or document), which object, which field, why."""

    def __init__(
        self,
        source: str,
        reason: str,
        *,
        line: int | None = None,
        document: int | None = None,
        kind: str = "",
        name: str = "",
        field: str = "",
    ) -> None:
        self.source = source
        self.reason = reason
        self.line = line
        self.document = document
        self.kind = kind
        self.name = name
        self.field = field
        super().__init__(_format(source, reason, line, document, kind, name, field))


def _format(
    source: str, reason: str, line: int | None, document: int | None, kind: str, name: str, field: str
) -> str:
    if line is not None:
        where = f"{source}:{line}"
    elif document is not None:
        where = f"{source}: document {document}"
    else:
        where = source
    what = f'{kind} "{name}"' if kind and name else kind
    return ": ".join(part for part in (where, what, field, reason) if part)


# --------------------------------------------------------------------------------------------------------------
# Public entry points


def load_config(
    path: str | Path,
    *,
    node_index: int | None = None,
    host_netns: str | None = None,
    warn: Warn | None = None,
) -> SpeakerConfig:
    """Read and parse ``path`` (see :func:`parse_config`); unreadable files raise ConfigFileError too."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigFileError(source, f"cannot read the file: {exc}") from exc
    return parse_config(text, source, node_index=node_index, host_netns=host_netns, warn=warn)


def parse_config(
    text: str,
    source_name: str,
    *,
    node_index: int | None = None,
    host_netns: str | None = None,
    warn: Warn | None = None,
) -> SpeakerConfig:
    """Parse native-schema or OpenPERouter YAML into a validated SpeakerConfig.

    ``node_index`` (OpenPERouter's per-node index, ``--node-index``) derives the VTEP and the router id from
    their CIDRs; ``host_netns`` overrides the file's ``host_netns``; ``warn`` receives each warning.
    """
    if node_index is not None and node_index < 0:
        raise ConfigFileError(source_name, f"node index must be 0 or more, got {node_index}")
    report: Warn = warn if warn is not None else log.warning
    try:
        documents = [
            (index + 1, node)
            for index, node in enumerate(yaml.compose_all(text, Loader=yaml.SafeLoader))
            if not _is_null(node)
        ]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise ConfigFileError(source_name, f"YAML syntax error: {problem}", line=line) from exc
    except yaml.YAMLError as exc:
        raise ConfigFileError(source_name, f"YAML error: {exc}") from exc
    if not documents:
        raise ConfigFileError(source_name, "the file holds no configuration")
    reader = _Reader(source_name, report)
    if _is_native(documents):
        config, places = _Native(reader, documents[0][0], node_index).parse(documents[0][1])
    else:
        config, places = _OpenPERouter(reader, node_index).parse(documents)
    config = _with_host_netns(config, host_netns, source_name)
    _validate(config, source_name, places)
    return config


def node_vtep(cidr: Network, node_index: int) -> IPAddress:
    """OpenPERouter ``ipam.VTEPIp``: host ``node_index`` of the CIDR's network (host 0 is the network address)."""
    return _host(cidr, node_index)


def node_router_id(cidr: ipaddress.IPv4Network, node_index: int) -> ipaddress.IPv4Address:
    """OpenPERouter ``ipam.RouterID``: host ``node_index + 1`` of ``routerIDCIDR``."""
    address = _host(cidr, node_index + 1)
    assert isinstance(address, ipaddress.IPv4Address)
    return address


def _host(cidr: Network, number: int) -> IPAddress:
    # go-cidr Host(): network address + number, for 0 <= number < 2**(host bits).
    if not 0 <= number < cidr.num_addresses:
        raise ValueError(f"{cidr} holds hosts 0..{cidr.num_addresses - 1}, not host {number}")
    return cidr[number]


def _is_native(documents: list[tuple[int, Node]]) -> bool:
    first = documents[0][1]
    if len(documents) != 1 or not isinstance(first, MappingNode):
        return False
    keys = {k.value for k, _ in first.value if isinstance(k, ScalarNode)}
    return "apiVersion" not in keys and "kind" not in keys


def _with_host_netns(config: SpeakerConfig, override: str | None, source: str) -> SpeakerConfig:
    if override is None:
        return config
    return dataclasses.replace(config, host_netns=override)


def _validate(config: SpeakerConfig, source: str, places: dict[tuple[str, str], int]) -> None:
    """Run the model's validation (evpn.config_validation); its ConfigError gains the file and line."""
    try:
        validate(config)
    except ConfigError as exc:
        line = places.get((exc.object_kind, exc.object_name)) or places.get((exc.object_kind, ""))
        raise ConfigFileError(
            source, exc.reason, line=line, kind=exc.object_kind, name=exc.object_name, field=exc.field
        ) from exc


# --------------------------------------------------------------------------------------------------------------
# Typed access to YAML nodes, every error with its line


@dataclass(frozen=True, slots=True)
class _Ctx:
    """Where we are: the file, the document, and the object (kind, name) errors are reported against."""

    reader: _Reader
    document: int
    kind: str = ""
    name: str = ""

    def error(self, node: Node | None, field: str, reason: str) -> ConfigFileError:
        line = node.start_mark.line + 1 if node is not None else None
        return ConfigFileError(
            self.reader.source,
            reason,
            line=line,
            document=self.document,
            kind=self.kind,
            name=self.name,
            field=field,
        )

    def warn(self, node: Node | None, field: str, reason: str) -> None:
        line = node.start_mark.line + 1 if node is not None else None
        self.reader.warn(
            _format(self.reader.source, reason, line, self.document, self.kind, self.name, field)
        )

    def named(self, kind: str, name: str) -> _Ctx:
        return dataclasses.replace(self, kind=kind, name=name)


class _Reader:
    def __init__(self, source: str, warn: Warn) -> None:
        self.source = source
        self.warn = warn
        self._constructor = SafeConstructor()

    def scalar(self, node: ScalarNode) -> Any:
        return self._constructor.construct_object(node, deep=True)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _describe(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    kind = {_STR: "string", _INT: "integer", _BOOL: "boolean", _NULL: "null"}.get(node.tag, "value")
    return f"{kind} {node.value!r}" if node.tag != _NULL else "null"


def _is_null(node: Node | None) -> bool:
    return node is None or (isinstance(node, ScalarNode) and node.tag == _NULL)


class _Fields:
    """A YAML mapping with string keys, checked against the known field names."""

    def __init__(self, ctx: _Ctx, node: Node, path: str, known: Iterable[str]) -> None:
        if not isinstance(node, MappingNode):
            raise ctx.error(node, path, f"must be a mapping, got {_describe(node)}")
        self.ctx = ctx
        self.node = node
        self.path = path
        self.keys: dict[str, Node] = {}
        self.values: dict[str, Node] = {}
        allowed = set(known)
        for key, value in node.value:
            if not isinstance(key, ScalarNode) or key.tag != _STR:
                raise ctx.error(key, path, f"field names must be strings, got {_describe(key)}")
            name = key.value
            if name in self.keys:
                first = self.keys[name].start_mark.line + 1
                raise ctx.error(key, _join(path, name), f"duplicate field (first set on line {first})")
            if name not in allowed:
                raise ctx.error(
                    key, _join(path, name), f"unknown field (known: {', '.join(sorted(allowed))})"
                )
            self.keys[name] = key
            self.values[name] = value

    def get(self, key: str) -> Node | None:
        """The value node, or None when the field is absent or null."""
        node = self.values.get(key)
        return None if _is_null(node) else node

    def require(self, key: str) -> Node:
        node = self.get(key)
        if node is None:
            raise self.ctx.error(self.node, self.sub(key), "required field is missing")
        return node

    def sub(self, key: str) -> str:
        return _join(self.path, key)

    def one_of(self, *keys: str) -> tuple[str, Node] | None:
        """The single one of ``keys`` that is set (spelling variants of one field), or None."""
        present = [(k, n) for k in keys if (n := self.get(k)) is not None]
        if len(present) > 1:
            key = present[1][0]
            raise self.ctx.error(
                self.keys[key], self.sub(key), f"set together with {present[0][0]}: keep one"
            )
        return present[0] if present else None

    # typed getters: None when absent

    def get_int(self, key: str, lo: int, hi: int) -> int | None:
        node = self.get(key)
        return None if node is None else _int(self.ctx, node, self.sub(key), lo, hi)

    def get_bool(self, key: str) -> bool | None:
        node = self.get(key)
        return None if node is None else _bool(self.ctx, node, self.sub(key))

    def get_str(self, key: str) -> str | None:
        node = self.get(key)
        return None if node is None else _str(self.ctx, node, self.sub(key))

    def get_list(self, key: str) -> list[Node]:
        node = self.get(key)
        return [] if node is None else _list(self.ctx, node, self.sub(key))


def _int(ctx: _Ctx, node: Node, path: str, lo: int, hi: int) -> int:
    if not isinstance(node, ScalarNode) or node.tag != _INT:
        raise ctx.error(node, path, f"must be an integer, got {_describe(node)}")
    value = ctx.reader.scalar(node)
    assert isinstance(value, int)
    if not lo <= value <= hi:
        raise ctx.error(node, path, f"must be {lo}..{hi}, got {value}")
    return value


def _bool(ctx: _Ctx, node: Node, path: str) -> bool:
    if not isinstance(node, ScalarNode) or node.tag != _BOOL:
        raise ctx.error(node, path, f"must be true or false, got {_describe(node)}")
    return bool(ctx.reader.scalar(node))


def _str(ctx: _Ctx, node: Node, path: str) -> str:
    if not isinstance(node, ScalarNode) or node.tag != _STR:
        raise ctx.error(node, path, f"must be a string, got {_describe(node)}")
    if not node.value:
        raise ctx.error(node, path, "must not be empty")
    return str(node.value)


def _text(ctx: _Ctx, node: Node, path: str) -> str:
    """A scalar's source text whatever YAML 1.1 makes of it (``65000:10`` would otherwise be a base-60 int)."""
    if not isinstance(node, ScalarNode) or node.tag in (_NULL, _BOOL) or not node.value:
        raise ctx.error(node, path, f"must be a string, got {_describe(node)}")
    return str(node.value)


def _list(ctx: _Ctx, node: Node, path: str) -> list[Node]:
    if not isinstance(node, SequenceNode):
        raise ctx.error(node, path, f"must be a list, got {_describe(node)}")
    return list(node.value)


def _name(ctx: _Ctx, node: Node, path: str, pattern: re.Pattern[str] = _IFNAME) -> str:
    """A Linux device or VRF name: OpenPERouter's pattern, at most 15 characters (IFNAMSIZ)."""
    text = _str(ctx, node, path)
    if len(text) > 15 or not pattern.match(text):
        raise ctx.error(
            node, path, f"{text!r} is not a device name (1..15 characters matching {pattern.pattern})"
        )
    return text


def _ip(ctx: _Ctx, node: Node, path: str) -> IPAddress:
    text = _text(ctx, node, path)
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise ctx.error(node, path, f"{text!r} is not an IP address") from None


def _ipv4(ctx: _Ctx, node: Node, path: str) -> ipaddress.IPv4Address:
    address = _ip(ctx, node, path)
    if not isinstance(address, ipaddress.IPv4Address):
        raise ctx.error(node, path, f"{address} is not an IPv4 address")
    return address


def _ipv6(ctx: _Ctx, node: Node, path: str) -> ipaddress.IPv6Address:
    address = _ip(ctx, node, path)
    if not isinstance(address, ipaddress.IPv6Address):
        raise ctx.error(node, path, f"{address} is not an IPv6 address")
    return address


def _network(ctx: _Ctx, node: Node, path: str) -> Network:
    """A CIDR; host bits are dropped as Go's ``net.ParseCIDR`` does (``100.65.0.1/24`` -> ``100.65.0.0/24``)."""
    text = _text(ctx, node, path)
    try:
        if "/" not in text:
            raise ValueError
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ctx.error(node, path, f"{text!r} is not a CIDR (ADDRESS/PREFIX)") from None


def _interface(ctx: _Ctx, node: Node, path: str) -> IPInterface:
    """A gateway address with its prefix length, e.g. ``192.170.1.1/24``."""
    text = _text(ctx, node, path)
    try:
        if "/" not in text:
            raise ValueError
        value = ipaddress.ip_interface(text)
    except ValueError:
        raise ctx.error(
            node, path, f"{text!r} is not an address with a prefix length (e.g. 192.170.1.1/24)"
        ) from None
    if value.ip == value.network.network_address and value.network.prefixlen < value.max_prefixlen - 1:
        raise ctx.error(node, path, f"{text} is the network address, not a gateway address")
    return value


def _gateways(ctx: _Ctx, nodes: list[Node], path: str) -> tuple[IPInterface, ...]:
    """OpenPERouter's rule: at most 2 gateway IPs, at most one per family."""
    if len(nodes) > 2:
        raise ctx.error(nodes[2], path, f"at most 2 addresses (one IPv4, one IPv6), got {len(nodes)}")
    gateways = tuple(_interface(ctx, n, f"{path}[{i}]") for i, n in enumerate(nodes))
    if len(gateways) == 2 and gateways[0].version == gateways[1].version:
        raise ctx.error(nodes[1], f"{path}[1]", "two addresses must be one IPv4 and one IPv6")
    return gateways


_T = TypeVar("_T")


def _targets(ctx: _Ctx, nodes: list[Node], path: str, parse: Callable[[str], _T]) -> tuple[_T, ...]:
    """A list of route targets (export: ``RouteTarget.from_text``; import: ``RouteTargetMatcher.from_text``,
    which also takes ``*:N``), each bad item reported with its line and index."""
    result: list[_T] = []
    for i, node in enumerate(nodes):
        text = _text(ctx, node, f"{path}[{i}]")
        try:
            result.append(parse(text))
        except (InvalidValue, ValueError) as exc:
            raise ctx.error(node, f"{path}[{i}]", f"bad route target: {exc}") from None
    return tuple(result)


def _route_targets(ctx: _Ctx, nodes: list[Node], path: str) -> tuple[RouteTarget, ...]:
    return _targets(ctx, nodes, path, RouteTarget.from_text)


def _import_targets(ctx: _Ctx, nodes: list[Node], path: str) -> tuple[RouteTargetMatcher, ...]:
    return _targets(ctx, nodes, path, RouteTargetMatcher.from_text)


def _rd(ctx: _Ctx, node: Node, path: str) -> RouteDistinguisher:
    text = _text(ctx, node, path)
    try:
        return RouteDistinguisher.from_text(text)
    except (InvalidValue, ValueError) as exc:
        raise ctx.error(node, path, f"bad route distinguisher: {exc}") from None


def _mac(ctx: _Ctx, node: Node, path: str) -> MacAddress:
    text = _text(ctx, node, path)
    try:
        return MacAddress.from_text(text)
    except (InvalidValue, ValueError) as exc:
        raise ctx.error(node, path, str(exc)) from None


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT = {
    "ns": Fraction(1, 10**9),
    "us": Fraction(1, 10**6),
    "µs": Fraction(1, 10**6),
    "μs": Fraction(1, 10**6),
    "ms": Fraction(1, 1000),
    "s": Fraction(1),
    "m": Fraction(60),
    "h": Fraction(3600),
}


def _duration(ctx: _Ctx, node: Node, path: str, lo: int, hi: int) -> int:
    """A Kubernetes ``metav1.Duration`` (Go ``time.ParseDuration``: ``180s``, ``3m``, ``1m30s``) in whole seconds."""
    text = _text(ctx, node, path)
    body = text[1:] if text.startswith("+") else text
    if body == "0":
        seconds = Fraction(0)
    else:
        parts = _DURATION_PART.findall(body)
        if not parts or "".join(n + u for n, u in parts) != body:
            raise ctx.error(node, path, f"{text!r} is not a duration (e.g. 90s, 3m, 1m30s)")
        seconds = sum((Fraction(n) * _UNIT[u] for n, u in parts), Fraction(0))
    if seconds.denominator != 1:
        raise ctx.error(node, path, f"{text} is not a whole number of seconds")
    if not lo <= seconds <= hi:
        raise ctx.error(node, path, f"must be {lo}..{hi} seconds, got {text}")
    return int(seconds)


_FAMILIES = {
    "l2vpn-evpn": Family.L2VPN_EVPN,
    "l2vpn evpn": Family.L2VPN_EVPN,
    "evpn": Family.L2VPN_EVPN,
    "ipv4-unicast": Family.IPV4_UNICAST,
    "ipv4 unicast": Family.IPV4_UNICAST,
    "ipv4unicast": Family.IPV4_UNICAST,
    "ipv6-unicast": Family.IPV6_UNICAST,
    "ipv6 unicast": Family.IPV6_UNICAST,
    "ipv6unicast": Family.IPV6_UNICAST,
}


def _families(ctx: _Ctx, nodes: list[Node], path: str) -> tuple[Family, ...]:
    result: list[Family] = []
    for i, node in enumerate(nodes):
        text = _str(ctx, node, f"{path}[{i}]")
        family = _FAMILIES.get(text.lower())
        if family is None:
            raise ctx.error(
                node,
                f"{path}[{i}]",
                f"unknown address family {text!r} (l2vpn-evpn, ipv4-unicast, ipv6-unicast)",
            )
        if family in result:
            raise ctx.error(node, f"{path}[{i}]", f"{text} is listed twice")
        result.append(family)
    return tuple(result)


def _vni(fields: _Fields, key: str = "vni") -> int:
    node = fields.require(key)
    return _int(fields.ctx, node, fields.sub(key), 1, MAX_VNI)


def _derive(
    ctx: _Ctx, node: Node, path: str, cidr: Network, node_index: int | None, offset: int, what: str
) -> IPAddress:
    if node_index is None:
        raise ctx.error(
            node,
            path,
            f"the {what} is host N{'+1' if offset else ''} of {cidr}: pass the node index (--node-index N)",
        )
    try:
        return _host(cidr, node_index + offset)
    except ValueError as exc:
        raise ctx.error(node, path, f"node index {node_index}: {exc}") from None


# --------------------------------------------------------------------------------------------------------------
# Host sessions (both formats)

_CidrAt = tuple[Node, str, Network]
"""A host-session CIDR with its node and field path, for errors."""


@dataclass(frozen=True, slots=True)
class _SessionCidr:
    """One CIDR of a parsed host session, kept with its place for the checks across sessions."""

    ctx: _Ctx
    node: Node
    path: str
    cidr: Network
    owner: str
    session: HostSession


def _cidr_pair(ctx: _Ctx, node: Node, path: str) -> list[_CidrAt]:
    """``{ipv4: CIDR, ipv6: CIDR}``, at least one of them, each of its family."""
    f = _Fields(ctx, node, path, ("ipv4", "ipv6"))
    out: list[_CidrAt] = []
    for key, version in (("ipv4", 4), ("ipv6", 6)):
        if (n := f.get(key)) is not None:
            cidr = _network(ctx, n, f.sub(key))
            if cidr.version != version:
                raise ctx.error(n, f.sub(key), f"{cidr} is not an IPv{version} CIDR")
            out.append((n, f.sub(key), cidr))
    if not out:
        raise ctx.error(node, path, "at least one of ipv4 or ipv6 must be set")
    return out


def _cidr_list(ctx: _Ctx, node: Node, path: str) -> list[_CidrAt]:
    """``[CIDR, CIDR]`` (today's ``localCIDRs``): one or two, at most one per family."""
    nodes = _list(ctx, node, path)
    if not nodes:
        raise ctx.error(node, path, "at least one CIDR is required")
    if len(nodes) > 2:
        raise ctx.error(nodes[2], path, f"at most 2 CIDRs (one IPv4, one IPv6), got {len(nodes)}")
    out = [(n, f"{path}[{i}]", _network(ctx, n, f"{path}[{i}]")) for i, n in enumerate(nodes)]
    if len(out) == 2 and out[0][2].version == out[1][2].version:
        raise ctx.error(out[1][0], out[1][1], f"at most one IPv{out[1][2].version} CIDR is allowed")
    return out


def _host_session(
    ctx: _Ctx,
    session: HostSession,
    cidrs: list[_CidrAt],
    node_index: int | None,
    owner: str,
    checks: list[_SessionCidr],
) -> HostSession:
    """``session`` with its CIDRs and the node index, each veth address checked to be derivable; the CIDRs
    are queued in ``checks`` for :func:`_check_sessions`."""
    v4 = next((c for _, _, c in cidrs if isinstance(c, ipaddress.IPv4Network)), None)
    v6 = next((c for _, _, c in cidrs if isinstance(c, ipaddress.IPv6Network)), None)
    if node_index is None:
        first_node, first_path, cidr = cidrs[0]
        raise ctx.error(
            first_node,
            first_path,
            f"the host side of the veth is router side + N + 1 in {cidr}: pass the node index (--node-index N)",
        )
    session = dataclasses.replace(session, local_cidr_ipv4=v4, local_cidr_ipv6=v6, node_index=node_index)
    for cidr_node, path, cidr in cidrs:
        router = session.router_side(cidr).ip
        host = router + node_index + 1
        if router not in cidr or host not in cidr:
            raise ctx.error(
                cidr_node,
                path,
                f"node index {node_index}: the host side would be {host} (router side {router} + "
                f"{node_index + 1}), outside {cidr}",
            )
        checks.append(_SessionCidr(ctx, cidr_node, path, cidr, owner, session))
    return session


def _check_sessions(checks: list[_SessionCidr], underlay: Underlay) -> None:
    """OpenPERouter's rule (CIDRs of different host sessions must not overlap), and no veth address may be
    an underlay neighbor's."""
    neighbors = {n.address for n in underlay.neighbors}
    for i, c in enumerate(checks):
        for other in checks[:i]:
            if c.cidr.overlaps(other.cidr):
                raise c.ctx.error(c.node, c.path, f"{c.cidr} overlaps {other.cidr} of {other.owner}")
        sides = (("host", c.session.host_side(c.cidr).ip), ("router", c.session.router_side(c.cidr).ip))
        for side, address in sides:
            if address in neighbors:
                raise c.ctx.error(
                    c.node,
                    c.path,
                    f"the {side} side of the veth, {address} (node index {c.session.node_index}), "
                    "is an underlay neighbor's address",
                )


# --------------------------------------------------------------------------------------------------------------
# Native schema


_NATIVE_TOP = (
    "version",
    "underlay",
    "l2vnis",
    "l3vnis",
    "duplicate_detection",
    "graceful_restart",
    "vrf_backend",
    "engine",
    "host_netns",
    "node_index",
    "passthrough",
)
_NATIVE_UNDERLAY = (
    "asn",
    "router_id",
    "router_id_cidr",
    "vtep",
    "neighbors",
    "interfaces",
    "mtu",
    "cluster_id",
    "announce_vtep",
    "nexthop_tracking",
    "nexthop_resolve_via_default",
)
_NATIVE_NEIGHBOR = (
    "address",
    "asn",
    "type",
    "port",
    "password",
    "timers",
    "route_reflector_client",
    "passive",
    "families",
    "ebgp_multihop",
    "max_prefixes",
    "description",
    "allowas_in",
    "allowas_in_origin",
)
_NATIVE_L2 = (
    "name",
    "vni",
    "vrf",
    "host_bridge",
    "gateway_ips",
    "vxlan_port",
    "rd",
    "import_rts",
    "export_rts",
    "advertise_gateway",
)
_NATIVE_L3 = (
    "name",
    "vni",
    "vrf",
    "import_rts",
    "export_rts",
    "router_mac",
    "rd",
    "vxlan_port",
    "host_session",
)
_NATIVE_SESSION = ("asn", "host_asn", "host_type", "local_cidr", "timers")


class _Native:
    """The native schema (``speaker/CONFIG.md``): one mapping, names as in FRR and OpenPERouter."""

    def __init__(self, reader: _Reader, document: int, node_index: int | None) -> None:
        self.ctx = _Ctx(reader, document)
        self.node_index = node_index
        self.places: dict[tuple[str, str], int] = {}
        self.session_checks: list[_SessionCidr] = []

    def parse(self, node: Node) -> tuple[SpeakerConfig, dict[tuple[str, str], int]]:
        top = _Fields(self.ctx, node, "", _NATIVE_TOP)
        version = top.get_int("version", 0, 1 << 31)
        if version is not None and version != 1:
            raise self.ctx.error(
                top.get("version"), "version", f"this speaker reads version 1, got {version}"
            )
        file_index = top.get_int("node_index", 0, MAX_NODE_INDEX)
        if self.node_index is None:
            self.node_index = file_index
        underlay = self._underlay(top.require("underlay"))
        l3vnis = tuple(self._l3(n, i) for i, n in enumerate(top.get_list("l3vnis")))
        l2vnis = tuple(self._l2(n, i) for i, n in enumerate(top.get_list("l2vnis")))
        kwargs: dict[str, Any] = {}
        if (pt := top.get("passthrough")) is not None:
            self.places[("l3passthrough", "passthrough")] = pt.start_mark.line + 1
            kwargs["passthrough"] = self._session(self.ctx, pt, "passthrough", "passthrough")
        _check_sessions(self.session_checks, underlay)
        if (dd := top.get("duplicate_detection")) is not None:
            kwargs["duplicate_detection"] = self._dup(dd)
        if (gr := top.get("graceful_restart")) is not None:
            kwargs["graceful_restart"] = self._gr(gr)
        if (backend := top.get("vrf_backend")) is not None:
            text = _str(self.ctx, backend, "vrf_backend")
            try:
                kwargs["vrf_backend"] = VrfBackend(text)
            except ValueError:
                raise self.ctx.error(
                    backend, "vrf_backend", f"must be device or netns, got {text!r}"
                ) from None
        if (engine := top.get("engine")) is not None:
            text = _str(self.ctx, engine, "engine")
            if text not in ENGINES:
                raise self.ctx.error(engine, "engine", f"must be one of {', '.join(ENGINES)}, got {text!r}")
            kwargs["engine"] = text
        if (netns := top.get("host_netns")) is not None:
            kwargs["host_netns"] = _str(self.ctx, netns, "host_netns")
        config = SpeakerConfig(underlay=underlay, l2vnis=l2vnis, l3vnis=l3vnis, **kwargs)
        return config, self.places

    def _underlay(self, node: Node) -> Underlay:
        ctx = self.ctx
        self.places[("underlay", "underlay")] = node.start_mark.line + 1
        f = _Fields(ctx, node, "underlay", _NATIVE_UNDERLAY)
        asn = _int(ctx, f.require("asn"), f.sub("asn"), 1, MAX_ASN)
        rid = f.one_of("router_id", "router_id_cidr")
        if rid is None:
            raise ctx.error(f.node, f.sub("router_id"), "required field is missing")
        if rid[0] == "router_id":
            router_id = _ipv4(ctx, rid[1], f.sub("router_id"))
        else:
            cidr = _network(ctx, rid[1], f.sub("router_id_cidr"))
            if not isinstance(cidr, ipaddress.IPv4Network):
                raise ctx.error(
                    rid[1], f.sub("router_id_cidr"), "a router id is an IPv4 address: use an IPv4 CIDR"
                )
            derived = _derive(ctx, rid[1], f.sub("router_id_cidr"), cidr, self.node_index, 1, "router id")
            assert isinstance(derived, ipaddress.IPv4Address)
            router_id = derived
        vtep4, vtep6 = self._vtep(ctx, f.require("vtep"), f.sub("vtep"))
        neighbor_nodes = f.get_list("neighbors")
        neighbors = tuple(
            self._neighbor(ctx, n, f"{f.sub('neighbors')}[{i}]") for i, n in enumerate(neighbor_nodes)
        )
        _place_neighbors(self.places, neighbors, neighbor_nodes)
        interfaces = tuple(
            _name(ctx, n, f"{f.sub('interfaces')}[{i}]") for i, n in enumerate(f.get_list("interfaces"))
        )
        mtu = f.get_int("mtu", 68, 65535)
        cluster = f.get("cluster_id")
        announce = f.get_bool("announce_vtep")
        tracking = f.get_bool("nexthop_tracking")
        via_default = f.get_bool("nexthop_resolve_via_default")
        return Underlay(
            asn=asn,
            router_id=router_id,
            vtep_ipv4=vtep4,
            vtep_ipv6=vtep6,
            neighbors=neighbors,
            interfaces=interfaces,
            mtu=1500 if mtu is None else mtu,
            cluster_id=None if cluster is None else _ipv4(ctx, cluster, f.sub("cluster_id")),
            announce_vtep=True if announce is None else announce,
            nexthop_tracking=True if tracking is None else tracking,
            nexthop_resolve_via_default=True if via_default is None else via_default,
        )

    def _vtep(
        self, ctx: _Ctx, node: Node, path: str
    ) -> tuple[ipaddress.IPv4Address | None, ipaddress.IPv6Address | None]:
        f = _Fields(ctx, node, path, ("ipv4", "ipv6", "cidrs"))
        v4 = None if (n := f.get("ipv4")) is None else _ipv4(ctx, n, f.sub("ipv4"))
        v6 = None if (n := f.get("ipv6")) is None else _ipv6(ctx, n, f.sub("ipv6"))
        cidrs = f.get_list("cidrs")
        if cidrs and (v4 or v6):
            raise ctx.error(
                f.keys["cidrs"], f.sub("cidrs"), "give either addresses (ipv4/ipv6) or cidrs, not both"
            )
        d4, d6 = _tunnel_endpoints(ctx, cidrs, f.sub("cidrs"), self.node_index)
        v4, v6 = v4 or d4, v6 or d6
        if v4 is None and v6 is None:
            raise ctx.error(node, path, "needs ipv4, ipv6 or cidrs")
        return v4, v6

    def _neighbor(self, ctx: _Ctx, node: Node, path: str) -> Neighbor:
        f = _Fields(ctx, node, path, _NATIVE_NEIGHBOR)
        address = _ip(ctx, f.require("address"), f.sub("address"))
        asn, peer_type = _asn_or_type(f, "asn", "type")
        kwargs: dict[str, Any] = {"address": address, "asn": asn, "peer_type": peer_type}
        if (port := f.get_int("port", 1, 65535)) is not None:
            kwargs["port"] = port
        if (password := f.get_str("password")) is not None:
            kwargs["password"] = password
        if (timers := f.get("timers")) is not None:
            kwargs["timers"] = self._timers(ctx, timers, f.sub("timers"))
        for flag in ("route_reflector_client", "passive"):
            if (value := f.get_bool(flag)) is not None:
                kwargs[flag] = value
        if (families := f.get("families")) is not None:
            kwargs["families"] = _families(ctx, _list(ctx, families, f.sub("families")), f.sub("families"))
        if (hops := f.get_int("ebgp_multihop", 1, 255)) is not None:
            kwargs["ebgp_multihop"] = hops
        if (limit := f.get_int("max_prefixes", 1, MAX_ASN)) is not None:
            kwargs["max_prefixes"] = limit
        if (description := f.get_str("description")) is not None:
            kwargs["description"] = description
        allowas = f.get_int("allowas_in", 1, 10)
        origin = f.get_bool("allowas_in_origin")
        if allowas is not None and origin:
            raise ctx.error(
                f.keys["allowas_in_origin"],
                f.sub("allowas_in_origin"),
                "set together with allowas_in: FRR's allowas-in is either a count or origin, keep one",
            )
        if allowas is not None:
            kwargs["allowas_in"] = allowas
        if origin is not None:
            kwargs["allowas_in_origin"] = origin
        return Neighbor(**kwargs)

    def _timers(self, ctx: _Ctx, node: Node, path: str) -> Timers:
        f = _Fields(ctx, node, path, ("keepalive", "hold", "connect_retry"))
        keepalive = f.get_int("keepalive", 0, 65535)
        hold = f.get_int("hold", 0, 65535)
        retry = f.get_int("connect_retry", 1, 65535)
        timers = _timers(keepalive, hold, retry)
        _check_timers(ctx, f, timers, "hold", "keepalive")
        return timers

    def _l3(self, node: Node, index: int) -> L3Vni:
        path = f"l3vnis[{index}]"
        f = _Fields(self.ctx.named("l3vni", _peek_name(node)), node, path, _NATIVE_L3)
        name = _str(f.ctx, f.require("name"), f.sub("name"))
        ctx = f.ctx = self.ctx.named("l3vni", name)
        self.places.setdefault(("l3vni", name), node.start_mark.line + 1)
        vrf_node = f.get("vrf")
        vrf = name if vrf_node is None else _name(ctx, vrf_node, f.sub("vrf"), _VRF_NAME)
        return L3Vni(
            name=name,
            vrf=vrf,
            vni=_vni(f),
            import_rts=_import_targets(ctx, f.get_list("import_rts"), f.sub("import_rts")),
            export_rts=_route_targets(ctx, f.get_list("export_rts"), f.sub("export_rts")),
            router_mac=None if (m := f.get("router_mac")) is None else _mac(ctx, m, f.sub("router_mac")),
            rd=None if (rd := f.get("rd")) is None else _rd(ctx, rd, f.sub("rd")),
            vxlan_port=_port(f, "vxlan_port"),
            host_session=(
                None
                if (hs := f.get("host_session")) is None
                else self._session(ctx, hs, f.sub("host_session"), f'l3vni "{name}"')
            ),
        )

    def _session(self, ctx: _Ctx, node: Node, path: str, owner: str) -> HostSession:
        """``host_session`` of an L3VNI, or the top-level ``passthrough``."""
        f = _Fields(ctx, node, path, _NATIVE_SESSION)
        asn = _int(ctx, f.require("asn"), f.sub("asn"), 1, MAX_ASN)
        host_asn, host_type = _asn_or_type(f, "host_asn", "host_type")
        timers = Timers()
        if (t := f.get("timers")) is not None:
            tf = _Fields(ctx, t, f.sub("timers"), ("keepalive", "hold"))
            timers = _timers(tf.get_int("keepalive", 0, 65535), tf.get_int("hold", 0, 65535), None)
            _check_timers(ctx, tf, timers, "hold", "keepalive")
        cidrs = _cidr_pair(ctx, f.require("local_cidr"), f.sub("local_cidr"))
        session = HostSession(
            asn=asn,
            host_asn=host_asn,
            host_type=host_type,
            hold_time=timers.hold_time,
            keepalive=timers.keepalive,
        )
        return _host_session(ctx, session, cidrs, self.node_index, owner, self.session_checks)

    def _l2(self, node: Node, index: int) -> L2Vni:
        path = f"l2vnis[{index}]"
        f = _Fields(self.ctx.named("l2vni", _peek_name(node)), node, path, _NATIVE_L2)
        name = _str(f.ctx, f.require("name"), f.sub("name"))
        ctx = f.ctx = self.ctx.named("l2vni", name)
        self.places.setdefault(("l2vni", name), node.start_mark.line + 1)
        vrf_node = f.get("vrf")
        bridge = None
        if (hb := f.get("host_bridge")) is not None:
            hf = _Fields(ctx, hb, f.sub("host_bridge"), ("mode", "name"))
            mode_text = hf.get_str("mode") or "managed"
            try:
                mode = HostBridgeMode(mode_text)
            except ValueError:
                raise ctx.error(
                    hf.get("mode"), hf.sub("mode"), f"must be managed or external, got {mode_text!r}"
                ) from None
            bridge_name = None if (n := hf.get("name")) is None else _name(ctx, n, hf.sub("name"))
            if mode is HostBridgeMode.EXTERNAL and bridge_name is None:
                raise ctx.error(hb, hf.sub("name"), "an external bridge needs its name")
            bridge = HostBridge(mode, bridge_name)
        return L2Vni(
            name=name,
            vni=_vni(f),
            vrf=None if vrf_node is None else _name(ctx, vrf_node, f.sub("vrf"), _VRF_NAME),
            host_bridge=bridge,
            gateway_ips=_gateways(ctx, f.get_list("gateway_ips"), f.sub("gateway_ips")),
            vxlan_port=_port(f, "vxlan_port"),
            rd=None if (rd := f.get("rd")) is None else _rd(ctx, rd, f.sub("rd")),
            import_rts=_import_targets(ctx, f.get_list("import_rts"), f.sub("import_rts")),
            export_rts=_route_targets(ctx, f.get_list("export_rts"), f.sub("export_rts")),
            advertise_gateway=bool(f.get_bool("advertise_gateway")),
        )

    def _dup(self, node: Node) -> DuplicateDetection:
        ctx = self.ctx
        self.places[("duplicate-detection", "global")] = node.start_mark.line + 1
        f = _Fields(
            ctx, node, "duplicate_detection", ("enabled", "max_moves", "window", "freeze", "freeze_time")
        )
        d = DuplicateDetection()
        return DuplicateDetection(
            enabled=d.enabled if (e := f.get_bool("enabled")) is None else e,
            max_moves=d.max_moves if (m := f.get_int("max_moves", 2, 1000)) is None else m,
            window=d.window if (w := f.get_int("window", 2, 1800)) is None else w,
            freeze=d.freeze if (z := f.get_bool("freeze")) is None else z,
            freeze_time=f.get_int("freeze_time", 30, 3600),
        )

    def _gr(self, node: Node) -> GracefulRestartConfig:
        ctx = self.ctx
        self.places[("graceful-restart", "global")] = node.start_mark.line + 1
        f = _Fields(ctx, node, "graceful_restart", ("enabled", "restart_time", "stalepath_time"))
        d = GracefulRestartConfig()
        return GracefulRestartConfig(
            enabled=d.enabled if (e := f.get_bool("enabled")) is None else e,
            restart_time=d.restart_time if (r := f.get_int("restart_time", 1, 4095)) is None else r,
            stalepath_time=d.stalepath_time if (s := f.get_int("stalepath_time", 1, 65535)) is None else s,
        )


def _peek_name(node: Node) -> str:
    """The ``name`` of a mapping before it is checked, so early errors already name the object."""
    if isinstance(node, MappingNode):
        for key, value in node.value:
            if isinstance(key, ScalarNode) and key.value == "name" and isinstance(value, ScalarNode):
                return str(value.value)
    return ""


def _port(f: _Fields, *keys: str) -> int:
    found = f.one_of(*keys)
    if found is None:
        return DEFAULT_VXLAN_PORT
    return _int(f.ctx, found[1], f.sub(found[0]), 1, 65535)


def _asn_or_type(f: _Fields, asn_key: str, type_key: str) -> tuple[int | None, PeerType | None]:
    """``asn`` or ``type`` (internal/external, any case), exactly one of them (OpenPERouter's rule)."""
    asn = f.get_int(asn_key, 1, MAX_ASN)
    type_node = f.get(type_key)
    if asn is not None and type_node is not None:
        raise f.ctx.error(
            f.keys[type_key], f.sub(type_key), f"{asn_key} and {type_key} cannot be set together"
        )
    if type_node is None:
        if asn is None:
            raise f.ctx.error(
                f.node, f.sub(asn_key), f"either {asn_key} or {type_key} (internal/external) must be set"
            )
        return asn, None
    text = _str(f.ctx, type_node, f.sub(type_key))
    try:
        return None, PeerType(text.lower())
    except ValueError:
        raise f.ctx.error(type_node, f.sub(type_key), f"must be internal or external, got {text!r}") from None


def _timers(keepalive: int | None, hold: int | None, retry: int | None) -> Timers:
    """FRR's defaults for what is unset; a hold time alone brings keepalive = hold / 3 (RFC 4271 §10)."""
    default = Timers()
    if keepalive is None:
        keepalive = default.keepalive if hold is None else hold // 3
    return Timers(
        keepalive=keepalive,
        hold_time=default.hold_time if hold is None else hold,
        connect_retry=default.connect_retry if retry is None else retry,
    )


def _check_timers(ctx: _Ctx, f: _Fields, timers: Timers, hold_key: str, keepalive_key: str) -> None:
    if timers.hold_time != 0 and timers.hold_time < 3:
        raise ctx.error(
            f.get(hold_key), f.sub(hold_key), f"must be 0 or 3..65535 (RFC 4271), got {timers.hold_time}"
        )
    if timers.keepalive > timers.hold_time:
        node = f.get(keepalive_key) or f.get(hold_key)
        raise ctx.error(
            node,
            f.sub(keepalive_key),
            f"keepalive {timers.keepalive} must not exceed the hold time {timers.hold_time}",
        )


def _place_neighbors(
    places: dict[tuple[str, str], int], neighbors: Iterable[Neighbor], nodes: list[Node]
) -> None:
    for neighbor, node in zip(neighbors, nodes, strict=True):
        places.setdefault(("neighbor", str(neighbor.address)), node.start_mark.line + 1)


def _tunnel_endpoints(
    ctx: _Ctx, nodes: list[Node], path: str, node_index: int | None
) -> tuple[ipaddress.IPv4Address | None, ipaddress.IPv6Address | None]:
    """VTEP addresses from up to two CIDRs (at most one per family), host N of each."""
    v4: ipaddress.IPv4Address | None = None
    v6: ipaddress.IPv6Address | None = None
    if len(nodes) > 2:
        raise ctx.error(nodes[2], path, f"at most 2 CIDRs (one IPv4, one IPv6), got {len(nodes)}")
    for i, node in enumerate(nodes):
        cidr = _network(ctx, node, f"{path}[{i}]")
        address = _derive(ctx, node, f"{path}[{i}]", cidr, node_index, 0, "VTEP")
        if isinstance(address, ipaddress.IPv4Address):
            if v4 is not None:
                raise ctx.error(node, f"{path}[{i}]", "at most one IPv4 CIDR is allowed")
            v4 = address
        else:
            if v6 is not None:
                raise ctx.error(node, f"{path}[{i}]", "at most one IPv6 CIDR is allowed")
            v6 = address
    return v4, v6


# --------------------------------------------------------------------------------------------------------------
# OpenPERouter resources


_METADATA = (
    "name",
    "namespace",
    "labels",
    "annotations",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generateName",
    "finalizers",
    "ownerReferences",
    "managedFields",
    "selfLink",
)
_KINDS = ("Underlay", "L2VNI", "L3VNI", "L3Passthrough")
_UNSUPPORTED_KINDS = ("RawFRRConfig", "L3VPN", "RouterNodeConfigurationStatus", "UnderlayNodeStatus")

_UNDERLAY = {
    OLD_API: ("asn", "routeridcidr", "vtepcidr", "evpn", "nics", "neighbors", "nodeSelector", "isis", "srv6"),
    NEW_API: (
        "asn",
        "routerIDCIDR",
        "routeridcidr",
        "tunnelEndpoint",
        "evpn",
        "interfaces",
        "nics",
        "neighbors",
        "gracefulRestart",
        "routeReflector",
        "nodeSelector",
        "isis",
        "srv6",
    ),
}
_NEIGHBOR = {
    OLD_API: (
        "asn",
        "type",
        "address",
        "port",
        "password",
        "passwordSecret",
        "holdTime",
        "keepaliveTime",
        "connectTime",
        "ebgpMultiHop",
        "bfd",
    ),
    NEW_API: (
        "asn",
        "type",
        "address",
        "interface",
        "listenRange",
        "port",
        "passwordSecret",
        "holdTimeSeconds",
        "keepaliveTimeSeconds",
        "connectTimeSeconds",
        "properties",
        "bfd",
        "addressFamilies",
    ),
}
_L2VNI = {
    OLD_API: (
        "vrf",
        "vni",
        "vxlanport",
        "hostmaster",
        "l2gatewayip",
        "l2gatewayips",
        "nodeSelector",
        "underlayAddressFamily",
    ),
    NEW_API: (
        "routingDomain",
        "vrf",
        "vni",
        "vxlanPort",
        "vxlanport",
        "hostMaster",
        "hostmaster",
        "gatewayIPs",
        "l2gatewayips",
        "sriovVFPair",
        "nodeSelector",
        "underlayAddressFamily",
    ),
}
_L3VNI = {
    OLD_API: (
        "vrf",
        "vni",
        "vxlanport",
        "hostsession",
        "asn",
        "hostasn",
        "localcidr",
        "importRTs",
        "exportRTs",
        "nodeSelector",
        "underlayAddressFamily",
    ),
    NEW_API: (
        "vrf",
        "vni",
        "vxlanPort",
        "vxlanport",
        "hostSession",
        "hostsession",
        "importRTs",
        "exportRTs",
        "nodeSelector",
        "underlayAddressFamily",
    ),
}


_SESSION = {
    OLD_API: ("asn", "hostasn", "hosttype", "localcidr"),
    NEW_API: ("asn", "hostASN", "hostasn", "hostType", "hosttype", "localCIDR", "localcidr", "localCIDRs"),
}
_FLAT_SESSION = ("asn", "hostasn", "localcidr")
"""The earliest L3VNI spec held the host session's fields itself."""
_FAMILY_ORDER = (Family.IPV4_UNICAST, Family.IPV6_UNICAST, Family.L2VPN_EVPN)


@dataclass(frozen=True, slots=True)
class _Object:
    """One Kubernetes object: its context (kind, name), apiVersion, top node and spec."""

    ctx: _Ctx
    api: str
    kind: str
    name: str
    node: Node
    spec: Node

    @property
    def line(self) -> int:
        return self.node.start_mark.line + 1


class _OpenPERouter:
    """OpenPERouter resources of either API group, mapped onto the speaker's model."""

    def __init__(self, reader: _Reader, node_index: int | None) -> None:
        self.reader = reader
        self.node_index = node_index
        self.places: dict[tuple[str, str], int] = {}
        self.family_checks: list[tuple[_Ctx, Node, str, str]] = []
        self.session_checks: list[_SessionCidr] = []
        self.explicit_families: set[IPAddress] = set()

    def parse(self, documents: list[tuple[int, Node]]) -> tuple[SpeakerConfig, dict[tuple[str, str], int]]:
        objects: list[_Object] = []
        for index, node in documents:
            objects.extend(self._objects(_Ctx(self.reader, index), node))
        underlays = [o for o in objects if o.kind == "Underlay"]
        if not underlays:
            raise ConfigFileError(
                self.reader.source, "no Underlay resource: the node's ASN, VTEP and neighbors are missing"
            )
        if len(underlays) > 1:
            extra = underlays[1]
            raise extra.ctx.error(
                extra.node,
                "",
                f"a second Underlay (the first, {underlays[0].name!r}, is on line {underlays[0].line}): one per node",
            )
        l3_objects = [o for o in objects if o.kind == "L3VNI"]
        l3vnis = tuple(self._l3vni(o) for o in l3_objects)
        vrf_by_l3_name = {l3.name: l3.vrf for l3 in l3vnis}
        l2vnis = tuple(self._l2vni(o, vrf_by_l3_name) for o in objects if o.kind == "L2VNI")
        passthroughs = [o for o in objects if o.kind == "L3Passthrough"]
        if len(passthroughs) > 1:
            extra = passthroughs[1]
            raise extra.ctx.error(
                extra.node,
                "",
                f"a second L3Passthrough (the first, {passthroughs[0].name!r}, is on line "
                f"{passthroughs[0].line}): OpenPERouter allows one",
            )
        passthrough = self._passthrough(passthroughs[0]) if passthroughs else None
        underlay, graceful = self._underlay(underlays[0])
        underlay = self._default_families(underlay, passthrough, bool(l2vnis or l3vnis))
        self._check_families(underlay)
        _check_sessions(self.session_checks, underlay)
        config = SpeakerConfig(
            underlay=underlay,
            l2vnis=l2vnis,
            l3vnis=l3vnis,
            graceful_restart=graceful,
            passthrough=passthrough,
        )
        return config, self.places

    def _default_families(
        self, underlay: Underlay, passthrough: HostSession | None, has_vnis: bool
    ) -> Underlay:
        """The families of a neighbor without ``addressFamilies``, as OpenPERouter's
        ``defaultNLPsForNeighbor`` chooses them: unicast of the neighbor's own family, of each VTEP's
        family and of each passthrough CIDR's family; IPv4 unicast and l2vpn evpn when there are VNIs."""
        common: set[Family] = set()
        sources: list[IPAddress | Network] = [
            v for v in (underlay.vtep_ipv4, underlay.vtep_ipv6) if v is not None
        ]
        if passthrough is not None:
            sources.extend(passthrough.cidrs())
        common.update(Family.IPV4_UNICAST if s.version == 4 else Family.IPV6_UNICAST for s in sources)
        if has_vnis:
            common.update((Family.IPV4_UNICAST, Family.L2VPN_EVPN))
        neighbors: list[Neighbor] = []
        for n in underlay.neighbors:
            if n.address in self.explicit_families:
                neighbors.append(n)
                continue
            families = common | {Family.IPV4_UNICAST if n.address.version == 4 else Family.IPV6_UNICAST}
            neighbors.append(
                dataclasses.replace(n, families=tuple(f for f in _FAMILY_ORDER if f in families))
            )
        return dataclasses.replace(underlay, neighbors=tuple(neighbors))

    def _objects(self, ctx: _Ctx, node: Node) -> list[_Object]:
        f = _Fields(ctx, node, "", ("apiVersion", "kind", "metadata", "spec", "status", "items"))
        api = _str(ctx, f.require("apiVersion"), "apiVersion")
        kind_node = f.require("kind")
        kind = _str(ctx, kind_node, "kind")
        if kind == "List" and api == "v1":
            return [o for item in f.get_list("items") for o in self._objects(ctx, item)]
        if f.get("items") is not None:
            raise ctx.error(f.keys["items"], "items", f"only a v1 List has items, not {kind}")
        if api not in (OLD_API, NEW_API) or kind not in _KINDS:
            if api in (OLD_API, NEW_API) and kind in _UNSUPPORTED_KINDS:
                reason = f"kind {kind} is an OpenPERouter resource evpn-speaker does not implement"
            else:
                reason = (
                    f"unknown kind {kind!r} (apiVersion {api}): evpn-speaker reads {', '.join(_KINDS)} "
                    f"of {OLD_API} or {NEW_API}"
                )
            raise ctx.error(kind_node, "kind", reason)
        meta = _Fields(ctx.named(kind, ""), f.require("metadata"), "metadata", _METADATA)
        name = _str(meta.ctx, meta.require("name"), "metadata.name")
        octx = ctx.named(kind, name)
        spec = f.require("spec")
        selector = _Fields(octx, spec, "spec", _all_spec_fields(kind, api)).get("nodeSelector")
        if selector is not None:
            octx.warn(
                selector,
                "spec.nodeSelector",
                "node selectors are not evaluated: the resource applies to this node",
            )
        self.places.setdefault((kind.lower(), name), node.start_mark.line + 1)
        return [_Object(octx, api, kind, name, node, spec)]

    # Underlay

    def _underlay(self, o: _Object) -> tuple[Underlay, GracefulRestartConfig]:
        ctx = o.ctx
        self.places[("underlay", "underlay")] = o.line
        f = _Fields(ctx, o.spec, "spec", _UNDERLAY[o.api])
        for unsupported in ("isis", "srv6"):
            if f.get(unsupported) is not None:
                raise ctx.error(
                    f.keys[unsupported],
                    f.sub(unsupported),
                    "not supported by evpn-speaker (EVPN over VXLAN only)",
                )
        asn = _int(ctx, f.require("asn"), f.sub("asn"), 1, MAX_ASN)
        v4, v6 = self._vteps(ctx, o.api, f)
        rid_key = f.one_of("routerIDCIDR", "routeridcidr")
        if rid_key is None:
            rid_cidr = ipaddress.ip_network(DEFAULT_ROUTER_ID_CIDR)
            rid_node: Node = f.node
            rid_path = f.sub("routerIDCIDR" if o.api == NEW_API else "routeridcidr")
        else:
            rid_path, rid_node = f.sub(rid_key[0]), rid_key[1]
            rid_cidr = _network(ctx, rid_node, rid_path)
        if not isinstance(rid_cidr, ipaddress.IPv4Network):
            raise ctx.error(rid_node, rid_path, "must be an IPv4 CIDR (router ids are IPv4)")
        router_id = _derive(ctx, rid_node, rid_path, rid_cidr, self.node_index, 1, "router id")
        assert isinstance(router_id, ipaddress.IPv4Address)
        interfaces = self._interfaces(ctx, f)
        neighbor_nodes = f.get_list("neighbors")
        if not neighbor_nodes:
            raise ctx.error(f.node, f.sub("neighbors"), "at least one neighbor is required")
        neighbors = tuple(
            self._neighbor(ctx, o.api, n, f"{f.sub('neighbors')}[{i}]") for i, n in enumerate(neighbor_nodes)
        )
        _place_neighbors(self.places, neighbors, neighbor_nodes)
        seen: dict[IPAddress, int] = {}
        for i, n in enumerate(neighbors):
            if n.address in seen:
                raise ctx.error(
                    neighbor_nodes[i],
                    f"{f.sub('neighbors')}[{i}].address",
                    f"{n.address} is already neighbors[{seen[n.address]}]",
                )
            seen[n.address] = i
        cluster_id = None
        if (rr := f.get("routeReflector")) is not None:
            rf = _Fields(ctx, rr, f.sub("routeReflector"), ("clusterID",))
            cid = rf.get("clusterID")
            cluster_id = (
                ipaddress.IPv4Address(DEFAULT_CLUSTER_ID)
                if cid is None
                else _ipv4(ctx, cid, rf.sub("clusterID"))
            )
            if cluster_id in rid_cidr:
                raise ctx.error(
                    cid or rr,
                    rf.sub("clusterID"),
                    f"{cluster_id} must be outside the routerIDCIDR range {rid_cidr}",
                )
        graceful = GracefulRestartConfig(enabled=False)
        if (gr := f.get("gracefulRestart")) is not None:
            gf = _Fields(ctx, gr, f.sub("gracefulRestart"), ("restartTimeSeconds", "stalePathTimeSeconds"))
            d = GracefulRestartConfig()
            restart = gf.get_int("restartTimeSeconds", 1, 4095)
            stale = gf.get_int("stalePathTimeSeconds", 1, 4095)
            graceful = GracefulRestartConfig(
                enabled=True,
                restart_time=d.restart_time if restart is None else restart,
                stalepath_time=d.stalepath_time if stale is None else stale,
            )
            self.places[("graceful-restart", "global")] = gr.start_mark.line + 1
        underlay = Underlay(
            asn=asn,
            router_id=router_id,
            vtep_ipv4=v4,
            vtep_ipv6=v6,
            neighbors=neighbors,
            interfaces=interfaces,
            cluster_id=cluster_id,
            announce_vtep=True,
            nexthop_tracking=True,
            nexthop_resolve_via_default=True,
        )
        return underlay, graceful

    def _vteps(
        self, ctx: _Ctx, api: str, f: _Fields
    ) -> tuple[ipaddress.IPv4Address | None, ipaddress.IPv6Address | None]:
        where = f.one_of("tunnelEndpoint", "evpn", "vtepcidr")
        if where is None:
            key = "tunnelEndpoint.cidrs" if api == NEW_API else "evpn.vtepcidr"
            raise ctx.error(
                f.node, f.sub(key), "required field is missing: the CIDR each node's VTEP is taken from"
            )
        key, node = where
        if key == "vtepcidr":
            nodes, path = [node], f.sub("vtepcidr")
        elif key == "evpn":
            ef = _Fields(ctx, node, f.sub("evpn"), ("vtepcidr", "vtepInterface"))
            if ef.get("vtepInterface") is not None:
                raise ctx.error(
                    ef.keys["vtepInterface"],
                    ef.sub("vtepInterface"),
                    "not supported by evpn-speaker: give vtepcidr",
                )
            nodes, path = [ef.require("vtepcidr")], ef.sub("vtepcidr")
        else:
            tf = _Fields(ctx, node, f.sub("tunnelEndpoint"), ("cidrs",))
            nodes, path = tf.get_list("cidrs"), tf.sub("cidrs")
            if not nodes:
                raise ctx.error(node, path, "at least one CIDR is required")
        if key != "tunnelEndpoint":
            cidr = _network(ctx, nodes[0], path)
            address = _derive(ctx, nodes[0], path, cidr, self.node_index, 0, "VTEP")
            if isinstance(address, ipaddress.IPv4Address):
                return address, None
            return None, address
        return _tunnel_endpoints(ctx, nodes, path, self.node_index)

    def _interfaces(self, ctx: _Ctx, f: _Fields) -> tuple[str, ...]:
        names: list[str] = []
        if "nics" in f.values:
            names.extend(_name(ctx, n, f"{f.sub('nics')}[{i}]") for i, n in enumerate(f.get_list("nics")))
        for i, node in enumerate(f.get_list("interfaces")):
            path = f"{f.sub('interfaces')}[{i}]"
            inf = _Fields(ctx, node, path, ("type", "networkDevice", "cniDevice"))
            kind = _str(ctx, inf.require("type"), inf.sub("type"))
            if kind != "NetworkDevice":
                if kind in ("CNIDevice", "CNI"):
                    raise ctx.error(
                        inf.values["type"],
                        inf.sub("type"),
                        f"{kind} interfaces are not supported by evpn-speaker: use NetworkDevice",
                    )
                raise ctx.error(inf.values["type"], inf.sub("type"), f"must be NetworkDevice, got {kind!r}")
            if inf.get("cniDevice") is not None:
                raise ctx.error(
                    inf.keys["cniDevice"],
                    inf.sub("cniDevice"),
                    "type/config mismatch: cniDevice needs type CNIDevice",
                )
            nd = _Fields(ctx, inf.require("networkDevice"), inf.sub("networkDevice"), ("interfaceName",))
            names.append(_name(ctx, nd.require("interfaceName"), nd.sub("interfaceName")))
        if len(set(names)) != len(names):
            raise ctx.error(f.node, f.sub("interfaces"), "an interface is listed twice")
        return tuple(names)

    def _neighbor(self, ctx: _Ctx, api: str, node: Node, path: str) -> Neighbor:
        f = _Fields(ctx, node, path, _NEIGHBOR[api])
        for unsupported, reason in (
            ("interface", "unnumbered (interface) neighbors are not supported by evpn-speaker: give address"),
            (
                "listenRange",
                "dynamic (listenRange) neighbors are not supported by evpn-speaker: give address",
            ),
        ):
            if f.get(unsupported) is not None:
                raise ctx.error(f.keys[unsupported], f.sub(unsupported), reason)
        if f.get("passwordSecret") is not None:
            hint = "give password" if api == OLD_API else "use the native schema's password"
            raise ctx.error(
                f.keys["passwordSecret"],
                f.sub("passwordSecret"),
                f"Kubernetes Secrets cannot be read by evpn-speaker: {hint}",
            )
        address = _ip(ctx, f.require("address"), f.sub("address"))
        asn, peer_type = _asn_or_type(f, "asn", "type")
        kwargs: dict[str, Any] = {
            "address": address,
            "asn": asn,
            "peer_type": peer_type,
            "allowas_in": FRR_ALLOWAS_IN,
        }
        if (port := f.get_int("port", 1, 65535)) is not None:
            kwargs["port"] = port
        if (password := f.get_str("password")) is not None:
            kwargs["password"] = password
        if (bfd := f.get("bfd")) is not None:
            ctx.warn(bfd, f.sub("bfd"), "BFD is not implemented by evpn-speaker: ignored")
        if api == OLD_API:
            hold = (
                None if (n := f.get("holdTime")) is None else _duration(ctx, n, f.sub("holdTime"), 0, 65535)
            )
            keep = (
                None
                if (n := f.get("keepaliveTime")) is None
                else _duration(ctx, n, f.sub("keepaliveTime"), 0, 65535)
            )
            retry = (
                None
                if (n := f.get("connectTime")) is None
                else _duration(ctx, n, f.sub("connectTime"), 1, 65535)
            )
            hold_key, keep_key = "holdTime", "keepaliveTime"
            if f.get_bool("ebgpMultiHop"):
                kwargs["ebgp_multihop"] = 255
        else:
            hold = f.get_int("holdTimeSeconds", 0, 65535)
            keep = f.get_int("keepaliveTimeSeconds", 0, 65535)
            retry = f.get_int("connectTimeSeconds", 1, 65535)
            hold_key, keep_key = "holdTimeSeconds", "keepaliveTimeSeconds"
            if (hold is None) != (keep is None):
                key = hold_key if hold is not None else keep_key
                raise ctx.error(
                    f.keys[key],
                    f.sub(key),
                    "holdTimeSeconds and keepaliveTimeSeconds must be both set or both unset",
                )
            hops, rr_client = self._properties(ctx, f)
            if hops is not None:
                kwargs["ebgp_multihop"] = hops
            families, af_rr = self._address_families(ctx, f)
            if families:
                kwargs["families"] = families
                self.explicit_families.add(address)
            if rr_client or af_rr:
                if peer_type is not PeerType.INTERNAL:
                    raise ctx.error(f.node, f.sub("type"), "routeReflectorClient requires type Internal")
                kwargs["route_reflector_client"] = True
        timers = _timers(keep, hold, retry)
        _check_timers(ctx, f, timers, hold_key, keep_key)
        kwargs["timers"] = timers
        return Neighbor(**kwargs)

    def _properties(self, ctx: _Ctx, f: _Fields) -> tuple[int | None, bool]:
        hops: int | None = None
        rr_client = False
        seen: set[str] = set()
        for i, node in enumerate(f.get_list("properties")):
            path = f"{f.sub('properties')}[{i}]"
            pf = _Fields(ctx, node, path, ("type", "ebgpMultiHop"))
            kind = _str(ctx, pf.require("type"), pf.sub("type"))
            if kind in seen:
                raise ctx.error(pf.values["type"], pf.sub("type"), f"{kind} is listed twice")
            seen.add(kind)
            if kind == "ebgpMultiHop":
                ttl = None
                if (params := pf.get("ebgpMultiHop")) is not None:
                    ttl = _Fields(ctx, params, pf.sub("ebgpMultiHop"), ("ttl",)).get_int("ttl", 1, 255)
                hops = 255 if ttl is None else ttl
            elif kind == "routeReflectorClient":
                rr_client = True
            else:
                raise ctx.error(
                    pf.values["type"],
                    pf.sub("type"),
                    f"must be ebgpMultiHop or routeReflectorClient, got {kind!r}",
                )
            if kind != "ebgpMultiHop" and pf.get("ebgpMultiHop") is not None:
                raise ctx.error(
                    pf.keys["ebgpMultiHop"],
                    pf.sub("ebgpMultiHop"),
                    "ebgpMultiHop parameters can only be set when type is ebgpMultiHop",
                )
        return hops, rr_client

    def _address_families(self, ctx: _Ctx, f: _Fields) -> tuple[tuple[Family, ...], bool]:
        families: list[Family] = []
        rr_client = False
        names = {
            "evpn": Family.L2VPN_EVPN,
            "ipv4unicast": Family.IPV4_UNICAST,
            "ipv6unicast": Family.IPV6_UNICAST,
        }
        for i, node in enumerate(f.get_list("addressFamilies")):
            path = f"{f.sub('addressFamilies')}[{i}]"
            af = _Fields(ctx, node, path, ("type", "properties"))
            kind = _str(ctx, af.require("type"), af.sub("type"))
            if kind in ("ipv4vpn", "ipv6vpn"):
                raise ctx.error(
                    af.values["type"], af.sub("type"), f"{kind} (SRv6 L3VPN) is not supported by evpn-speaker"
                )
            if kind not in names:
                raise ctx.error(
                    af.values["type"],
                    af.sub("type"),
                    f"must be one of evpn, ipv4unicast, ipv6unicast, got {kind!r}",
                )
            if names[kind] in families:
                raise ctx.error(af.values["type"], af.sub("type"), f"{kind} is listed twice")
            families.append(names[kind])
            for j, prop in enumerate(af.get_list("properties")):
                pf = _Fields(ctx, prop, f"{af.sub('properties')}[{j}]", ("type",))
                ptype = _str(ctx, pf.require("type"), pf.sub("type"))
                if ptype != "routeReflectorClient":
                    raise ctx.error(
                        pf.values["type"], pf.sub("type"), f"must be routeReflectorClient, got {ptype!r}"
                    )
                if names[kind] is not Family.L2VPN_EVPN:
                    ctx.warn(
                        prop,
                        pf.sub("type"),
                        "route reflection applies to every family of this neighbor in evpn-speaker",
                    )
                rr_client = True
        return tuple(families), rr_client

    # VNIs

    def _l3vni(self, o: _Object) -> L3Vni:
        ctx = o.ctx
        f = _Fields(ctx, o.spec, "spec", _L3VNI[o.api])
        vrf_node = f.get("vrf")
        if vrf_node is None and o.api == NEW_API:
            raise ctx.error(f.node, f.sub("vrf"), "required field is missing")
        vrf = o.name if vrf_node is None else _name(ctx, vrf_node, f.sub("vrf"), _VRF_NAME)
        if vrf_node is None and (len(vrf) > 15 or not _VRF_NAME.match(vrf)):
            raise ctx.error(
                f.node, f.sub("vrf"), f"unset, so the VRF is the object's name, and {vrf!r} is not a VRF name"
            )
        session = self._l3vni_session(o, f)
        self._address_family(ctx, f)
        return L3Vni(
            name=o.name,
            vrf=vrf,
            vni=_vni(f),
            import_rts=_import_targets(ctx, f.get_list("importRTs"), f.sub("importRTs")),
            export_rts=_route_targets(ctx, f.get_list("exportRTs"), f.sub("exportRTs")),
            vxlan_port=_port(f, "vxlanPort", "vxlanport"),
            host_session=session,
        )

    def _l3vni_session(self, o: _Object, f: _Fields) -> HostSession | None:
        """``spec.hostSession`` (``hostsession``), or the earliest form's flat ``asn``/``hostasn``/``localcidr``."""
        found = f.one_of("hostSession", "hostsession")
        flat = [k for k in _FLAT_SESSION if f.get(k) is not None]
        if found is not None and flat:
            raise o.ctx.error(
                f.keys[flat[0]], f.sub(flat[0]), f"set together with {found[0]}: give the host session once"
            )
        if found is not None:
            hs = _Fields(o.ctx, found[1], f.sub(found[0]), _SESSION[o.api])
            return self._session(o, hs, flat=False)
        if flat:
            return self._session(o, f, flat=True)
        return None

    def _passthrough(self, o: _Object) -> HostSession:
        f = _Fields(o.ctx, o.spec, "spec", ("hostsession", "hostSession", "nodeSelector"))
        found = f.one_of("hostSession", "hostsession")
        if found is None:
            key = "hostSession" if o.api == NEW_API else "hostsession"
            raise o.ctx.error(f.node, f.sub(key), "required field is missing")
        self.places[("l3passthrough", "passthrough")] = o.line
        return self._session(o, _Fields(o.ctx, found[1], f.sub(found[0]), _SESSION[o.api]), flat=False)

    def _session(self, o: _Object, hs: _Fields, *, flat: bool) -> HostSession:
        """A HostSession: ``asn``, ``hostASN`` or ``hostType`` (exactly one), the veth CIDRs."""
        ctx = o.ctx
        asn_key, type_key = ("hostASN", "hostType") if o.api == NEW_API else ("hostasn", "hosttype")
        asn = _int(ctx, hs.require("asn"), hs.sub("asn"), 1, MAX_ASN)
        host_asn_found = hs.one_of("hostASN", "hostasn")
        host_type_found = hs.one_of("hostType", "hosttype")
        if host_asn_found is not None and host_type_found is not None:
            key = host_type_found[0]
            raise ctx.error(
                hs.keys[key], hs.sub(key), f"{host_asn_found[0]} and {key} cannot be set together"
            )
        host_asn: int | None = None
        host_type: PeerType | None = None
        if host_asn_found is not None:
            key, node = host_asn_found
            host_asn = _int(ctx, node, hs.sub(key), 1, MAX_ASN)
            if host_asn == asn:
                raise ctx.error(node, hs.sub(key), f"must be different from asn ({asn})")
        elif host_type_found is not None:
            key, node = host_type_found
            text = _str(ctx, node, hs.sub(key))
            try:
                host_type = PeerType(text.lower())
            except ValueError:
                raise ctx.error(node, hs.sub(key), f"must be Internal or External, got {text!r}") from None
        else:
            reason = "required field is missing" if flat else f"either {asn_key} or {type_key} must be set"
            raise ctx.error(hs.node, hs.sub(asn_key), reason)
        local = hs.one_of("localCIDR", "localcidr", "localCIDRs")
        if local is None:
            key = "localCIDR" if o.api == NEW_API else "localcidr"
            raise ctx.error(hs.node, hs.sub(key), "required field is missing")
        key, node = local
        cidrs = (
            _cidr_list(ctx, node, hs.sub(key)) if key == "localCIDRs" else _cidr_pair(ctx, node, hs.sub(key))
        )
        session = HostSession(asn=asn, host_asn=host_asn, host_type=host_type)
        owner = f'{o.kind} "{o.name}"'
        return _host_session(ctx, session, cidrs, self.node_index, owner, self.session_checks)

    def _address_family(self, ctx: _Ctx, f: _Fields) -> None:
        node = f.get("underlayAddressFamily")
        if node is not None:
            text = _str(ctx, node, f.sub("underlayAddressFamily"))
            if text.lower() not in ("ipv4", "ipv6"):
                raise ctx.error(node, f.sub("underlayAddressFamily"), f"must be IPv4 or IPv6, got {text!r}")
            self.family_checks.append((ctx, node, f.sub("underlayAddressFamily"), text.lower()))

    def _check_families(self, underlay: Underlay) -> None:
        for ctx, node, path, family in self.family_checks:
            if family == "ipv4" and underlay.vtep_ipv4 is None:
                raise ctx.error(node, path, "the Underlay has no IPv4 tunnel endpoint")
            if family == "ipv6" and underlay.vtep_ipv6 is None:
                raise ctx.error(node, path, "the Underlay has no IPv6 tunnel endpoint")
            if family == "ipv6" and underlay.vtep_ipv4 is not None:
                raise ctx.error(
                    node, path, "evpn-speaker sources every VNI from the IPv4 VTEP when both exist"
                )

    def _l2vni(self, o: _Object, vrf_by_l3_name: dict[str, str]) -> L2Vni:
        ctx = o.ctx
        f = _Fields(ctx, o.spec, "spec", _L2VNI[o.api])
        if f.get("sriovVFPair") is not None:
            raise ctx.error(
                f.keys["sriovVFPair"],
                f.sub("sriovVFPair"),
                "SR-IOV VF pairs are not supported by evpn-speaker",
            )
        vrf = None if (n := f.get("vrf")) is None else _name(ctx, n, f.sub("vrf"), _VRF_NAME)
        if (rd := f.get("routingDomain")) is not None:
            domain_vrf = self._routing_domain(ctx, rd, f.sub("routingDomain"), vrf_by_l3_name)
            if vrf is not None and vrf != domain_vrf:
                raise ctx.error(
                    f.keys["vrf"], f.sub("vrf"), f"{vrf!r} contradicts routingDomain (VRF {domain_vrf!r})"
                )
            vrf = domain_vrf
        self._address_family(ctx, f)
        if o.api == OLD_API:
            single = f.get("l2gatewayip")
            many = f.get_list("l2gatewayips")
            if single is not None and many:
                raise ctx.error(
                    f.keys["l2gatewayips"], f.sub("l2gatewayips"), "set together with l2gatewayip: keep one"
                )
            gateways = (
                (_interface(ctx, single, f.sub("l2gatewayip")),)
                if single is not None
                else _gateways(ctx, many, f.sub("l2gatewayips"))
            )
        else:
            found = f.one_of("gatewayIPs", "l2gatewayips")
            gateways = (
                ()
                if found is None
                else _gateways(ctx, _list(ctx, found[1], f.sub(found[0])), f.sub(found[0]))
            )
            if gateways and found is not None and found[0] == "gatewayIPs" and rd is None and vrf is None:
                raise ctx.error(
                    found[1], f.sub("gatewayIPs"), "gatewayIPs cannot be set without routingDomain"
                )
        master = f.one_of("hostMaster", "hostmaster")
        bridge = None if master is None else self._host_master(ctx, o.api, master[1], f.sub(master[0]))
        return L2Vni(
            name=o.name,
            vni=_vni(f),
            vrf=vrf,
            host_bridge=bridge,
            gateway_ips=gateways,
            vxlan_port=_port(f, "vxlanPort", "vxlanport"),
        )

    def _routing_domain(self, ctx: _Ctx, node: Node, path: str, vrf_by_l3_name: dict[str, str]) -> str:
        f = _Fields(ctx, node, path, ("type", "l3vni", "l3vpn"))
        kind = _str(ctx, f.require("type"), f.sub("type"))
        if kind == "L3VPN":
            raise ctx.error(
                f.values["type"],
                f.sub("type"),
                "L3VPN routing domains (SRv6) are not supported by evpn-speaker",
            )
        if kind != "L3VNI":
            raise ctx.error(f.values["type"], f.sub("type"), f"must be L3VNI or L3VPN, got {kind!r}")
        if f.get("l3vpn") is not None:
            raise ctx.error(
                f.keys["l3vpn"], f.sub("l3vpn"), "type L3VNI requires l3vni to be set and l3vpn to be unset"
            )
        ref = _Fields(ctx, f.require("l3vni"), f.sub("l3vni"), ("name",))
        name_node = ref.require("name")
        name = _str(ctx, name_node, ref.sub("name"))
        if name not in vrf_by_l3_name:
            known = ", ".join(sorted(vrf_by_l3_name)) or "none"
            raise ctx.error(
                name_node, ref.sub("name"), f"no L3VNI named {name!r} in this configuration (L3VNIs: {known})"
            )
        return vrf_by_l3_name[name]

    def _host_master(self, ctx: _Ctx, api: str, node: Node, path: str) -> HostBridge:
        known: tuple[str, ...]
        linux_kinds: tuple[str, ...]
        ovs_kinds: tuple[str, ...]
        if api == OLD_API:
            known = ("type", "name", "autocreate", "linuxBridge", "ovsBridge", "linux-bridge")
            linux_kinds, ovs_kinds = ("bridge", "linux-bridge"), ("ovs-bridge",)
        else:
            known = ("type", "linuxBridge", "ovsBridge")
            linux_kinds, ovs_kinds = ("LinuxBridge", "linux-bridge"), ("OVSBridge", "ovs-bridge")
        f = _Fields(ctx, node, path, known)
        kind_node = f.get("type")
        kind = None if kind_node is None else _str(ctx, kind_node, f.sub("type"))
        if kind in ovs_kinds or f.get("ovsBridge") is not None:
            where = kind_node if kind_node is not None else f.keys["ovsBridge"]
            raise ctx.error(
                where, f.sub("type"), "OVS bridges are not supported by evpn-speaker: use a Linux bridge"
            )
        if kind is not None and kind not in linux_kinds:
            choices = ", ".join(linux_kinds + ovs_kinds)
            raise ctx.error(kind_node, f.sub("type"), f"must be one of {choices}, got {kind!r}")
        nested = f.one_of("linuxBridge", "linux-bridge")
        if nested is not None:
            if f.get("name") is not None or f.get("autocreate") is not None:
                raise ctx.error(
                    nested[1],
                    f.sub(nested[0]),
                    "give the bridge either flat (name/autocreate) or here, not both",
                )
            bf = _Fields(ctx, nested[1], f.sub(nested[0]), ("lifecycle", "name", "autoCreate", "autocreate"))
            name = None if (n := bf.get("name")) is None else _name(ctx, n, bf.sub("name"), _VRF_NAME)
            if (lifecycle := bf.get("lifecycle")) is not None:
                text = _str(ctx, lifecycle, bf.sub("lifecycle"))
                if text not in ("Managed", "External"):
                    raise ctx.error(
                        lifecycle, bf.sub("lifecycle"), f"must be Managed or External, got {text!r}"
                    )
                if bf.one_of("autoCreate", "autocreate") is not None:
                    raise ctx.error(
                        lifecycle, bf.sub("lifecycle"), "set together with autoCreate: keep lifecycle"
                    )
                if (name is not None) == (text == "Managed"):
                    raise ctx.error(
                        lifecycle,
                        bf.sub("name"),
                        "name must be set when lifecycle is External, and must not be set when it is Managed",
                    )
                return HostBridge(
                    HostBridgeMode.MANAGED if text == "Managed" else HostBridgeMode.EXTERNAL, name
                )
            auto_key = bf.one_of("autoCreate", "autocreate")
            auto = False if auto_key is None else _bool(ctx, auto_key[1], bf.sub(auto_key[0]))
            return self._bridge(ctx, nested[1], bf.path, name, auto, both_allowed=False)
        if kind_node is None and api == NEW_API:
            raise ctx.error(f.node, f.sub("type"), "required field is missing")
        name = None if (n := f.get("name")) is None else _name(ctx, n, f.sub("name"), _VRF_NAME)
        auto = bool(f.get_bool("autocreate"))
        return self._bridge(ctx, node, path, name, auto, both_allowed=True)

    @staticmethod
    def _bridge(
        ctx: _Ctx, node: Node, path: str, name: str | None, auto: bool, *, both_allowed: bool
    ) -> HostBridge:
        """OpenPERouter's name/autocreate pair: create br-hs-<vni> (or ``name``), or attach to ``name``."""
        if name is None and not auto:
            raise ctx.error(node, path, "either name must be set or autocreate must be true")
        if name is not None and auto and not both_allowed:
            raise ctx.error(node, path, "either name must be set or autoCreate must be true, but not both")
        return HostBridge(HostBridgeMode.MANAGED if auto else HostBridgeMode.EXTERNAL, name)


def _all_spec_fields(kind: str, api: str) -> tuple[str, ...]:
    table = {"Underlay": _UNDERLAY, "L2VNI": _L2VNI, "L3VNI": _L3VNI}.get(kind)
    if table is None:
        return ("hostsession", "hostSession", "nodeSelector")
    return table[api]
