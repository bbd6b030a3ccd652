"""The control socket: ``show``/``clear``/``reload`` commands for a running speaker, as JSON lines.

A Unix stream socket (mode 0600, default :data:`DEFAULT_SOCKET`). Each request is one line of JSON::

    {"command": "show evpn mac vni 110", "json": true}

and gets one line back: ``{"ok": true, "output": "..."}`` (``output`` is the text, or the JSON text when
``json`` is true) or ``{"ok": false, "error": "..."}``. A connection may carry several requests in turn.

Commands (FRR's vtysh words; a trailing ``json`` word works like ``"json": true``):

- ``show bgp summary``
- ``show bgp l2vpn evpn [route [type ead|macip|multicast|es|prefix]] [rd RD]``
- ``show bgp l2vpn evpn vni [VNI]`` (RD and route targets per VNI)
- ``show evpn vni [VNI]``
- ``show evpn mac vni VNI|all``, ``show evpn mac vni VNI duplicate``
- ``show evpn next-hops``
- ``clear evpn dup-addr vni VNI [mac MAC]`` (``Speaker.clear_duplicate`` for each duplicate MAC)
- ``reload`` (the speaker's optional ``reload()`` hook, sync or async, returning None, a message, or an object
  with ``ok``, ``message`` and ``changes`` such as ``speaker.daemon.ReloadResult``; ``ok`` False is an error)
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import socket
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from evpn.config import SpeakerConfig
from evpn.mac import MacAddress
from evpn.show import MacTable, NextHopRow, RibByRd, VniRow
from speaker import show
from speaker.engine import PeerState

DEFAULT_SOCKET = "/run/evpn-speaker/control.sock"
MAX_REQUEST = 1 << 16

COMMANDS: tuple[str, ...] = (
    "show bgp summary",
    "show bgp l2vpn evpn [route [type ead|macip|multicast|es|prefix]] [rd RD]",
    "show bgp l2vpn evpn vni [VNI]",
    "show evpn vni [VNI]",
    "show evpn mac vni VNI|all",
    "show evpn mac vni VNI duplicate",
    "show evpn next-hops",
    "clear evpn dup-addr vni VNI [mac MAC]",
    "reload",
)


class SpeakerReader(Protocol):
    """What the control socket reads from a speaker (``speaker.speaker.Speaker`` satisfies it)."""

    @property
    def config(self) -> SpeakerConfig: ...

    def mac_table(self, vni: int) -> MacTable: ...

    def vni_table(self) -> tuple[VniRow, ...]: ...

    def rib_by_rd(self) -> tuple[RibByRd, ...]: ...

    def rib_path_count(self) -> int: ...

    def next_hops(self) -> tuple[NextHopRow, ...]: ...

    def peer_states(self) -> list[PeerState]: ...

    def clear_duplicate(self, vni: int, mac: MacAddress) -> None: ...


class CommandError(Exception):
    """A command the speaker cannot run (unknown, malformed, or naming what does not exist)."""


def _unknown(command: str) -> CommandError:
    listing = "\n".join(f"  {c}" for c in COMMANDS)
    return CommandError(f"% Unknown command: {command!r}. Commands:\n{listing}")


def identity(speaker: SpeakerReader) -> show.Identity:
    u = speaker.config.underlay
    return show.Identity(str(u.router_id), u.asn, u.vtep)


def _vni(text: str) -> int:
    try:
        vni = int(text)
    except ValueError:
        raise CommandError(f"% Malformed VNI: {text!r}") from None
    if not 1 <= vni < 1 << 24:
        raise CommandError(f"% VNI out of range: {vni}")
    return vni


def _mac_table(speaker: SpeakerReader, vni: int) -> MacTable:
    try:
        return speaker.mac_table(vni)
    except KeyError:
        raise CommandError(f"% VNI {vni} does not exist") from None


def _l2_tables(speaker: SpeakerReader, rows: Sequence[VniRow]) -> dict[int, MacTable]:
    return {r.vni: _mac_table(speaker, r.vni) for r in rows if r.kind == "L2"}


def _render(as_json: bool, data: Callable[[], object], text: Callable[[], str]) -> str:
    return show.to_json(data()) if as_json else text()


def _show_bgp(speaker: SpeakerReader, words: list[str], as_json: bool, command: str) -> str:
    ident = identity(speaker)
    peers = speaker.peer_states()
    if words == ["summary"]:
        entries = speaker.rib_path_count()  # a count: building the RIB view blocks the loop at 100k routes
        return _render(
            as_json,
            lambda: show.bgp_summary_json(peers, ident, entries),
            lambda: show.bgp_summary_text(peers, ident, entries),
        )
    if words[:2] == ["l2vpn", "evpn"]:
        rest = words[2:]
        if rest == ["summary"]:
            return _show_bgp(speaker, ["summary"], as_json, command)
        if rest[:1] == ["vni"] and len(rest) <= 2:
            rows = speaker.vni_table()
            if len(rest) == 1:
                return _render(
                    as_json, lambda: show.bgp_vni_json(rows, ident), lambda: show.bgp_vni_text(rows)
                )
            vni = _vni(rest[1])
            row = next((r for r in rows if r.vni == vni), None)
            if row is None:
                raise CommandError(f"% VNI {vni} does not exist")
            one = show.bgp_vni_json([row], ident)[str(vni)]
            return _render(as_json, lambda: one, lambda: show.bgp_vni_detail_text(row, ident))
        route = False
        route_type: int | None = None
        rd = None
        if rest[:1] == ["route"]:
            route = True
            rest = rest[1:]
            if rest[:1] == ["type"]:
                if len(rest) < 2 or rest[1] not in show.ROUTE_TYPES:
                    raise CommandError(f"% Route type must be one of: {', '.join(show.ROUTE_TYPES)}")
                route_type = show.ROUTE_TYPES[rest[1]]
                rest = rest[2:]
        if rest[:1] == ["rd"]:
            if len(rest) < 2:
                raise CommandError("% Missing RD after 'rd'")
            try:
                rd = show.parse_rd(rest[1])
            except ValueError:
                raise CommandError(f"% Malformed Route Distinguisher: {rest[1]!r}") from None
            rest = rest[2:]
        if rest:
            raise _unknown(command)
        groups = speaker.rib_by_rd()
        return _render(
            as_json,
            lambda: show.bgp_evpn_json(groups, ident, peers, route_type=route_type, rd=rd),
            lambda: show.bgp_evpn_text(groups, ident, peers, route_type=route_type, rd=rd, route=route),
        )
    raise _unknown(command)


def _show_evpn(speaker: SpeakerReader, words: list[str], as_json: bool, command: str) -> str:
    if words[:1] == ["vni"] and len(words) <= 2:
        rows = speaker.vni_table()
        next_hops = speaker.next_hops()
        if len(words) == 1:
            tables = _l2_tables(speaker, rows)
            return _render(
                as_json,
                lambda: show.vni_json(rows, tables, next_hops),
                lambda: show.vni_text(rows, tables, next_hops),
            )
        vni = _vni(words[1])
        row = next((r for r in rows if r.vni == vni), None)
        if row is None:
            raise CommandError(f"% VNI {vni} does not exist")
        table = _mac_table(speaker, vni) if row.kind == "L2" else None
        ident = identity(speaker)
        return _render(
            as_json,
            lambda: show.vni_detail_json(row, ident, table, next_hops),
            lambda: show.vni_detail_text(row, ident, table, next_hops),
        )
    if words[:2] == ["mac", "vni"] and len(words) in (3, 4):
        if words[2] == "all" and len(words) == 3:
            l2 = [r.vni for r in speaker.vni_table() if r.kind == "L2"]
            all_tables = [_mac_table(speaker, v) for v in l2]
            return _render(
                as_json, lambda: show.mac_tables_json(all_tables), lambda: show.mac_tables_text(all_tables)
            )
        if len(words) == 4 and words[3] != "duplicate":
            raise _unknown(command)
        table = _mac_table(speaker, _vni(words[2]))
        dup = len(words) == 4
        return _render(
            as_json,
            lambda: show.mac_table_json(table, duplicate=dup),
            lambda: show.mac_table_text(table, duplicate=dup),
        )
    if words in (["next-hops"], ["next-hops", "vni", "all"]):
        rows_nh = speaker.next_hops()
        return _render(as_json, lambda: show.next_hops_json(rows_nh), lambda: show.next_hops_text(rows_nh))
    raise _unknown(command)


def _clear(speaker: SpeakerReader, words: list[str], as_json: bool, command: str) -> str:
    if words[:3] != ["evpn", "dup-addr", "vni"] or len(words) not in (4, 6):
        raise _unknown(command)
    vni = _vni(words[3])
    table = _mac_table(speaker, vni)
    if len(words) == 6:
        if words[4] != "mac":
            raise _unknown(command)
        try:
            wanted = MacAddress.from_text(words[5])
        except Exception:
            raise CommandError(f"% Malformed MAC address: {words[5]!r}") from None
        row = next((r for r in table.rows if r.mac == wanted), None)
        if row is None:
            raise CommandError(f"% Requested MAC does not exist in VNI {vni}")
        if not row.duplicate:
            raise CommandError(f"% Requested MAC is not duplicate detected in VNI {vni}")
        macs = [wanted]
    else:
        macs = [r.mac for r in table.rows if r.duplicate]
    for m in macs:
        speaker.clear_duplicate(vni, m)
    if as_json:
        return show.to_json({"vni": vni, "cleared": [str(m) for m in macs]})
    if not macs:
        return f"No duplicate MACs in VNI {vni}\n"
    return f"Cleared {len(macs)} duplicate MAC(s) in VNI {vni}: {', '.join(str(m) for m in macs)}\n"


async def _reload(speaker: SpeakerReader, as_json: bool) -> str:
    hook = getattr(speaker, "reload", None)
    if not callable(hook):
        raise CommandError("% This speaker does not support reload")
    result = hook()
    if inspect.isawaitable(result):
        result = await result
    # a str, None, or an object with ``ok``/``message``/``changes`` (``speaker.daemon.ReloadResult``)
    message = result if isinstance(result, str) else getattr(result, "message", None)
    message = str(message).strip() if message else "configuration reloaded"
    changes = [str(c) for c in getattr(result, "changes", ()) or ()]
    if getattr(result, "ok", True) is False:
        raise CommandError(f"% Reload rejected, running configuration kept: {message}")
    if as_json:
        return show.to_json({"reloaded": True, "message": message, "changes": changes})
    return "\n".join([message, *(f"  {c}" for c in changes)]) + "\n"


async def run_command(speaker: SpeakerReader, command: str, as_json: bool = False) -> str:
    """Execute one command line; returns its output, raises ``CommandError``."""
    words = command.split()
    if words and words[-1] == "json":
        as_json = True
        words = words[:-1]
    if not words:
        raise _unknown(command)
    head, rest = words[0], words[1:]
    if head == "reload" and not rest:
        return await _reload(speaker, as_json)
    if head == "show" and rest[:1] == ["bgp"]:
        return _show_bgp(speaker, rest[1:], as_json, command)
    if head == "show" and rest[:1] == ["evpn"]:
        return _show_evpn(speaker, rest[1:], as_json, command)
    if head == "clear":
        return _clear(speaker, rest, as_json, command)
    raise _unknown(command)


# ---- server ----------------------------------------------------------------------------------------------


class ControlServer:
    """Serves :func:`run_command` on a Unix socket at ``path`` (0600); ``start``/``stop`` or ``async with``."""

    def __init__(self, speaker: SpeakerReader, path: str | os.PathLike[str] = DEFAULT_SOCKET) -> None:
        self.speaker = speaker
        self.path = Path(path)
        self._server: asyncio.AbstractServer | None = None
        self._clients: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        if self._server is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(self.path.lstat().st_mode):
                if _alive(self.path):
                    raise OSError(f"another speaker is listening on {self.path}")
                self.path.unlink()  # left over from a speaker that died
        # bound under a temporary name, made private, then renamed into place: never reachable with wider
        # permissions, whatever the umask
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(tmp))
            os.chmod(tmp, 0o600)
            sock.listen(16)
            sock.setblocking(False)
            os.replace(tmp, self.path)
        except BaseException:
            sock.close()
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        self._server = await asyncio.start_unix_server(self._serve, sock=sock, limit=MAX_REQUEST)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for task in list(self._clients):
            task.cancel()
        await asyncio.gather(*self._clients, return_exceptions=True)
        await server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def __aenter__(self) -> ControlServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._clients.add(task)
        try:
            while True:
                try:
                    line = await reader.readline()
                except (asyncio.LimitOverrunError, ValueError):
                    writer.write(_encode({"ok": False, "error": "request too long"}))
                    await writer.drain()
                    break
                if not line:
                    break
                writer.write(_encode(await self.handle(line)))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if task is not None:
                self._clients.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    async def handle(self, line: bytes | str) -> dict[str, object]:
        """One request line to its response object."""
        try:
            request = json.loads(line)
        except ValueError as exc:
            return {"ok": False, "error": f"malformed request (expected one JSON object per line): {exc}"}
        if not isinstance(request, dict) or not isinstance(request.get("command"), str):
            return {"ok": False, "error": 'malformed request: expected {"command": "...", "json": false}'}
        as_json = bool(request.get("json", False))
        try:
            output = await run_command(self.speaker, request["command"], as_json)
        except CommandError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # the daemon stays up whatever a command hits
            return {"ok": False, "error": f"% internal error: {type(exc).__name__}: {exc}"}
        return {"ok": True, "output": output}


def _encode(obj: dict[str, object]) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def _alive(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


# ---- client ----------------------------------------------------------------------------------------------


class ControlConnectError(Exception):
    """The control socket cannot be reached (no speaker running, wrong path, no permission)."""


@dataclass(frozen=True, slots=True)
class Response:
    ok: bool
    output: str = ""
    error: str = ""


def request(
    path: str | os.PathLike[str], command: str, *, as_json: bool = False, timeout: float = 30.0
) -> Response:
    """Send one command to the speaker at ``path`` (blocking); ``ControlConnectError`` when unreachable."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        try:
            sock.connect(os.fspath(path))
        except OSError as exc:
            raise ControlConnectError(
                f"cannot connect to the speaker's control socket {os.fspath(path)}: {exc.strerror or exc}"
            ) from exc
        sock.sendall(json.dumps({"command": command, "json": as_json}).encode() + b"\n")
        data = bytearray()
        while not data.endswith(b"\n"):
            chunk = sock.recv(1 << 16)
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
    try:
        reply = json.loads(data)
    except ValueError:
        return Response(False, error=f"malformed reply from the speaker: {bytes(data[:200])!r}")
    if not isinstance(reply, dict):
        return Response(False, error="malformed reply from the speaker")
    if reply.get("ok") is True:
        return Response(True, output=str(reply.get("output", "")))
    return Response(False, error=str(reply.get("error", "unknown error")))
