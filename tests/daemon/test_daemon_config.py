"""``evpn-speaker run`` with configuration files that are not valid: exit 2, ``file:line`` and the reason on
stderr, nothing touched; ``--check``; the option parsers of ``speaker.cli_run`` and ``speaker.logging_setup``."""

from __future__ import annotations

import gc
import io
import json
import logging
from pathlib import Path

import pytest

from speaker.cli import build_parser
from speaker.cli_run import GC_THRESHOLD, parse_address, tune_gc
from speaker.logging_setup import JsonFormatter, LogSpecError, configure_logging, parse_log_spec
from tests.daemon.harness import run_cli, speaker_config
from tests.lab import Lab

GOOD = speaker_config("hostns")


def line_of(text: str, marker: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if marker in line)


def bad(name: str, text: str, marker: str | None, words: list[str]) -> tuple[str, str, int | None, list[str]]:
    return name, text, line_of(text, marker) if marker else None, words


BAD = [
    # (name, text, line of the error, words expected in the message)
    bad("vni0", GOOD.replace("vni: 110", "vni: 0"), "vni: 0", ["l2vnis[0].vni", "1..16777215"]),
    bad(
        "unknown-field",
        GOOD.replace("  asn: 64512\n  router_id", "  asn: 64512\n  colour: red\n  router_id"),
        "colour",
        ["colour"],
    ),
    bad("yaml", GOOD.replace("vtep:\n", "vtep: [\n"), None, ["YAML syntax error"]),
    bad(
        "bad-ip",
        GOOD.replace("address: 192.168.100.1", "address: 192.168.100.300"),
        "192.168.100.300",
        ["underlay.neighbors[0].address", "not an IP address"],
    ),
    bad("no-asn", GOOD.replace("  asn: 64512\n  router_id", "  router_id"), None, ["asn"]),
]


@pytest.mark.parametrize(("name", "text", "line", "words"), BAD, ids=[b[0] for b in BAD])
def test_check_rejects_malformed_file(
    tmp_path: Path, name: str, text: str, line: int | None, words: list[str]
) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    result = run_cli("run", "--config", str(path), "--check")
    assert result.returncode == 2, result
    assert result.stdout == ""
    err = result.stderr.strip()
    assert err.startswith(f"evpn-speaker: {path}:"), err
    if line is not None:
        assert f"{path}:{line}:" in err, err
    for word in words:
        assert word in err, err
    assert "Traceback" not in err


def test_check_accepts_good_file_and_missing_file_is_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "good.yaml"
    path.write_text(GOOD)
    result = run_cli("run", "--config", str(path), "--check")
    assert result.returncode == 0, result
    assert "OK" in result.stdout and "1 L2VNI" in result.stdout
    result = run_cli("run", "--config", str(tmp_path / "missing.yaml"), "--check")
    assert result.returncode == 2
    assert "missing.yaml" in result.stderr and "cannot read" in result.stderr


def test_run_with_malformed_file_exits_2_and_touches_nothing(lab: Lab) -> None:
    ns = lab.namespace("spk")
    path = lab.workdir / "bad.yaml"
    path.write_text(GOOD.replace("vni: 110", "vni: 0"))
    links = ns.ip("link", "show")
    result = run_cli("run", "--config", str(path), ns=ns)
    assert result.returncode == 2, result
    assert f"{path}:{line_of(path.read_text(), 'vni: 0')}:" in result.stderr
    assert ns.ip("link", "show") == links


def test_bad_options_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "good.yaml"
    path.write_text(GOOD)
    assert run_cli("run", "--config", str(path), "--log-level", "loud", "--check").returncode == 2
    assert run_cli("run", "--config", str(path), "--engine", "frr", "--check").returncode == 2
    assert run_cli("run", "--config", str(path), "--metrics-address", "9100", "--check").returncode == 2


def test_parser_and_addresses() -> None:
    args = build_parser().parse_args(
        [
            "run",
            "--config",
            "x.yaml",
            "--node-index",
            "1",
            "--metrics-address",
            "[::1]:9100",
            "--flush-on-exit",
        ]
    )
    assert args.node_index == 1 and args.flush_on_exit and args.metrics_address == ("::1", 9100)
    assert parse_address("127.0.0.1:9100") == ("127.0.0.1", 9100)
    assert parse_address(":9100") == ("0.0.0.0", 9100)
    assert build_parser().parse_args(["run", "--config", "x.yaml"]).gc_threshold == GC_THRESHOLD


def test_gc_tuning_sets_threshold_and_freezes_start_up_objects() -> None:
    saved = gc.get_threshold()
    try:
        tune_gc(12345)
        assert gc.get_threshold() == (12345, 20, 100)
        assert gc.get_freeze_count() > 0
        tune_gc(0)  # 0 keeps the threshold as it is
        assert gc.get_threshold() == (12345, 20, 100)
    finally:
        gc.unfreeze()
        gc.set_threshold(*saved)


def test_negative_gc_threshold_is_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "good.yaml"
    path.write_text(GOOD)
    result = run_cli("run", "--config", str(path), "--gc-threshold", "-1")
    assert result.returncode == 2 and "--gc-threshold" in result.stderr, result


def test_log_spec() -> None:
    spec = parse_log_spec("warning,evpn.core=debug,dataplane=error")
    assert spec.default == logging.WARNING
    assert spec.components == {"evpn.core": logging.DEBUG, "dataplane": logging.ERROR}
    assert parse_log_spec("speaker=debug").default == logging.INFO
    for bad in ("loud", "evpn=loud", "=debug", "a b=info"):
        with pytest.raises(LogSpecError):
            parse_log_spec(bad)


def test_json_logging_per_component() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    names = ("evpn.core", "dataplane")
    saved_levels = {n: logging.getLogger(n).level for n in names}
    try:
        configure_logging(parse_log_spec("warning,evpn.core=debug"), "json", stream)
        logging.getLogger("evpn.core").debug("shown %d", 1)
        logging.getLogger("dataplane.reconciler").info("hidden")
        logging.getLogger("speaker.daemon").warning("also shown")
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
        for n, level in saved_levels.items():
            logging.getLogger(n).setLevel(level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(x["logger"], x["level"], x["msg"]) for x in lines] == [
        ("evpn.core", "debug", "shown 1"),
        ("speaker.daemon", "warning", "also shown"),
    ]
    assert lines[0]["ts"].endswith("Z")
    assert isinstance(JsonFormatter().format(logging.LogRecord("x", 20, "", 0, "m", None, None)), str)


def test_check_example_with_node_index() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "configs" / "leaf-native.yaml"
    result = run_cli("run", "--config", str(example), "--node-index", "1", "--check")
    assert result.returncode == 0, result
    assert "router id 10.0.0.2" in result.stdout and "1 L3VNI" in result.stdout, result.stdout
    result = run_cli("run", "--config", str(example), "--check")
    assert result.returncode == 2 and "node index" in result.stderr, result
