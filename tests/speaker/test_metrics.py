"""Prometheus metrics (``speaker.metrics``): the exposition text parsed back line by line, counters fed with
speaker changes, gauges from core state, the HTTP endpoint, and a collector on a real speaker pair."""

from __future__ import annotations

import asyncio
import errno
import itertools
import math
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from dataplane.interface import ApplyResult, EntryFailure, Operation
from evpn.dataplane_state import DataplaneDelta, FdbEntry
from evpn.events import LocalMacLearned
from evpn.mac import MacAddress
from evpn.notices import MacDuplicate, MacMoved, RejectReason, RouteRejected
from speaker.metrics import Histogram, Metrics, MetricsCollector, MetricsServer, escape_label_value
from speaker.speaker import ChangesDropped, DataplaneApplied, Speaker
from tests.speaker.conftest import VNI, all_established, eventually, make_nodes, make_speaker, row
from tests.speaker.conftest import mac as node_mac
from tests.speaker.test_show import build_reader, peer_state
from tests.unit.core_helpers import PEER, VTEP_B, mac


def remote_vtep(spk: Speaker, m: MacAddress) -> object:
    """The VTEP ``spk`` shows a remote MAC behind (its public read model), or None."""
    r = row(spk, m)
    return r.vtep if r is not None and r.kind == "remote" else None


# ---- a strict parser of the text exposition format (0.0.4) -----------------------------------------------

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(rf"^({_NAME})(\{{(.*)\}})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"(,|$)')
_SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}

Sample = tuple[str, dict[str, str], float]


@dataclass
class Parsed:
    types: dict[str, str] = field(default_factory=dict)
    helps: dict[str, str] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)

    def value(self, name: str, **labels: str) -> float:
        found = [
            v for n, lab, v in self.samples if n == name and all(lab.get(k) == x for k, x in labels.items())
        ]
        assert len(found) == 1, (name, labels, found)
        return found[0]

    def values(self, name: str) -> list[tuple[dict[str, str], float]]:
        return [(lab, v) for n, lab, v in self.samples if n == name]


def unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "\\": "\\", '"': '"'}[m.group(1)], value)


def parse_labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        m = _LABEL.match(text, pos)
        assert m is not None, f"malformed labels at {text[pos:]!r}"
        assert m.group(1) not in labels, f"label {m.group(1)} twice"
        labels[m.group(1)] = unescape(m.group(2))
        pos = m.end()
    return labels


def parse_exposition(text: str) -> Parsed:
    """Every line is a HELP, a TYPE or a sample of the family declared just before; values are floats."""
    assert text.endswith("\n")
    parsed = Parsed()
    current: str | None = None
    for line in text.splitlines():
        assert line, "no blank lines"
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            assert re.fullmatch(_NAME, name) and name not in parsed.helps
            parsed.helps[name] = help_text
            current = name
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert name == current and name not in parsed.types, "TYPE after its HELP, once"
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped")
            parsed.types[name] = kind
        else:
            assert not line.startswith("#")
            m = _SAMPLE.match(line)
            assert m is not None, f"malformed sample {line!r}"
            name, labels, raw = m.group(1), parse_labels(m.group(3) or ""), m.group(4)
            assert current is not None and current in parsed.types
            kind = parsed.types[current]
            allowed = [current + s for s in _SUFFIXES.get(kind, ())] or [current]
            assert name in allowed, f"{name} in family {current} ({kind})"
            value = float(raw)  # accepts NaN, +Inf, -Inf
            assert not math.isnan(value)
            parsed.samples.append((name, labels, value))
    return parsed


