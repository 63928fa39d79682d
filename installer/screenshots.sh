#!/usr/bin/env bash
# Render every window of the app to PNG under Xvfb (a virtual X display), for people to look
# at: bash installer/screenshots.sh [OUTDIR]   (default: screenshots/). Needs xvfb-run (the
# Debian package xvfb; installer/install.sh --dev installs it) and a Korean font (fonts-nanum).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-screenshots}
PYTHON=${PYTHON:-python3}
unset QT_QPA_PLATFORM  # the real xcb platform on the virtual display
exec xvfb-run -a -s "-screen 0 1600x1000x24" "$PYTHON" tests/screenshots.py "$out"
