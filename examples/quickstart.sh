#!/usr/bin/env bash
# Sets everything up on a fresh machine, then runs the main job:
#   1. examples/two-leaf: a spine (FRR route reflector), leaf1 running evpn-speaker and leaf2 running FRR 8.4
#      in network namespaces, the seed's L2VNI 110 (gateway 192.170.1.1/24, VRF red / L3VNI 100) with hosts
#      192.170.1.3 and 192.170.1.30: BGP and EVPN state side by side, pings, a live migration of .30 (MAC
#      mobility sequence 1 on both routers), then everything removed;
#   2. a short decode of a BGP capture recorded from a real FRR 8.4 (L2VNI 110) with our own codec.
# Exit code: non-zero when a check of the demo failed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh
echo
echo "== examples/two-leaf"
examples/two-leaf
capture=examples/captures/frr-l2vni-110.pcapng
echo
echo "== evpn-speaker decode --pcap $capture"
.venv/bin/evpn-speaker decode --pcap "$capture"
