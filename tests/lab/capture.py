"""Packet captures (dumpcap) and tshark as an independent BGP decoder.

How tshark 4.0 presents BGP EVPN in ``-T json`` (checked on 4.0.17 against hand-built UPDATEs)
------------------------------------------------------------------------------------------------
Every value is a *string*: numbers in decimal (``"110"``), type/subtype/flags in hex (``"0x06"``),
addresses as text, MACs as ``aa:bb:cc:00:00:01``, byte fields as colon hex. Plain ``-T json`` repeats
keys (a JSON parser keeps only the last), so :func:`tshark_bgp_json` passes ``--no-duplicate-keys``:
a repeated key becomes a list, hence any node may be a dict *or* a list (use :func:`as_list`).

Message: ``bgp.type`` (``"2"`` UPDATE), ``bgp.length``, ``bgp.update.path_attributes`` →
``bgp.update.path_attribute`` (one per attribute, ``bgp.update.path_attribute.type_code``).
MP_REACH (14): ``bgp.update.path_attribute.mp_reach_nlri.afi`` ``"25"``, ``...safi`` ``"70"``,
``...mp_reach_nlri.next_hop`` (length-prefixed bytes ``"04:0a:00:00:01"``) and
``...next_hop_tree`` → ``bgp.update.path_attribute.mp_reach_nlri.next_hop.ipv4``; the NLRIs are under
``bgp.update.path_attribute.mp_reach_nlri`` → ``bgp.evpn.nlri``. MP_UNREACH (15): the same under
``bgp.update.path_attribute.mp_unreach_nlri``. A frame holding several BGP messages gives a list.

EVPN NLRI (all ``bgp.evpn.nlri.*``): ``rt`` = *route type* (not route target), ``len``,
``rd`` = the 8 raw bytes ``"00:01:0a:ff:00:01:00:02"`` (type 1 = 10.255.0.1:2, see
:func:`rd_bytes_to_str`), ``esi`` = 10 bytes plus ``esi_tree`` {``esi.type``, ``esi.value`` (9 bytes),
``esi.type0`` | ``esi.lacp_mac``/``esi.lacp_portkey`` | ``esi.root_bridge``/``esi.rb_prio`` |
``esi.system_mac``/``esi.system_mac_discr`` | ``esi.router_id``/``esi.router_discr`` |
``esi.asn``/``esi.asn_discr``, and ``esi.remaining`` for trailing bytes}, ``etag``. Careful: for ESI
type 3 tshark shows a 2-byte ``esi.system_mac_discr`` and puts the 3rd discriminator byte in
``esi.remaining``; compare the whole ``esi`` bytes instead.

- type 1: ``rd esi etag mpls_ls1``
- type 2: ``rd esi etag maclen("48") mac_addr iplen("0"|"32"|"128") ip.addr|ipv6.addr mpls_ls1
  [mpls_ls2]``; without IP there is no address key but an expert node ``"IP Address: NOT INCLUDED"``.
- type 3: ``rd etag iplen ip.addr|ipv6.addr`` (originator)
- type 4: ``rd esi iplen ip.addr|ipv6.addr``
- type 5: ``rd esi etag prefix_len ip.addr + ipv4.gtw_addr`` (or ``ipv6.addr + ipv6.gtw_addr``) and
  ``bgp.update.path_attribute.mpls_label`` → ``bgp.update.path_attribute.mpls_label_value``.

Labels: ``mpls_ls1``/``mpls_ls2`` (types 1, 2) are 20-bit MPLS labels = 24-bit field >> 4, so VNI 110
(``00 00 6e``) shows as ``"6"``; the type-5 ``mpls_label_value`` is the full 24 bits (``"110"``).
Compare VNIs with :func:`evpn_labels` (needs ``raw=True``), which reads the bytes.

Extended communities (16): ``bgp.ext_communities`` → ``bgp.ext_community``, each with
``bgp.ext_com.type`` and a subtype key named after the type (see :func:`ext_community_kind`):

- RT AS2 (0x00/0x02): ``bgp.ext_com.stype_tr_as2`` ``"0x02"``, ``bgp.ext_com.value_as2``,
  ``bgp.ext_com.value_an4``; RT IPv4 (0x01/0x02): ``stype_tr_IP4``, ``value_IP4``, ``value_an2``;
  RT AS4 (0x02/0x02): ``stype_tr_as4``, ``value_as4``, ``value_an2``.
- Encapsulation (0x03/0x0c): ``bgp.ext_com.stype_tr_opaque`` ``"0x0c"``, ``bgp.ext_com.tunnel_type`` ``"8"``.
- Default gateway (0x03/0x0d): ``stype_tr_opaque`` ``"0x0d"`` only (no value field).
- MAC mobility (0x06/0x00): ``bgp.ext_com.stype_tr_evpn`` ``"0x00"``, ``bgp.ext_com_evpn.mmac.flags``
  ``"0x01"`` (sticky; also ``...mmac.flags_tree`` → ``bgp.ext_com_evpn.mmac.flags.sticky``),
  ``bgp.ext_com_evpn.mmac.seq``.
- ESI label (0x06/0x01): ``bgp.ext_com_l2.esi_label_flag`` (single-active),
  ``bgp.update.path_attribute.mpls_label_value`` (24 bits) and ``..._20bits``, ``mpls_traffic_class``,
  ``mpls_bottom_stack``.
- ES-Import RT (0x06/0x02): ``bgp.ext_com_evpn.esi.rt`` (a MAC).
- Router's MAC (0x06/0x03): ``bgp.ext_com_evpn.esi.router_mac``.
- ND (0x06/0x08): ``stype_tr_evpn`` ``"0x08"`` only (flags not decoded).

PMSI tunnel (22): ``bgp.update.path_attribute.pmsi.tunnel.flags``, ``...pmsi.tunnel.type`` (``"6"``),
``bgp.update.path_attribute.pmsi.tunnel.id`` → ``bgp.update.path_attribute.pmsi.ingress_rep_ip``. The
label is ``bgp.evpn.nlri.vni`` (24 bits, ``"110"``) *only when the same UPDATE carries the VXLAN
Encapsulation community* (tunnel type 8); otherwise it is
``bgp.update.path_attribute.mpls_label_value_20bits`` (``"6"`` for VNI 110).

With ``raw=True`` (``-x``) every field ``F`` also has ``F_raw`` = ``[hex, offset, length, bitmask,
type]``; for bit-masked fields (``mpls_ls1_raw``) ``hex`` is the masked *value* (``"6"``), not bytes.
Each NLRI's wire bytes are in ``bgp.evpn.nlri_raw``, next to ``bgp.evpn.nlri`` (see
:func:`evpn_nlris_raw`).

Example: a type-2 MAC/IP route (RD 10.0.0.1:3, MAC+IPv4, L2VNI 110, L3VNI 100) as
``evpn_nlris(message)[0]`` (``esi_tree`` shortened), and its extended communities::

    {"bgp.evpn.nlri.rt": "2", "bgp.evpn.nlri.len": "40",
     "bgp.evpn.nlri.rd": "00:01:0a:00:00:01:00:03",
     "bgp.evpn.nlri.esi": "00:00:00:00:00:00:00:00:00:00",
     "bgp.evpn.nlri.esi_tree": {"bgp.evpn.nlri.esi.type": "0", ...},
     "bgp.evpn.nlri.etag": "0", "bgp.evpn.nlri.maclen": "48",
     "bgp.evpn.nlri.mac_addr": "aa:bb:cc:00:00:09", "bgp.evpn.nlri.iplen": "32",
     "bgp.evpn.nlri.ip.addr": "10.1.1.9",
     "bgp.evpn.nlri.mpls_ls1": "6", "bgp.evpn.nlri.mpls_ls2": "6"}      # 110 >> 4, 100 >> 4
    ext_communities(message) == [
     {"bgp.ext_com.type": "0x00", "bgp.ext_com.type_tree": {...},
      "bgp.ext_com.stype_tr_as2": "0x02", "bgp.ext_com.value_as2": "64512", "bgp.ext_com.value_an4": "110"},
     {"bgp.ext_com.type": "0x03", ..., "bgp.ext_com.stype_tr_opaque": "0x0c", "bgp.ext_com.tunnel_type": "8"},
     {"bgp.ext_com.type": "0x06", ..., "bgp.ext_com.stype_tr_evpn": "0x03",
      "bgp.ext_com_evpn.esi.router_mac": "00:f3:00:00:00:65"}]
    evpn_labels(*evpn_nlris_raw(message)[0]) == [110, 100]              # with raw=True
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from tests.lab.netns import LabError, Namespace, run, stop_popen, tail_file, wait_for

BGP_PORT = 179

# Why stopping dumpcap needs care (this made the lab smoke test lose GoBGP's last UPDATE now and then):
# dumpcap opens its interfaces with a 250 ms read timeout (CAP_READ_TIMEOUT). On Linux, libpcap uses a
# TPACKET_V3 ring, and that timeout is the ring's block-retire timeout: a captured packet sits in a half
# full block, invisible to dumpcap, until the block fills or the kernel retires it (up to 250 ms later).
# On SIGINT dumpcap stops reading and closes the file *without* draining the ring, so packets of the last
# ~250 ms are silently missing (its "Packets captured" does not count them either). Capture.stop()
# therefore sends a barrier frame out of every captured interface and waits until dumpcap has written it:
# the ring is FIFO, so everything captured before the barrier is then in the file too.
DUMPCAP_READ_TIMEOUT = 0.25
#: Barrier frames: IEEE 802 local experimental EtherType, to a reserved link-local group address (Linux
#: bridges never forward 01:80:c2:00:00:0x), so they stay on the captured link. Not IP: tshark's ``bgp``
#: and ``tcp``/``ip`` display filters never show them.
BARRIER_ETHERTYPE = 0x88B5
BARRIER_DST = bytes.fromhex("0180c200000f")
BARRIER_MAGIC = b"evpn-lab capture barrier "


def tshark_available() -> bool:
    """True if dumpcap and tshark are installed."""
    return shutil.which("dumpcap") is not None and shutil.which("tshark") is not None


class Capture:
    """``dumpcap`` on one or more interfaces of ``ns`` writing pcapng to ``path``."""

    def __init__(
        self, ns: Namespace, ifaces: Sequence[str], path: Path, bpf_filter: str = "tcp port 179"
    ) -> None:
        self.ns = ns
        self.ifaces = list(ifaces)
        self.path = path
        self.bpf_filter = bpf_filter
        self.log_path = path.with_suffix(".dumpcap.log")
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._barrier = False  # every interface is Ethernet and the filter lets barrier frames through

    def __repr__(self) -> str:
        return f"Capture({self.ns.name!r}, {self.ifaces!r}, {str(self.path)!r})"

    @property
    def running(self) -> bool:
        """True while dumpcap runs."""
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 10.0) -> Capture:
        """Start dumpcap and wait until it is capturing (so no early packet is missed)."""
        if self.proc is not None:
            raise LabError(f"{self!r} already started")
        self._barrier = self._ethernet_only()
        bpf_filter = self.bpf_filter
        if self._barrier and bpf_filter.strip():
            bpf_filter = f"({bpf_filter}) or (ether proto {BARRIER_ETHERTYPE:#06x})"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        cmd = ["dumpcap", "-q", "-f", bpf_filter, "-w", str(self.path)]
        for iface in self.ifaces:
            cmd += ["-i", iface]
        self.proc = self.ns.popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

        def capturing() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise LabError(f"dumpcap exited with rc={self.proc.returncode}: {self.logs()}")
            return "Capturing on" in self.log_path.read_text(errors="replace") and self.path.exists()

        try:
            wait_for(capturing, timeout, interval=0.02, what=f"dumpcap on {self.ifaces}", details=self.logs)
        except BaseException:
            self.stop(settle=0, drain=False)
            raise
        return self

    def stop(
        self, settle: float = 0.2, timeout: float = 5.0, *, drain: bool = True, drain_timeout: float = 10.0
    ) -> None:
        """Let in-flight packets arrive (``settle`` s), then SIGINT dumpcap so it flushes and closes.

        With ``drain`` (the default) every packet captured before the call is in the file afterwards:
        a barrier frame goes out of each interface and dumpcap is stopped only once it has written them
        all (see the note at ``DUMPCAP_READ_TIMEOUT``). If no barrier can be sent (interface gone, down
        or not Ethernet), wait out dumpcap's ring timeout instead. Raises :class:`LabError` if a barrier
        sent does not reach the file within ``drain_timeout`` s (the capture could miss packets).
        """
        if self.proc is not None and self.proc.poll() is None:
            if settle:
                time.sleep(settle)
            drain_error: str | None = None
            if drain:
                try:
                    if not self._drain(drain_timeout):
                        time.sleep(4 * DUMPCAP_READ_TIMEOUT)  # no barrier: outlast the ring's block timeout
                except TimeoutError as exc:
                    drain_error = str(exc)
            stop_popen(self.proc, sig=signal.SIGINT, timeout=timeout)
            if self.proc.returncode not in (0, -signal.SIGINT):
                raise LabError(f"dumpcap exited with rc={self.proc.returncode}: {self.logs()}")
            if drain_error is not None:
                raise LabError(f"{drain_error}; packets may be missing from {self.path}: {self.logs()}")
        if self._log is not None:
            self._log.close()
            self._log = None

    def _ethernet_only(self) -> bool:
        """True if every captured interface exists in the namespace and is an Ethernet device."""
        try:
            for iface in self.ifaces:
                info = self.ns.ip_json("link", "show", "dev", iface)
                if not info or info[0].get("link_type") != "ether":
                    return False
        except (LabError, OSError, subprocess.SubprocessError, ValueError):
            return False
        return True

    def _drain(self, timeout: float) -> bool:
        """Send a barrier frame out of every interface and wait until dumpcap has written them all.

        False if a barrier could not be sent (then nothing was waited for); TimeoutError if dumpcap did
        not write them within ``timeout`` s.
        """
        if not self._barrier:
            return False
        nonces = {iface: os.urandom(16) for iface in self.ifaces}
        try:
            with self.ns.enter():
                sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM)
            with sock:
                for iface, nonce in nonces.items():
                    payload = (BARRIER_MAGIC + nonce).ljust(46, b"\0")  # minimum Ethernet payload
                    sock.sendto(payload, (iface, BARRIER_ETHERTYPE, 0, 0, BARRIER_DST))
        except OSError:
            return False

        def written() -> bool:
            if self.proc is None or self.proc.poll() is not None:
                return True  # dumpcap died: stop() reports its exit status
            data = self.path.read_bytes()
            return all(nonce in data for nonce in nonces.values())

        deadline = time.monotonic() + timeout
        while not written():
            if time.monotonic() > deadline:
                raise TimeoutError(f"dumpcap did not write its barrier frames on {self.ifaces} in {timeout}s")
            time.sleep(0.02)
        return True

    def logs(self) -> str:
        """dumpcap's own output (capture statistics after stop)."""
        return tail_file(self.log_path)

    def bgp_json(self, bgp_ports: Iterable[int] = (), *, raw: bool = False) -> list[dict[str, Any]]:
        """Stop the capture and return :func:`tshark_bgp_json` of its file."""
        self.stop()
        return tshark_bgp_json(self.path, bgp_ports, raw=raw)

    def bgp_messages(self, bgp_ports: Iterable[int] = (), *, raw: bool = False) -> list[dict[str, Any]]:
        """Stop the capture and return every BGP message in it (see :func:`bgp_messages`)."""
        return bgp_messages(self.bgp_json(bgp_ports, raw=raw))


