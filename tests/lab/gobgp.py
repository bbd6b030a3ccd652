"""GoBGP (gobgpd 3.x) in a network namespace, configured from a generated TOML file.

Each instance has its own directory (``gobgpd.toml``, ``gobgpd.log``) and its own gRPC API port
(``--api-hosts 127.0.0.1:PORT``, inside its namespace), so several run side by side.
"""

from __future__ import annotations

import itertools
import json
import random
import shlex
import shutil
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

from tests.lab.netns import LabError, Namespace, stop_popen, tail_file, wait_for

T = TypeVar("T")

# GoBGP API enum PeerState.SessionState
SESSION_STATES = {
    0: "unknown",
    1: "idle",
    2: "connect",
    3: "active",
    4: "opensent",
    5: "openconfirm",
    6: "established",
}

_api_ports = itertools.count(random.randrange(50100, 59000, 100))


def gobgp_available() -> bool:
    """True if gobgpd and the gobgp CLI are installed."""
    return shutil.which("gobgpd") is not None and shutil.which("gobgp") is not None


@dataclass
class GobgpNeighbor:
    """One ``[[neighbors]]`` entry. ``families`` are GoBGP afi-safi names (``l2vpn-evpn``, ``ipv4-unicast``)."""

    address: str
    peer_as: int
    families: Sequence[str] = ("l2vpn-evpn",)
    route_reflector_client: bool = False
    cluster_id: str | None = None
    passive: bool = False
    remote_port: int | None = None
    local_address: str | None = None
    multihop_ttl: int | None = None
    hold_time: int = 9
    keepalive_interval: int = 3
    connect_retry: int = 1
    auth_password: str | None = None


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, Iterable):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"cannot encode {value!r} as TOML")


def _table(header: str, items: dict[str, Any], indent: str = "") -> list[str]:
    lines = [f"{indent}{header}"]
    lines += [f"{indent}  {k} = {_toml(v)}" for k, v in items.items() if v is not None]
    return lines


def render_config(
    asn: int,
    router_id: str,
    neighbors: Sequence[GobgpNeighbor],
    *,
    listen_port: int = 179,
    listen_addresses: Sequence[str] | None = None,
) -> str:
    """GoBGP TOML configuration text. ``listen_port=-1`` disables listening."""
    lines = _table(
        "[global.config]",
        {
            "as": asn,
            "router-id": router_id,
            "port": listen_port,
            "local-address-list": list(listen_addresses) if listen_addresses else None,
        },
    )
    for n in neighbors:
        lines += ["", "[[neighbors]]"]
        lines += _table(
            "[neighbors.config]",
            {"neighbor-address": n.address, "peer-as": n.peer_as, "auth-password": n.auth_password},
            "  ",
        )
        lines += _table(
            "[neighbors.timers.config]",
            {
                "connect-retry": n.connect_retry,
                "hold-time": n.hold_time,
                "keepalive-interval": n.keepalive_interval,
            },
            "  ",
        )
        transport = {
            "passive-mode": n.passive,
            "remote-port": n.remote_port,
            "local-address": n.local_address,
        }
        lines += _table("[neighbors.transport.config]", transport, "  ")
        if n.multihop_ttl is not None:
            lines += _table(
                "[neighbors.ebgp-multihop.config]", {"enabled": True, "multihop-ttl": n.multihop_ttl}, "  "
            )
        if n.route_reflector_client:
            lines += _table(
                "[neighbors.route-reflector.config]",
                {"route-reflector-client": True, "route-reflector-cluster-id": n.cluster_id or router_id},
                "  ",
            )
        for family in n.families:
            lines += ["  [[neighbors.afi-safis]]"]
            lines += _table("[neighbors.afi-safis.config]", {"afi-safi-name": family}, "    ")
    return "\n".join(lines) + "\n"


