"""The control socket (``speaker.control``) and the CLI commands over it (``speaker.cli_show``): JSON lines
round trips with a fake speaker, exit codes, permissions, and a real speaker pair showing a remote MAC."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import stat
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from evpn.events import LocalMacLearned
from evpn.mac import MacAddress
from speaker.cli import main
from speaker.control import COMMANDS, ControlServer, request
from speaker.speaker import Speaker
from tests.speaker.conftest import VNI, all_established, eventually, make_nodes, make_speaker, row
from tests.speaker.conftest import mac as node_mac
from tests.speaker.test_show import DUP, REMOTE, CoreReader, build_reader


def remote_vtep(spk: Speaker, m: MacAddress) -> object:
    """The VTEP ``spk`` shows a remote MAC behind (its public read model), or None."""
    r = row(spk, m)
    return r.vtep if r is not None and r.kind == "remote" else None


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    """A short directory for Unix sockets (paths are limited to 107 bytes)."""
    with tempfile.TemporaryDirectory(prefix="evs-", dir="/tmp") as d:
        yield Path(d)


@pytest.fixture
async def served(sock_dir: Path) -> AsyncIterator[tuple[CoreReader, Path]]:
    reader = build_reader()
    path = sock_dir / "control.sock"
    async with ControlServer(reader, path):
        yield reader, path


async def ask(path: Path, *requests: object) -> list[dict[str, Any]]:
    """Send raw requests (dicts are JSON-encoded, str/bytes sent as they are) on one connection."""
    r, w = await asyncio.open_unix_connection(str(path))
    replies = []
    try:
        for req in requests:
            raw = (
                req if isinstance(req, bytes) else (req if isinstance(req, str) else json.dumps(req)).encode()
            )
            w.write(raw.rstrip(b"\n") + b"\n")
            await w.drain()
            replies.append(json.loads(await asyncio.wait_for(r.readline(), 5)))
    finally:
        w.close()
        with contextlib.suppress(ConnectionError):
            await w.wait_closed()
    return replies


async def cli(*argv: str) -> int:
    """``evpn-speaker ARGV`` in a thread (its client blocks; the server runs in this loop)."""
    return await asyncio.to_thread(main, list(argv))


# ---- protocol --------------------------------------------------------------------------------------------


async def test_round_trip_text_and_json(served: tuple[CoreReader, Path]) -> None:
    _, path = served
    text, js, word = await ask(
        path,
        {"command": "show evpn mac vni 110"},
        {"command": "show evpn mac vni 110", "json": True},
        {"command": "show evpn mac vni 110 json"},  # vtysh's trailing word works too
    )
    assert text["ok"] is True and text["output"].startswith("Number of MACs (local and remote)")
    assert js["ok"] is True and word == js
    macs = json.loads(js["output"])["macs"]
    assert macs[str(REMOTE)]["type"] == "remote" and macs[str(REMOTE)]["remoteSequence"] == 2


async def test_socket_is_private(served: tuple[CoreReader, Path]) -> None:
    _, path = served
    mode = path.stat().st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600


async def test_every_command_answers(served: tuple[CoreReader, Path]) -> None:
    _, path = served
    commands = [
        "show bgp summary",
        "show bgp l2vpn evpn",
        "show bgp l2vpn evpn summary",
        "show bgp l2vpn evpn route",
        "show bgp l2vpn evpn route type macip",
        "show bgp l2vpn evpn route type multicast",
        "show bgp l2vpn evpn route type prefix rd 100.65.0.2:100",
        "show bgp l2vpn evpn rd 100.65.0.2:110",
        "show bgp l2vpn evpn route rd 100.65.0.2:110",
        "show bgp l2vpn evpn vni",
        "show bgp l2vpn evpn vni 110",
        "show evpn vni",
        "show evpn vni 110",
        "show evpn vni 100",
        "show evpn mac vni 110",
        "show evpn mac vni all",
        "show evpn mac vni 110 duplicate",
        "show evpn next-hops",
    ]
    for as_json in (False, True):
        replies = await ask(path, *({"command": c, "json": as_json} for c in commands))
        for command, reply in zip(commands, replies, strict=True):
            assert reply["ok"] is True, (command, reply)
            if as_json:
                json.loads(reply["output"])


@pytest.mark.parametrize(
    ("command", "error"),
    [
        ("show foo", "% Unknown command: 'show foo'"),
        ("", "% Unknown command"),
        ("show evpn mac vni 999", "% VNI 999 does not exist"),
        ("show evpn mac vni abc", "% Malformed VNI"),
        ("show evpn vni 4242", "% VNI 4242 does not exist"),
        ("show bgp l2vpn evpn route type nonsense", "% Route type must be one of"),
        ("show bgp l2vpn evpn rd nonsense", "% Malformed Route Distinguisher"),
        ("clear evpn dup-addr vni 110 mac 02:aa:00:00:00:02", "is not duplicate detected"),
        ("reload", "does not support reload"),
    ],
)
async def test_errors(served: tuple[CoreReader, Path], command: str, error: str) -> None:
    _, path = served
    (reply,) = await ask(path, {"command": command})
    assert reply["ok"] is False and error in reply["error"]


async def test_unknown_command_lists_commands(served: tuple[CoreReader, Path]) -> None:
    _, path = served
    (reply,) = await ask(path, {"command": "show running-config"})
    for command in COMMANDS:
        assert command in reply["error"]


async def test_malformed_requests(served: tuple[CoreReader, Path]) -> None:
    _, path = served
    bad_json, not_object, ok = await ask(
        path, b"{nope", '["show bgp summary"]', {"command": "show bgp summary"}
    )
    assert bad_json["ok"] is False and "malformed request" in bad_json["error"]
    assert not_object["ok"] is False and "malformed request" in not_object["error"]
    assert ok["ok"] is True  # the connection survived both


async def test_clear_dup_addr_clears_each_duplicate(served: tuple[CoreReader, Path]) -> None:
    reader, path = served
    before, cleared, after = await ask(
        path,
        {"command": "show evpn mac vni 110 duplicate", "json": True},
        {"command": "clear evpn dup-addr vni 110"},
        {"command": "show evpn mac vni 110 duplicate", "json": True},
    )
    assert list(json.loads(before["output"])["macs"]) == [str(DUP)]
    assert cleared["ok"] is True and str(DUP) in cleared["output"]
    assert reader.cleared == [(110, DUP)]
    assert json.loads(after["output"]) == {"numMacs": 0, "macs": {}}
    (again,) = await ask(path, {"command": "clear evpn dup-addr vni 110", "json": True})
    assert json.loads(again["output"]) == {"vni": 110, "cleared": []}


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str
    changes: tuple[str, ...] = ()


class Reloadable(CoreReader):
    outcome: Outcome = Outcome(True, "reloaded /etc/evpn-speaker.yaml", ("l2vni 120 added",))
    calls = 0

    async def reload(self) -> Outcome:
        self.calls += 1
        return self.outcome


async def test_reload_hook(sock_dir: Path) -> None:
    base = build_reader()
    spk = Reloadable(base.core, base.applied, base.peers)
    async with ControlServer(spk, sock_dir / "c.sock") as server:
        (ok,) = await ask(server.path, {"command": "reload"})
        assert ok == {"ok": True, "output": "reloaded /etc/evpn-speaker.yaml\n  l2vni 120 added\n"}
        spk.outcome = Outcome(False, "underlay changed: restart needed")
        (rejected,) = await ask(server.path, {"command": "reload"})
        assert rejected["ok"] is False and "underlay changed: restart needed" in rejected["error"]
        assert await cli("reload", "--socket", str(server.path)) == 1
        assert spk.calls == 3


async def test_server_replaces_a_stale_socket_but_not_a_live_one(sock_dir: Path) -> None:
    path = sock_dir / "c.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens
    reader = build_reader()
    async with ControlServer(reader, path):
        with pytest.raises(OSError, match="another speaker"):
            await ControlServer(reader, path).start()
        assert (await ask(path, {"command": "show evpn vni"}))[0]["ok"] is True
    assert not path.exists()  # removed at stop


async def test_internal_errors_are_reported_not_fatal(sock_dir: Path) -> None:
    class Broken(CoreReader):
        def peer_states(self) -> list[Any]:
            raise RuntimeError("engine gone")

    base = build_reader()
    async with ControlServer(Broken(base.core, base.applied), sock_dir / "c.sock") as server:
        broken, fine = await ask(server.path, {"command": "show bgp summary"}, {"command": "show evpn vni"})
    assert broken["ok"] is False and "engine gone" in broken["error"]
    assert fine["ok"] is True


# ---- CLI -------------------------------------------------------------------------------------------------


async def test_cli_show_text_and_json(
    served: tuple[CoreReader, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, path = served
    assert await cli("show", "evpn", "mac", "vni", "110", "--socket", str(path)) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[2].startswith("MAC               Type   Flags")
    assert await cli("show", "evpn", "mac", "vni", "110", "--json", "--socket", str(path)) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["numMacs"] == 3 and data["macs"][str(DUP)]["isDuplicate"] is True
    assert await cli("show", "bgp", "summary", "json", "--socket", str(path)) == 0
    assert "l2VpnEvpn" in json.loads(capsys.readouterr().out)


async def test_cli_clear(served: tuple[CoreReader, Path], capsys: pytest.CaptureFixture[str]) -> None:
    reader, path = served
    assert await cli("clear", "evpn", "dup-addr", "vni", "110", "--socket", str(path)) == 0
    assert str(DUP) in capsys.readouterr().out and reader.cleared == [(110, DUP)]


async def test_cli_daemon_error_exits_1(
    served: tuple[CoreReader, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, path = served
    assert await cli("show", "evpn", "mac", "vni", "999", "--socket", str(path)) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "% VNI 999 does not exist" in captured.err


def test_cli_cannot_connect_exits_2(sock_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = sock_dir / "nobody.sock"
    for argv in (["show", "bgp", "summary"], ["clear", "evpn", "dup-addr", "vni", "110"], ["reload"]):
        assert main([*argv, "--socket", str(missing)]) == 2
        err = capsys.readouterr().err
        assert str(missing) in err and "cannot connect" in err


def test_cli_usage_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "--help"]) == 0
    out = capsys.readouterr().out
    assert "show evpn mac vni VNI|all" in out and "--socket PATH" in out


async def test_client_request_function(served: tuple[CoreReader, Path]) -> None:
    _, path = served
    reply = await asyncio.to_thread(request, path, "show evpn vni", as_json=True)
    assert reply.ok and json.loads(reply.output)["110"]["type"] == "L2"
    reply = await asyncio.to_thread(request, os.fspath(path), "show nothing")
    assert not reply.ok and "Unknown command" in reply.error


# ---- a real speaker pair ---------------------------------------------------------------------------------


async def test_real_speakers_show_remote_mac(
    speakers: list[Speaker], sock_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``show evpn mac vni 110 --json`` on b lists a MAC learned on a as remote, behind a's VTEP."""
    nodes = make_nodes(2)
    a, b = (make_speaker(n, nodes) for n in nodes)
    speakers += [a, b]
    await a.start()
    await b.start()
    await all_established([a, b])
    m = node_mac(7)
    await a.inject(LocalMacLearned(VNI, m))
    await eventually(lambda: remote_vtep(b, m) == nodes[0].vtep, "the MAC behind a in b's dataplane")
    async with ControlServer(b, sock_dir / "b.sock") as server:
        argv = ["show", "evpn", "mac", "vni", str(VNI), "--json", "--socket", str(server.path)]
        assert await cli(*argv) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["macs"][str(m)]["type"] == "remote"
        assert data["macs"][str(m)]["remoteVtep"] == str(nodes[0].vtep)
        assert await cli("show", "bgp", "summary", "--json", "--socket", str(server.path)) == 0
        peers = json.loads(capsys.readouterr().out)["l2VpnEvpn"]["peers"]
        assert peers[nodes[0].address]["state"] == "Established"
        assert peers[nodes[0].address]["pfxRcd"] >= 2  # a's type-3 and type-2
        assert (
            await cli("show", "bgp", "l2vpn", "evpn", "route", "type", "macip", "--socket", str(server.path))
            == 0
        )
        assert f"*>i[2]:[0]:[48]:[{m}]" in capsys.readouterr().out.splitlines()


async def test_request_too_long_is_refused(served: tuple[CoreReader, Path]) -> None:
    _, path = served
    r, w = await asyncio.open_unix_connection(str(path))
    w.write(b'{"command": "' + b"x" * 100_000 + b'"}\n')
    await w.drain()
    reply = json.loads(await asyncio.wait_for(r.readline(), 5))
    assert reply == {"ok": False, "error": "request too long"}
    w.close()
