"""Sockets in a VRF: a listener made for VRF red is reachable from red's namespace only."""

from __future__ import annotations

import dataclasses
import errno
import os
import socket
import subprocess
import sys

import pytest

from dataplane.layout import Layout, Namespaces
from dataplane.plumbing import Plumbing
from dataplane.vrf_socket import vrf_socket_factory
from evpn.config import VrfBackend
from tests.dataplane.conftest import LeafFactory, leaf_config, red, red_with_session

CONNECT = "import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close()"


def connect_from(ns: str, address: str, port: int) -> int:
    """Connect from a new process in namespace ``ns``; 0 when accepted, else the process's exit code."""
    result = subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-c", CONNECT, address, str(port)],
        check=False,
        capture_output=True,
        text=True,
    )
    return 0 if result.returncode == 0 else (1 if "refused" in result.stderr else 2)


def listener(sock: socket.socket, address: str) -> int:
    sock.bind((address, 0))
    sock.listen(4)
    return int(sock.getsockname()[1])


def own_namespace() -> str:
    return os.readlink("/proc/thread-self/ns/net")


@pytest.mark.parametrize("family, loopback", [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")])
def test_netns_backend_listener_lives_in_the_vrf_namespace(
    make_leaf: LeafFactory, family: int, loopback: str
) -> None:
    leaf = make_leaf(f"vs{int(family)}", leaf_config(1, l2=(), l3=(red_with_session(1),)))
    Plumbing(leaf.layout).apply()
    vrf_ns = leaf.layout.namespaces.vrf("red")
    factory = vrf_socket_factory(leaf.layout)
    before = own_namespace()
    in_red, in_router = factory("red", family), factory(None, family)
    assert own_namespace() == before  # the calling thread never left its namespace
    try:
        assert in_red.family == family and in_red.type == socket.SOCK_STREAM
        port = listener(in_red, loopback)
        assert connect_from(vrf_ns, loopback, port) == 0
        assert connect_from(leaf.router, loopback, port) == 1  # nothing listens there: refused
        conn, _ = in_red.accept()
        conn.close()
        # the VRF's address on pe-100 is reachable from the host over the host session's veth
        session = "192.169.10.1" if family == socket.AF_INET else "2001:db8:10::1"
        in_red.close()
        in_red = factory("red", family)
        port = listener(in_red, session)
        assert connect_from(leaf.host, session, port) == 0
        # the router namespace (the default VRF) is a different one
        port = listener(in_router, loopback)
        assert connect_from(leaf.router, loopback, port) == 0
        assert connect_from(vrf_ns, loopback, port) == 1
    finally:
        in_red.close()
        in_router.close()


def test_device_backend_binds_to_the_vrf_device(make_leaf: LeafFactory) -> None:
    """No VRF device on this kernel: a bridge named like the VRF stands in for SO_BINDTODEVICE."""
    leaf = make_leaf("vsd", leaf_config(1, l2=(), l3=(red(1),)))
    subprocess.run(["ip", "-n", leaf.router, "link", "add", "red", "type", "bridge"], check=True)
    config = dataclasses.replace(leaf.layout.config, vrf_backend=VrfBackend.DEVICE)
    factory = vrf_socket_factory(Layout(config, Namespaces(leaf.router, leaf.host)))
    sock = factory("red", socket.AF_INET)
    try:
        bound = sock.getsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, 16)
        assert bound.rstrip(b"\0") == b"red"
    finally:
        sock.close()
    with pytest.raises(LookupError, match="blue"):
        factory("blue", socket.AF_INET)
    with pytest.raises(ValueError, match="family"):
        factory("red", socket.AF_UNIX)


def test_missing_vrf_namespace_is_an_error_in_the_callers_thread(make_leaf: LeafFactory) -> None:
    leaf = make_leaf("vsm", leaf_config(1, l2=(), l3=(red(1),)))  # no plumbing: the namespace is absent
    factory = vrf_socket_factory(leaf.layout)
    with pytest.raises(FileNotFoundError) as raised:
        factory("red", socket.AF_INET)
    assert raised.value.errno == errno.ENOENT
