"""Typed errors of the dataplane: each says what is wrong and how to fix it."""

from __future__ import annotations


class DataplaneError(Exception):
    """Base class of every dataplane error."""


class PlumbingError(DataplaneError):
    """The devices of the configuration cannot be created (a name taken by a foreign device, a missing bridge)."""


class VrfUnsupportedError(PlumbingError):
    """``vrf_backend: device`` on a kernel built without VRF devices."""

    MESSAGE = "kernel has no VRF support (CONFIG_NET_VRF); use vrf_backend: netns"

    def __init__(self) -> None:
        super().__init__(self.MESSAGE)
