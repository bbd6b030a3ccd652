"""Shared pytest fixtures; the machinery lives in ``tests/lab``."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from tests.lab import Lab, require_root


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember each phase's report on the item so the ``lab`` fixture knows whether the test failed."""
    report = yield
    setattr(item, f"_lab_report_{report.when}", report)
    return report


@pytest.fixture
def requires_root() -> None:
    """Skip when not root (or lab tools are missing); fail instead when the ``CI`` env var is set."""
    require_root()


@pytest.fixture
def lab(request: pytest.FixtureRequest, requires_root: None) -> Lab:
    """A fresh :class:`Lab`; everything it created is removed after the test, logs printed on failure."""
    new_lab = Lab(request.node.name)

    def finalize() -> None:
        report = getattr(request.node, "_lab_report_call", None)
        new_lab.close(failed=report is None or report.failed)

    request.addfinalizer(finalize)
    return new_lab.__enter__()
