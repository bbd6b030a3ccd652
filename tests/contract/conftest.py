"""Contract fixtures: an engine factory per engine kind (``native`` today, ``exabgp`` later)."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import pytest

from evpn.config import GracefulRestartConfig, Underlay
from speaker.engine import SessionEngine
from speaker.exabgp_engine import ExaBgpEngine
from speaker.native_engine import NativeEngine


class EngineFactory(Protocol):
    def __call__(self, underlay: Underlay, address: str, port: int, **options: Any) -> SessionEngine: ...


def _native(underlay: Underlay, address: str, port: int, **options: Any) -> SessionEngine:
    options.setdefault("initial_backoff", 0.2)
    options.setdefault("graceful_restart", GracefulRestartConfig(restart_time=120))
    return NativeEngine(underlay, listen_address=ipaddress.ip_address(address), listen_port=port, **options)


def _exabgp(underlay: Underlay, address: str, port: int, **options: Any) -> SessionEngine:
    options.setdefault("initial_backoff", 0.2)
    options.setdefault("graceful_restart", GracefulRestartConfig(restart_time=120))
    return ExaBgpEngine(underlay, listen_address=ipaddress.ip_address(address), listen_port=port, **options)


ENGINES: dict[str, Callable[..., SessionEngine]] = {"native": _native, "exabgp": _exabgp}


@pytest.fixture(params=sorted(ENGINES))
async def engine_factory(request: pytest.FixtureRequest) -> AsyncIterator[EngineFactory]:
    """Builds engines of one kind; every engine built is stopped after the test, even on failure."""
    made: list[SessionEngine] = []

    def build(underlay: Underlay, address: str, port: int, **options: Any) -> SessionEngine:
        engine = ENGINES[request.param](underlay, address, port, **options)
        made.append(engine)
        return engine

    yield build
    for engine in made:
        await engine.stop()
