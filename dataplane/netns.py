"""Network namespaces by name: enter one on the calling thread, open sockets in it, write its sysctls.

``None`` always means "the namespace this process runs in". Sockets keep the namespace they were created in,
so a socket opened inside :func:`entered` stays valid after the block.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator
from pathlib import Path

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def identity(name: str | None) -> tuple[int, int]:
    """(device, inode) of the namespace: changes when a namespace of that name is deleted and recreated."""
    info = os.stat(NETNS_DIR / name if name is not None else "/proc/self/ns/net")
    return info.st_dev, info.st_ino


def exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


@contextlib.contextmanager
def entered(name: str | None) -> Iterator[None]:
    """Switch the calling thread into namespace ``name`` for the block (no-op for ``None``)."""
    if name is None:
        yield
        return
    with open("/proc/thread-self/ns/net", "rb") as current, open(NETNS_DIR / name, "rb") as target:
        _setns(target.fileno())
        try:
            yield
        finally:
            _setns(current.fileno())


def create(name: str) -> bool:
    """Create namespace ``name`` (lo up) unless it exists; True when created. Uses ``ip netns add``."""
    if exists(name):
        return False
    import subprocess

    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True, capture_output=True)
    return True


def delete(name: str) -> None:
    import subprocess

    subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


def read_sysctl(netns: str | None, key: str) -> str:
    with entered(netns):
        return Path("/proc/sys", *key.split(".")).read_text().strip()


def write_sysctl(netns: str | None, key: str, value: str) -> bool:
    """Set ``key`` (dotted, e.g. ``net.ipv4.ip_forward``) in ``netns``; False when it already had ``value``."""
    path_parts = key.split(".")
    with entered(netns):
        path = Path("/proc/sys", *path_parts)
        if path.read_text().strip() == value:
            return False
        path.write_text(value)
        return True
