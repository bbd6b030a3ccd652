"""TCP sockets that live in a VRF, for BGP sessions with the host (host sessions are per VRF).

With the ``netns`` VRF backend a VRF is a network namespace: the socket is created inside it, on a
short-lived thread that enters the namespace (``setns`` changes the calling thread only, and a socket keeps
the namespace it was created in), so the caller's thread never leaves its own namespace. With the
``device`` backend the socket is created in the router namespace and bound to the VRF device
(``SO_BINDTODEVICE``): connects then route, and listeners accept, through the VRF's table only.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

from dataplane import netns
from dataplane.layout import Layout
from evpn.config import VrfBackend

SocketFactory = Callable[[str | None, int], socket.socket]
"""``factory(vrf, family)``: a new unconnected TCP socket of ``family`` (AF_INET/AF_INET6) in ``vrf``."""


def socket_in_namespace(name: str | None, family: int) -> socket.socket:
    """A new TCP socket created in namespace ``name`` (None: this thread's own), from a helper thread."""
    if name is None:
        return socket.socket(family, socket.SOCK_STREAM)
    made: list[socket.socket] = []
    failed: list[BaseException] = []

    def create() -> None:
        try:
            with netns.entered(name):
                made.append(socket.socket(family, socket.SOCK_STREAM))
        except BaseException as exc:  # handed to the caller's thread
            failed.append(exc)

    worker = threading.Thread(target=create, name=f"socket-in-{name}", daemon=True)
    worker.start()
    worker.join()
    if failed:
        raise failed[0]
    return made[0]


def vrf_socket_factory(layout: Layout) -> SocketFactory:
    """The :data:`SocketFactory` of ``layout``: ``vrf`` None is the default VRF (the router namespace); an
    unknown VRF raises ``LookupError``."""
    router = layout.namespaces.router
    device = layout.config.vrf_backend is VrfBackend.DEVICE
    places = {l3.vrf: layout.vrf_netns(l3) for l3 in layout.config.l3vnis}

    def factory(vrf: str | None, family: int) -> socket.socket:
        if family not in (socket.AF_INET, socket.AF_INET6):
            raise ValueError(f"address family {family} is not AF_INET or AF_INET6")
        if vrf is None:
            return socket_in_namespace(router, family)
        if vrf not in places:
            raise LookupError(f"VRF {vrf!r} is not configured")
        if not device:
            return socket_in_namespace(places[vrf], family)
        sock = socket_in_namespace(router, family)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, vrf.encode())
        except BaseException:
            sock.close()
            raise
        return sock

    return factory
