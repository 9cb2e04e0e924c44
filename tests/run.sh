#!/usr/bin/env bash
# The whole test suite on a fresh machine: venv, pinned packages, Debian's Chromium for the
# browser tests, then pytest. The README's second command and .ci/run both call this file.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
# Debian's Chromium for the browser tests, nginx for the replica set-up's tests.
if [ ! -x /usr/bin/chromium ] || ! command -v nginx >/dev/null; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium nginx-light >/dev/null
fi
# Two workers, each taking whole test modules (a module's server and browser are its own): the
# browser tests wait on the app and the page about a third of their time, so two workers on two
# cores finish in about two thirds of one worker's time (docs/BENCHMARKS.md, "The test suite's
# time"). Each test module's app server logs to test-artifacts/streamlit-<module>.log.
exec .venv/bin/python -m pytest -q -n 2 --dist loadfile "$@"
