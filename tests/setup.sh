#!/usr/bin/env bash
# Sets up a fresh Debian machine for evpn-speaker: Debian packages (FRR, GoBGP, tshark, iproute2 ...),
# a virtual environment in .venv and the package with its test extras. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

debs=(frr gobgpd tshark iproute2 iputils-ping tcpdump arping nftables procps)
missing=()
for pkg in "${debs[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing Debian packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
"$python" -c 'import sys; assert sys.version_info >= (3, 11), "evpn-speaker needs Python >= 3.11"'
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]' 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -c 'import evpn, speaker, dataplane, exabgp, pyroute2, hypothesis, scapy' 