class GobgpRouter:
    """gobgpd in ``ns``; drive it with :meth:`gobgp` (CLI) and the helpers below."""

    def __init__(
        self,
        ns: Namespace,
        asn: int,
        router_id: str,
        neighbors: Sequence[GobgpNeighbor] = (),
        *,
        directory: Path,
        listen_port: int = 179,
        listen_addresses: Sequence[str] | None = None,
        api_port: int | None = None,
        log_level: str = "info",
    ) -> None:
        self.ns = ns
        self.asn = asn
        self.router_id = router_id
        self.neighbors = list(neighbors)
        self.dir = directory
        self.listen_port = listen_port
        self.listen_addresses = listen_addresses
        self.api_port = api_port if api_port is not None else next(_api_ports)
        self.log_level = log_level
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def __repr__(self) -> str:
        return f"GobgpRouter({self.ns.name!r}, api_port={self.api_port})"

    @property
    def config_path(self) -> Path:
        """Path of the generated TOML file."""
        return self.dir / "gobgpd.toml"

    @property
    def log_path(self) -> Path:
        """Path of gobgpd's log (stdout+stderr)."""
        return self.dir / "gobgpd.log"

    @property
    def pid(self) -> int | None:
        """gobgpd's pid while started."""
        return self.proc.pid if self.proc is not None else None

    def config_text(self) -> str:
        """The TOML configuration for this router."""
        return render_config(
            self.asn,
            self.router_id,
            self.neighbors,
            listen_port=self.listen_port,
            listen_addresses=self.listen_addresses,
        )

    def start(self, timeout: float = 10.0) -> GobgpRouter:
        """Write the config, start gobgpd and wait until its API answers."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config_text())
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        cmd = [
            "gobgpd",
            "-f", str(self.config_path),
            "-t", "toml",
            "--api-hosts", f"127.0.0.1:{self.api_port}",
            "--pprof-disable",
            "--log-plain",
            "--log-level", self.log_level,
        ]  # fmt: skip
        self.proc = self.ns.popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise LabError(f"gobgpd exited with rc={self.proc.returncode}\n{self.logs()}")
            return self.run_cli(["global"], check=False).returncode == 0

        try:
            wait_for(ready, timeout, what=f"gobgpd API on port {self.api_port}", details=self.logs)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop gobgpd by pid (SIGTERM, then SIGKILL). Idempotent."""
        if self.proc is not None:
            stop_popen(self.proc, timeout=timeout)
        if self._log is not None:
            self._log.close()
            self._log = None

    def logs(self, lines: int = 200) -> str:
        """The tail of gobgpd's log."""
        return f"--- {self.log_path} ---\n{tail_file(self.log_path, lines)}"

    # -- CLI ---------------------------------------------------------------------------------------------

    def run_cli(
        self, args: str | Sequence[str], *, json: bool = False, check: bool = True, timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]:
        """Run the ``gobgp`` CLI against this instance (inside its namespace); ``json`` adds ``-j``."""
        argv = shlex.split(args) if isinstance(args, str) else list(args)
        cmd = ["gobgp", "-u", "127.0.0.1", "-p", str(self.api_port), *(["-j"] if json else []), *argv]
        return self.ns.run(cmd, check=check, timeout=timeout)

    def gobgp(self, args: str | Sequence[str], *, json: bool = False) -> str:
        """Run a CLI command (``"neighbor"``, ``["global", "rib", "-a", "evpn"]``) and return stdout."""
        return self.run_cli(args, json=json).stdout

    def gobgp_json(self, args: str | Sequence[str]) -> Any:
        """Run a CLI command with ``-j`` and return the parsed JSON (None for empty output)."""
        out = self.gobgp(args, json=True).strip()
        if not out or out == "null":
            return None
        try:
            return json.loads(out)
        except ValueError as exc:
            raise LabError(f"gobgp {args!r} did not return JSON: {out[:2000]}") from exc

    def wait_for(
        self,
        predicate: Callable[[], T | None],
        timeout: float = 10.0,
        interval: float = 0.2,
        what: str = "condition",
    ) -> T:
        """Poll ``predicate`` until truthy; on timeout raise TimeoutError including gobgpd's log."""
        return wait_for(predicate, timeout, interval, what=f"{what} on {self!r}", details=self.logs)

    def neighbor_state(self, address: str) -> str:
        """Session state of ``address``: ``idle`` ... ``established``."""
        data = self.gobgp_json(["neighbor", address])
        state = (data or {}).get("state", {}).get("session_state", 0)
        return SESSION_STATES.get(state, str(state))

    def wait_established(self, address: str, timeout: float = 20.0) -> None:
        """Wait until the session with ``address`` is established."""
        self.wait_for(
            lambda: self.neighbor_state(address) == "established", timeout, what=f"BGP {address} established"
        )

    def rib(self, family: str = "evpn") -> dict[str, list[dict[str, Any]]]:
        """``gobgp -j global rib -a FAMILY``: prefix string -> list of paths."""
        data = self.gobgp_json(["global", "rib", "-a", family])
        return data if isinstance(data, dict) else {}

    def evpn_paths(self, route_type: int | None = None) -> list[dict[str, Any]]:
        """All EVPN paths of the global RIB, optionally only one route type (2 = MAC/IP, 3 = IMET ...)."""
        paths = [p for ps in self.rib("evpn").values() for p in ps]
        return [p for p in paths if route_type is None or p.get("nlri", {}).get("type") == route_type]

    def add_route(self, args: str | Sequence[str], family: str = "evpn") -> None:
        """``gobgp global rib -a FAMILY add ARGS`` (e.g. ``macadv MAC IP etag 0 label 110 rd ...``)."""
        argv = shlex.split(args) if isinstance(args, str) else list(args)
        self.gobgp(["global", "rib", "-a", family, "add", *argv])

    def del_route(self, args: str | Sequence[str], family: str = "evpn") -> None:
        """``gobgp global rib -a FAMILY del ARGS``."""
        argv = shlex.split(args) if isinstance(args, str) else list(args)
        self.gobgp(["global", "rib", "-a", family, "del", *argv])


def path_attr(path: dict[str, Any], attr_type: int) -> dict[str, Any] | None:
    """The attribute of GoBGP JSON ``path`` with BGP type code ``attr_type`` (16 = ext communities)."""
    for attr in path.get("attrs", []):
        if attr.get("type") == attr_type:
            result: dict[str, Any] = attr
            return result
    return None


def path_route_targets(path: dict[str, Any]) -> list[str]:
    """Route targets (``"64512:110"``) of a GoBGP JSON path."""
    ext = path_attr(path, 16) or {}
    return [c["value"] for c in ext.get("value", []) if c.get("subtype") == 2 and "value" in c]


def rd_string(rd: dict[str, Any]) -> str:
    """GoBGP JSON RD (``{"type":1,"admin":"10.0.0.1","assigned":2}``) as ``"10.0.0.1:2"``."""
    return f"{rd['admin']}:{rd['assigned']}"