def check_histogram(parsed: Parsed, name: str, **labels: str) -> int:
    """Buckets ascending and cumulative, ``+Inf`` equal to ``_count``; returns the count."""
    buckets = [
        (float(lab["le"]), v)
        for lab, v in parsed.values(name + "_bucket")
        if all(lab.get(k) == x for k, x in labels.items())
    ]
    assert buckets and buckets[-1][0] == math.inf
    assert [b for b, _ in buckets] == sorted(b for b, _ in buckets)
    assert all(a[1] <= b[1] for a, b in itertools.pairwise(buckets))
    count = parsed.value(name + "_count", **labels)
    assert buckets[-1][1] == count
    return int(count)


# ---- exposition ------------------------------------------------------------------------------------------


def test_label_escaping_round_trips() -> None:
    nasty = 'a "quoted"\\path\nnext'
    assert escape_label_value(nasty) == 'a \\"quoted\\"\\\\path\\nnext'
    metrics = Metrics(labels={"speaker": nasty})
    parsed = parse_exposition(metrics.render())
    assert parsed.value("evpn_dataplane_errors_total", speaker=nasty) == 0


def test_gauges_from_core_state() -> None:
    reader = build_reader()
    reader.peers.append(peer_state(peer=VTEP_B, state="Active", uptime=None, flaps=3))
    parsed = parse_exposition(Metrics(reader).render())
    assert parsed.value("evpn_speaker_up") == 1
    assert parsed.types["evpn_bgp_session_state"] == "gauge"
    assert parsed.value("evpn_bgp_session_state", peer=str(PEER), state="Established") == 1
    assert parsed.value("evpn_bgp_session_state", peer=str(PEER), state="Idle") == 0
    assert parsed.value("evpn_bgp_session_state", peer=str(VTEP_B), state="Active") == 1
    assert parsed.value("evpn_bgp_session_uptime_seconds", peer=str(PEER)) == 3725
    assert parsed.value("evpn_bgp_session_uptime_seconds", peer=str(VTEP_B)) == 0
    assert parsed.types["evpn_bgp_messages_received_total"] == "counter"
    assert parsed.value("evpn_bgp_messages_received_total", peer=str(PEER)) == 120
    assert parsed.value("evpn_bgp_messages_sent_total", peer=str(PEER)) == 130
    assert parsed.value("evpn_bgp_session_flaps_total", peer=str(VTEP_B)) == 3
    assert parsed.value("evpn_bgp_prefixes_received", peer=str(PEER)) == 5
    # routes by type, VNI and origin (the type-3 of the peer is matched to VNI 110 by its route target)
    assert parsed.value("evpn_routes", type="macip", vni="110", origin="local") == 2
    assert parsed.value("evpn_routes", type="macip", vni="110", origin="remote") == 2
    assert parsed.value("evpn_routes", type="multicast", vni="110", origin="local") == 1
    assert parsed.value("evpn_routes", type="multicast", vni="110", origin="remote") == 1
    assert parsed.value("evpn_routes", type="prefix", vni="100", origin="remote") == 1
    assert parsed.value("evpn_macs", vni="110", kind="local") == 1
    assert parsed.value("evpn_macs", vni="110", kind="remote") == 2
    assert parsed.value("evpn_mac_duplicates", vni="110") == 1
    assert parsed.value("evpn_remote_vteps") == 1


def test_unreadable_speaker_still_serves_counters() -> None:
    class NotStarted:
        def __getattr__(self, name: str) -> object:
            def fail(*args: object) -> object:
                raise RuntimeError("the daemon is not started")

            return fail

    parsed = parse_exposition(Metrics(NotStarted()).render())  # type: ignore[arg-type]
    assert parsed.value("evpn_speaker_up") == 0
    assert "evpn_bgp_session_state" not in parsed.types
    assert parsed.value("evpn_dataplane_errors_total") == 0


