"""Logging of the daemon: plain text or JSON lines, one level per component.

``--log-level`` takes a level (``info``) or a comma-separated list of ``component=level`` items, where a
bare level sets the default: ``info,evpn.core=debug,dataplane=warning``. Components are logger names
(``evpn.*``, ``speaker.*``, ``dataplane.*``). Nothing is global but the ``logging`` module's own tree, which
:func:`configure_logging` sets up once per process (the daemon is one per process).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass, field
from typing import IO

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_LEVELS = {"critical", "error", "warning", "warn", "info", "debug"}


class LogSpecError(ValueError):
    """A ``--log-level`` value that cannot be read."""


@dataclass(frozen=True, slots=True)
class LogSpec:
    """The default level and the per-component levels (logger name -> level number)."""

    default: int = logging.INFO
    components: dict[str, int] = field(default_factory=dict)


def _level(text: str, where: str) -> int:
    name = text.strip().lower()
    if name.isdigit():
        return int(name)
    if name not in _LEVELS:
        raise LogSpecError(f"{where}: unknown log level {text!r} (debug, info, warning, error, critical)")
    return logging.WARNING if name == "warn" else int(logging.getLevelName(name.upper()))


def parse_log_spec(text: str) -> LogSpec:
    """``LEVEL`` or ``LEVEL,component=LEVEL,...`` or ``component=LEVEL,...``."""
    default = logging.INFO
    components: dict[str, int] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if "=" in item:
            name, _, level = item.partition("=")
            name = name.strip()
            if not name or not all(p.isidentifier() for p in name.split(".")):
                raise LogSpecError(f"--log-level: bad component name {name!r} in {item!r}")
            components[name] = _level(level, f"--log-level {name}")
        else:
            default = _level(item, "--log-level")
    return LogSpec(default, components)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (ISO 8601 UTC), ``level``, ``logger``, ``msg``, ``exc`` if any."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def make_formatter(fmt: str) -> logging.Formatter:
    if fmt == "json":
        formatter: logging.Formatter = JsonFormatter()
    elif fmt == "text":
        formatter = logging.Formatter(TEXT_FORMAT)
    else:
        raise LogSpecError(f"--log-format: {fmt!r} is not one of {', '.join(LOG_FORMATS)}")
    formatter.converter = time.gmtime
    return formatter


def configure_logging(spec: LogSpec, fmt: str = "text", stream: IO[str] | None = None) -> logging.Handler:
    """Send every log record to ``stream`` (stderr) in ``fmt``; set the root and per-component levels.

    Returns the handler (tests remove it again with ``logging.getLogger().removeHandler``).
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(make_formatter(fmt))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(spec.default)
    for name, level in spec.components.items():
        logging.getLogger(name).setLevel(level)
    return handler


__all__ = [
    "LOG_FORMATS",
    "JsonFormatter",
    "LogSpec",
    "LogSpecError",
    "configure_logging",
    "make_formatter",
    "parse_log_spec",
]
