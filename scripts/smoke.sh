#!/usr/bin/env bash
# Set up (venv, torch, bench-core) and run the smoke suite; prints the leaderboard.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh all
. .venv/bin/activate
bench run suites/smoke.toml "$@"