def test_counters_from_changes() -> None:
    metrics = Metrics()
    m1, m2 = mac(1), mac(2)
    for change in (
        MacMoved(110, m1, None, VTEP_B, 1),
        MacMoved(110, m1, VTEP_B, None, 2),
        MacMoved(120, m2, None, VTEP_B, 1),
        MacDuplicate(110, m1, 5),
        RouteRejected(PEER, object(), RejectReason.AS_PATH_LOOP),
        ChangesDropped(4),
        DataplaneApplied(DataplaneDelta(), ApplyResult(added=10), reconcile=True),
        DataplaneApplied(
            DataplaneDelta(add=(FdbEntry(110, m1, VTEP_B),)),
            ApplyResult(
                2, 1, (EntryFailure(FdbEntry(110, m1, VTEP_B), Operation.ADD, errno.EEXIST, "exists"),)
            ),
        ),
        object(),  # anything else is ignored
    ):
        metrics.observe_change(change)
    parsed = parse_exposition(metrics.render())
    assert "evpn_speaker_up" in parsed.types and "evpn_bgp_session_state" not in parsed.types
    assert parsed.value("evpn_mac_moves_total", vni="110") == 2
    assert parsed.value("evpn_mac_moves_total", vni="120") == 1
    assert parsed.value("evpn_mac_duplicate_detections_total", vni="110") == 1
    assert parsed.value("evpn_routes_rejected_total", reason="as_path_loop") == 1
    assert parsed.value("evpn_changes_dropped_total") == 4
    assert parsed.value("evpn_dataplane_applies_total", kind="reconcile") == 1
    assert parsed.value("evpn_dataplane_applies_total", kind="delta") == 1
    assert parsed.value("evpn_dataplane_entries_total", op="add") == 12
    assert parsed.value("evpn_dataplane_entries_total", op="remove") == 1
    assert parsed.value("evpn_dataplane_errors_total") == 1
    assert parsed.value("evpn_dataplane_failed_applies_total") == 1
    for name in ("evpn_mac_moves_total", "evpn_dataplane_errors_total"):
        assert parsed.types[name] == "counter"


def test_histogram_exposition() -> None:
    metrics = Metrics()
    for seconds in (0.00005, 0.003, 0.003, 20.0):
        metrics.observe_core_handle("RoutesReceived", seconds)
    metrics.event_to_dataplane.observe(0.2)
    parsed = parse_exposition(metrics.render())
    assert parsed.types["evpn_core_handle_seconds"] == "histogram"
    assert check_histogram(parsed, "evpn_core_handle_seconds", event="RoutesReceived") == 4
    assert parsed.value("evpn_core_handle_seconds_bucket", event="RoutesReceived", le="0.0001") == 1
    assert parsed.value("evpn_core_handle_seconds_bucket", event="RoutesReceived", le="0.005") == 3
    assert parsed.value("evpn_core_handle_seconds_bucket", event="RoutesReceived", le="10") == 3
    assert parsed.value("evpn_core_handle_seconds_sum", event="RoutesReceived") == pytest.approx(20.00605)
    assert check_histogram(parsed, "evpn_event_to_dataplane_seconds") == 1


def test_histogram_buckets_are_cumulative() -> None:
    h = Histogram((1.0, 2.0))
    for v in (0.5, 1.0, 1.5, 3.0):
        h.observe(v)
    assert h.counts == [2, 3] and h.count == 4 and h.sum == 6.0


# ---- collector -------------------------------------------------------------------------------------------


class FakeSubscription:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[object] = asyncio.Queue()
        self.closed = False

    def __aiter__(self) -> FakeSubscription:
        return self

    async def __anext__(self) -> object:
        item = await self.queue.get()
        if item is None:
            raise StopAsyncIteration
        return item

    def close(self) -> None:
        self.closed = True


async def test_collector_consumes_subscription() -> None:
    sub = FakeSubscription()

    class Source:
        def subscribe(self) -> FakeSubscription:
            return sub

    collector = MetricsCollector(Source(), instrument_core=False)
    async with collector:
        sub.queue.put_nowait(MacMoved(110, mac(1), None, VTEP_B, 1))
        sub.queue.put_nowait(MacDuplicate(110, mac(1), 5))
        await eventually(lambda: collector.metrics.mac_duplicates.get(110) == 1, "the collector counted")
    assert sub.closed
    assert collector.metrics.mac_moves == {110: 1}