# -------------------------------------------------------------------------------------------------------
# tshark


def tshark_bgp_json(
    path: Path | str,
    bgp_ports: Iterable[int] = (),
    *,
    raw: bool = False,
    display_filter: str = "bgp",
    extra_args: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """``tshark -r PATH -T json --no-duplicate-keys -Y bgp`` parsed: one dict per frame.

    ``bgp_ports`` adds ``-d tcp.port==N,bgp`` for non-standard ports. ``raw`` adds ``-x`` so every
    field also has a ``<field>_raw`` entry ``[hex, offset, length, bitmask, type]``.
    ``--no-duplicate-keys`` turns repeated keys into lists (plain ``-T json`` repeats keys, and a
    JSON parser keeps only the last one), so any field may be a value *or* a list: use :func:`as_list`.
    """
    cmd = ["tshark", "-n", "-r", str(path), "-T", "json", "--no-duplicate-keys", "-Y", display_filter]
    for port in bgp_ports:
        cmd += ["-d", f"tcp.port=={port},bgp"]
    if raw:
        cmd.append("-x")
    cmd += list(extra_args)
    out = run(cmd, timeout=120).stdout
    if not out.strip():
        return []
    packets: list[dict[str, Any]] = json.loads(out)
    return packets


def as_list(value: Any) -> list[Any]:
    """``value`` as a list: None -> [], list -> itself, anything else -> [value]."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def bgp_messages(packets: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every BGP message (``bgp`` layer dict) of tshark JSON frames, in wire order."""
    messages: list[dict[str, Any]] = []
    for packet in packets:
        layers = packet.get("_source", {}).get("layers", {})
        messages += as_list(layers.get("bgp"))
    return messages


def find_values(obj: Any, key: str) -> list[Any]:
    """All values stored under ``key`` anywhere in a tshark JSON tree (lists flattened), in order."""
    found: list[Any] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k == key and k.endswith("_raw"):  # [hex, offset, length, mask, type] or a list of them
                    found.extend(v if v and isinstance(v[0], list) else [v])
                elif k == key:
                    found.extend(as_list(v))
                else:
                    walk(v)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(obj)
    return found


def path_attributes(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``bgp.update.path_attribute`` dicts of an UPDATE message."""
    attrs = message.get("bgp.update.path_attributes", {})
    return as_list(attrs.get("bgp.update.path_attribute")) if isinstance(attrs, dict) else []


def path_attribute(message: dict[str, Any], type_code: int) -> dict[str, Any] | None:
    """The path attribute with ``type_code`` (14 MP_REACH, 15 MP_UNREACH, 16 ext communities, 22 PMSI)."""
    for attr in path_attributes(message):
        if attr.get("bgp.update.path_attribute.type_code") == str(type_code):
            return attr
    return None


def evpn_nlris(message: dict[str, Any], *, withdrawn: bool = False) -> list[dict[str, Any]]:
    """The ``bgp.evpn.nlri`` dicts of an UPDATE's MP_REACH_NLRI (or MP_UNREACH_NLRI if ``withdrawn``)."""
    attr = path_attribute(message, 15 if withdrawn else 14)
    return find_values(attr, "bgp.evpn.nlri") if attr is not None else []


def ext_communities(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``bgp.ext_community`` dicts of an UPDATE, in wire order."""
    attr = path_attribute(message, 16)
    return find_values(attr, "bgp.ext_community") if attr is not None else []


def ext_community_kind(community: dict[str, Any]) -> tuple[int, int]:
    """``(type, subtype)`` of a ``bgp.ext_community`` dict, e.g. ``(0x00, 0x02)`` for an AS2 route target."""
    ec_type = int(community["bgp.ext_com.type"], 16)
    for key, value in community.items():
        if key.startswith("bgp.ext_com.stype_") and not key.endswith("_raw"):
            return ec_type, int(value, 16)
    raise KeyError(f"no subtype in {community}")


def raw_bytes(node: dict[str, Any], field: str) -> bytes:
    """The bytes tshark prints in ``<field>_raw`` (needs ``raw=True``).

    Careful: for bit-masked fields (``bgp.evpn.nlri.mpls_ls1``) tshark prints the *masked value*, not
    the bytes; use :func:`evpn_labels` for labels.
    """
    raw = node.get(f"{field}_raw")
    if raw is None:
        raise KeyError(f"{field}_raw (run tshark with raw=True)")
    entry = raw[0] if isinstance(raw[0], list) else raw
    return bytes.fromhex(entry[0])


def evpn_nlris_raw(message: dict[str, Any], *, withdrawn: bool = False) -> list[tuple[dict[str, Any], bytes]]:
    """Each EVPN NLRI dict of an UPDATE paired with its wire bytes (type, length, value); needs ``raw=True``."""
    attr = path_attribute(message, 15 if withdrawn else 14)
    if attr is None:
        return []
    key = (
        "bgp.update.path_attribute.mp_unreach_nlri"
        if withdrawn
        else "bgp.update.path_attribute.mp_reach_nlri"
    )
    container = attr.get(key, {})
    nlris = as_list(container.get("bgp.evpn.nlri"))
    raws = container.get("bgp.evpn.nlri_raw")
    if raws is None:
        raise KeyError("bgp.evpn.nlri_raw (run tshark with raw=True)")
    raws = raws if isinstance(raws[0], list) else [raws]
    if len(raws) != len(nlris):
        raise LabError(f"{len(nlris)} NLRIs but {len(raws)} raw entries")
    return [(n, bytes.fromhex(r[0])) for n, r in zip(nlris, raws, strict=True)]


def evpn_labels(nlri: dict[str, Any], nlri_bytes: bytes) -> list[int]:
    """The full 24-bit label fields of an NLRI (for VXLAN: the VNIs), read from its wire bytes.

    tshark's own values are 20-bit MPLS labels for type 1/2 (``mpls_ls1``/``mpls_ls2``: VNI 110 shows
    as 6) but 24-bit for type 5 (``mpls_label_value``); the ``_raw`` offsets locate the bytes.
    """
    base = int(nlri["bgp.evpn.nlri.rt_raw"][1])
    entries = [nlri[k] for k in ("bgp.evpn.nlri.mpls_ls1_raw", "bgp.evpn.nlri.mpls_ls2_raw") if k in nlri]
    entries += find_values(nlri, "bgp.update.path_attribute.mpls_label_value_raw")
    labels = []
    for entry in entries:
        off, length = int(entry[1]) - base, int(entry[2])
        labels.append(int.from_bytes(nlri_bytes[off : off + length], "big"))
    return labels


def rd_bytes_to_str(rd: str) -> str:
    """tshark's ``bgp.evpn.nlri.rd`` (8 hex bytes ``00:01:0a:ff:00:01:00:02``) as ``10.255.0.1:2``."""
    raw = bytes.fromhex(rd.replace(":", ""))
    rd_type = int.from_bytes(raw[:2], "big")
    if rd_type == 0:
        return f"{int.from_bytes(raw[2:4], 'big')}:{int.from_bytes(raw[4:], 'big')}"
    if rd_type == 1:
        return f"{'.'.join(str(b) for b in raw[2:6])}:{int.from_bytes(raw[6:], 'big')}"
    if rd_type == 2:
        return f"{int.from_bytes(raw[2:6], 'big')}:{int.from_bytes(raw[6:], 'big')}"
    raise ValueError(f"unknown RD type {rd_type}: {rd}")


# -------------------------------------------------------------------------------------------------------
# raw BGP bytes -> pcap -> tshark


def _segments(messages: Sequence[bytes | Sequence[bytes]], max_payload: int) -> Iterator[bytes]:
    for item in messages:
        payload = bytes(item) if isinstance(item, (bytes, bytearray, memoryview)) else b"".join(item)
        for off in range(0, len(payload), max_payload):
            yield payload[off : off + max_payload]


def write_bgp_pcap(
    path: Path | str,
    messages: Sequence[bytes | Sequence[bytes]],
    *,
    src: str = "192.0.2.1",
    dst: str = "192.0.2.2",
    sport: int = 50179,
    dport: int = BGP_PORT,
    max_payload: int = 16000,
) -> None:
    """Write BGP messages as one TCP stream (Ether/IPv4/TCP, handshake first) into a pcap file.

    Each item of ``messages`` is one TCP segment: ``bytes`` is one message, a sequence of ``bytes``
    is several messages packed into the same segment. Sequence numbers are consistent, so tshark
    reassembles messages split over segments (payloads above ``max_payload`` are split).
    """
    import logging

    logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    mac_c, mac_s = "02:00:00:00:00:01", "02:00:00:00:00:02"
    isn_c, isn_s = 1_000_000, 2_000_000

    def c2s(flags: str, seq: int, ack: int, payload: bytes = b"") -> Any:
        pkt = Ether(src=mac_c, dst=mac_s) / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags=flags)
        pkt[TCP].seq, pkt[TCP].ack = seq, ack
        return pkt / payload if payload else pkt

    syn_ack = (
        Ether(src=mac_s, dst=mac_c)
        / IP(src=dst, dst=src)
        / TCP(sport=dport, dport=sport, flags="SA", seq=isn_s, ack=isn_c + 1)
    )
    packets = [c2s("S", isn_c, 0), syn_ack, c2s("A", isn_c + 1, isn_s + 1)]
    seq = isn_c + 1
    for payload in _segments(messages, max_payload):
        packets.append(c2s("PA", seq, isn_s + 1, payload))
        seq += len(payload)
    for i, pkt in enumerate(packets):
        pkt.time = 1_700_000_000 + i / 1000
    wrpcap(str(path), packets)


def tshark_decode_bytes(
    messages: Sequence[bytes | Sequence[bytes]], *, raw: bool = False
) -> list[dict[str, Any]]:
    """Decode raw BGP messages with tshark: one ``bgp`` dict per BGP message, in order.

    Items of ``messages`` are TCP segments as in :func:`write_bgp_pcap`.
    """
    with tempfile.TemporaryDirectory(prefix="evlab-tshark-") as tmp:
        pcap = Path(tmp) / "bgp.pcap"
        write_bgp_pcap(pcap, messages)
        return bgp_messages(tshark_bgp_json(pcap, raw=raw))
