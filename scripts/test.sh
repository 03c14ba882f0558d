#!/usr/bin/env bash
# Set up (venv, torch, bench-core with test extras, Debian packages the tests need) and run the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh all,test
# Debian's chromium renders the HTML report in tests/test_report.py (runs as root on CI machines)
if ! command -v chromium >/dev/null; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq && $sudo apt-get install -y -qq chromium >/dev/null
fi
. .venv/bin/activate
set +e
python -m pytest "$@"
rc=$?
set -e
[ "$rc" -eq 5 ] && { echo "no tests collected" >&2; exit 1; }
exit "$rc"