# ---- HTTP endpoint ---------------------------------------------------------------------------------------


async def http_get(port: int, path: str, method: str = "GET") -> tuple[str, dict[str, str], bytes]:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\r\n".encode())
    await w.drain()
    raw = await asyncio.wait_for(r.read(), 5)
    w.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status, *header_lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    return status, headers, body


@pytest.fixture
async def server() -> AsyncIterator[MetricsServer]:
    metrics = Metrics(build_reader())
    metrics.observe_change(MacMoved(110, mac(1), None, VTEP_B, 1))
    async with MetricsServer(metrics, "127.0.0.1", 0) as srv:
        yield srv


async def test_http_metrics_endpoint(server: MetricsServer) -> None:
    assert server.port != 0
    status, headers, body = await http_get(server.port, "/metrics")
    assert status == "HTTP/1.1 200 OK"
    assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert int(headers["content-length"]) == len(body)
    parsed = parse_exposition(body.decode())
    assert parsed.value("evpn_mac_moves_total", vni="110") == 1
    assert parsed.value("evpn_macs", vni="110", kind="remote") == 2
    status, headers, body = await http_get(server.port, "/metrics", "HEAD")
    assert status == "HTTP/1.1 200 OK" and body == b"" and int(headers["content-length"]) > 0


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/", "404 Not Found"),
        ("GET", "/metricsx", "404 Not Found"),
        ("POST", "/metrics", "405 Method Not Allowed"),
    ],
)
async def test_http_other_requests(server: MetricsServer, method: str, path: str, status: str) -> None:
    got, _, _ = await http_get(server.port, path, method)
    assert got == f"HTTP/1.1 {status}"


# ---- a real speaker pair ---------------------------------------------------------------------------------


async def test_metrics_server_on_real_speakers(speakers: list[Speaker]) -> None:
    """Given a speaker, the server runs its own collector: MAC moves counted, UPDATE handling and
    event-to-dataplane latency observed, sessions and routes read from the speaker."""
    nodes = make_nodes(2)
    a, b = (make_speaker(n, nodes) for n in nodes)
    speakers += [a, b]
    await a.start()
    await b.start()
    async with MetricsServer(b, "127.0.0.1", 0) as srv:
        await all_established([a, b])
        m = node_mac(9)
        await a.inject(LocalMacLearned(VNI, m))
        await eventually(lambda: remote_vtep(b, m) == nodes[0].vtep, "the MAC behind a on b")
        await b.inject(LocalMacLearned(VNI, m))  # moves to b: a MacMoved on b
        assert srv.collector is not None

        def seen() -> bool:
            metrics = srv.metrics
            handled = metrics.core_handle.get("RoutesReceived")
            return bool(metrics.mac_moves.get(VNI) and handled and metrics.event_to_dataplane.count)

        await eventually(seen, "moves and latencies observed")
        _, _, body = await http_get(srv.port, "/metrics")
        parsed = parse_exposition(body.decode())
        peer = nodes[0].address
        assert parsed.value("evpn_bgp_session_state", peer=peer, state="Established") == 1
        assert parsed.value("evpn_bgp_messages_received_total", peer=peer) > 0
        assert parsed.value("evpn_mac_moves_total", vni=str(VNI)) >= 1
        assert parsed.value("evpn_macs", vni=str(VNI), kind="local") == 1
        assert parsed.value("evpn_routes", type="multicast", vni=str(VNI), origin="remote") == 1
        assert check_histogram(parsed, "evpn_core_handle_seconds", event="RoutesReceived") >= 1
        assert check_histogram(parsed, "evpn_event_to_dataplane_seconds") >= 1
        assert parsed.value("evpn_dataplane_applies_total", kind="delta") >= 1
    # stop removed the instrumentation from the core
    assert "handle" not in vars(b.core)
