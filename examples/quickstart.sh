#!/usr/bin/env bash
# Sets everything up on a fresh machine, then runs the main job: decode the EVPN routes of a BGP
# capture recorded from a real FRR 8.4 (L2VNI 110) with evpn-speaker's own codec, as text and as JSON.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh
capture=examples/captures/frr-l2vni-110.pcapng
echo "== evpn-speaker decode --pcap $capture"
.venv/bin/evpn-speaker decode --pcap "$capture"
echo
echo "== evpn-speaker decode --pcap $capture --json"
.venv/bin/evpn-speaker decode --pcap "$capture" --json
