#!/usr/bin/env bash
# Sets everything up, then runs the whole test suite: linters, type checks, unit, property, contract,
# dataplane (namespaces, needs root) and interop tests against real FRR, GoBGP and tshark.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh
.venv/bin/ruff check evpn speaker dataplane tests benchmarks examples
.venv/bin/mypy
exec .venv/bin/pytest -p no:cacheprovider -q -ra "$@"
