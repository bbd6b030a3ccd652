"""Kernel neighbour/FDB/link messages -> local-learning events, for the devices of one namespace (no I/O).

Local means: on the router-side bridge of an L2VNI, not ``extern_learn`` (those are ours, installed for
remote MACs), not on a VXLAN port, not the bridge's own permanent addresses. Events are reported on change
only (a neighbour going REACHABLE -> STALE -> REACHABLE is not news). A remote MAC that becomes local (a VM
moved here and sent its first frame) takes the IPs our remote neighbours gave it along, as zebra assumes,
so the VM's MAC+IP is reported from its first GARP even though the kernel ignores that GARP for the
``NOARP`` neighbour we installed.
"""

from __future__ import annotations

import ipaddress

from dataplane import rtnl
from dataplane.interface import LinkChanged, LocalEvent
from evpn.events import LocalMacAged, LocalMacLearned, LocalNeighLearned, LocalNeighRemoved
from evpn.mac import MacAddress

_VALID = (
    rtnl.NUD_REACHABLE
    | rtnl.NUD_STALE
    | rtnl.NUD_DELAY
    | rtnl.NUD_PROBE
    | rtnl.NUD_PERMANENT
    | rtnl.NUD_NOARP
)


class EventTranslator:
    """``svi_vni``: router-side bridge name -> L2VNI; ``watched``: device name -> VNI for link up/down."""

    def __init__(self, svi_vni: dict[str, int], watched: dict[str, int]) -> None:
        self._svi_vni = dict(svi_vni)
        self._watched = dict(watched)
        self._links: dict[int, rtnl.Link] = {}
        self._link_up: dict[int, bool] = {}
        self._macs: dict[tuple[int, bytes], int] = {}
        self._local_vnis: dict[bytes, int] = {}
        """MAC -> in how many VNIs it is local: :meth:`concerns` answers without a table scan."""
        self._neighs: dict[tuple[int, rtnl.IPAddress], bytes] = {}
        self._stale: dict[tuple[int, rtnl.IPAddress], int] = {}
        self._remote_ips: dict[tuple[int, bytes], set[rtnl.IPAddress]] = {}
        self._seen: tuple[set[tuple[int, bytes]], set[tuple[int, rtnl.IPAddress]]] | None = None

    def begin_sync(self) -> None:
        """A full dump follows (start-up, or after the kernel dropped notifications: ENOBUFS)."""
        self._seen = (set(), set())

    def end_sync(self) -> list[LocalEvent]:
        """The dump is over: whatever was reported before and is not in it anymore is gone."""
        if self._seen is None:
            return []
        macs, neighs = self._seen
        self._seen = None
        out: list[LocalEvent] = []
        for vni, mac in sorted(set(self._macs) - macs):
            self._forget_mac((vni, mac))
            out.append(LocalMacAged(vni, MacAddress(mac)))
        for vni, ip in sorted(set(self._neighs) - neighs, key=str):
            del self._neighs[(vni, ip)]
            self._stale.pop((vni, ip), None)
            out.append(LocalNeighRemoved(vni, ip))
        return out

    def stale(self) -> list[tuple[int, rtnl.IPAddress]]:
        """(SVI ifindex, IP) of every local neighbour last seen STALE."""
        return [(ifindex, ip) for (_, ip), ifindex in self._stale.items()]

    def concerns(self, ext_learned_fdb_mac: bytes) -> bool:
        """Whether a bridge FDB message flagged ``extern_learn`` for this MAC may mean news: only if the MAC
        is local in some VNI (it moved away). Our own remote entries for other MACs, most of a route burst,
        need not be decoded (see :func:`dataplane.rtnl.ext_learned_fdb_mac`)."""
        return ext_learned_fdb_mac in self._local_vnis

    def feed(self, msg: rtnl.Decoded) -> list[LocalEvent]:
        """The local-learning events one kernel message means (often none)."""
        out: list[LocalEvent] = []
        if isinstance(msg, rtnl.Link):
            self._link(msg, out)
        elif isinstance(msg, rtnl.Neigh):
            if msg.family == rtnl.AF_BRIDGE:
                self._fdb(msg, out)
            else:
                self._neigh(msg, out)
        return out

    def _link(self, link: rtnl.Link, out: list[LocalEvent]) -> None:
        if link.deleted:
            self._links.pop(link.index, None)
            self._link_up.pop(link.index, None)
            return
        self._links[link.index] = link
        vni = self._watched.get(link.name)
        if vni is None:
            return
        before = self._link_up.get(link.index)
        self._link_up[link.index] = link.up
        if before is not None and before != link.up:
            out.append(LinkChanged(link.name, vni, link.up))

    def _bridge_vni(self, index: int | None) -> int | None:
        link = self._links.get(index) if index is not None else None
        return self._svi_vni.get(link.name) if link is not None else None

    def _fdb(self, msg: rtnl.Neigh, out: list[LocalEvent]) -> None:
        if msg.lladdr is None or len(msg.lladdr) != 6 or msg.lladdr[0] & 1:
            return
        port = self._links.get(msg.ifindex)
        master = msg.master if msg.master is not None else (port.master if port is not None else None)
        vni = self._bridge_vni(master)
        if vni is None or msg.ifindex == master or msg.dst is not None:
            return
        key = (vni, msg.lladdr)
        local = (
            not msg.deleted
            and not msg.flags & rtnl.NTF_EXT_LEARNED
            and not msg.state & rtnl.NUD_PERMANENT
            and port is not None
            and port.kind != "vxlan"
        )
        if local:
            if self._seen is not None:
                self._seen[0].add(key)
                self._seen[1].update((vni, ip) for ip in self._remote_ips.get(key, ()))
            if self._macs.get(key) != msg.ifindex:
                if key not in self._macs:
                    self._local_vnis[msg.lladdr] = self._local_vnis.get(msg.lladdr, 0) + 1
                self._macs[key] = msg.ifindex
                out.append(LocalMacLearned(vni, MacAddress(msg.lladdr)))
                # a remote MAC became local (a VM moved here): its IPs moved with it, as zebra assumes
                for ip in sorted(self._remote_ips.get(key, ()), key=str):
                    if self._neighs.get((vni, ip)) != msg.lladdr:
                        self._neighs[(vni, ip)] = msg.lladdr
                        out.append(LocalNeighLearned(vni, ip, MacAddress(msg.lladdr)))
        elif key in self._macs and (
            msg.deleted or self._macs[key] == msg.ifindex or port is None or port.kind == "vxlan"
        ):
            self._forget_mac(key)
            out.append(LocalMacAged(vni, MacAddress(msg.lladdr)))

    def _forget_mac(self, key: tuple[int, bytes]) -> None:
        del self._macs[key]
        mac = key[1]
        if self._local_vnis[mac] == 1:
            del self._local_vnis[mac]
        else:
            self._local_vnis[mac] -= 1

    def _neigh(self, msg: rtnl.Neigh, out: list[LocalEvent]) -> None:
        """A host's IP-to-MAC binding on an SVI. Link-local and multicast groups (``224.0.0.22`` ->
        ``01:00:5e:00:00:16``, NOARP entries the kernel makes itself) are no hosts: not advertised."""
        if msg.dst is None or msg.dst.is_multicast:
            return
        if isinstance(msg.dst, ipaddress.IPv6Address) and msg.dst.is_link_local:
            return
        if msg.lladdr is not None and msg.lladdr[:1] and msg.lladdr[0] & 1:
            return
        vni = self._bridge_vni(msg.ifindex)
        if vni is None:
            return
        if msg.flags & rtnl.NTF_EXT_LEARNED:  # ours (remote): remember which IPs a remote MAC carries
            if msg.lladdr is not None:
                ips = self._remote_ips.setdefault((vni, msg.lladdr), set())
                if msg.deleted:
                    ips.discard(msg.dst)
                    if not ips:
                        del self._remote_ips[(vni, msg.lladdr)]
                else:
                    ips.add(msg.dst)
            return
        key = (vni, msg.dst)
        if not msg.deleted and msg.state & _VALID and msg.lladdr is not None and len(msg.lladdr) == 6:
            if self._seen is not None:
                self._seen[1].add(key)
            if msg.state & rtnl.NUD_STALE:
                self._stale[key] = msg.ifindex
            else:
                self._stale.pop(key, None)
            if self._neighs.get(key) != msg.lladdr:
                self._neighs[key] = msg.lladdr
                out.append(LocalNeighLearned(vni, msg.dst, MacAddress(msg.lladdr)))
        elif msg.deleted or msg.state & (rtnl.NUD_FAILED | rtnl.NUD_INCOMPLETE):
            self._stale.pop(key, None)
            if self._neighs.pop(key, None) is not None:
                out.append(LocalNeighRemoved(vni, msg.dst))
