#!/usr/bin/env bash
# Everything CI needs for the Windows installer, on a fresh Debian 12 machine (as root):
# the tools, the build, and the smoke test under wine. Prints how long each step took.
#
#   bash installer/windows/ci.sh
#
# Steps: (1) apt: wine (64-bit only: the installer is a 64-bit NSIS build, so no
# wine32:i386 and no i386 architecture are needed), nsis, mingw-w64, ffmpeg (the test WAV),
# 7zip (lists the installer's files), unzip; (2) installer/windows/build.sh (pinned win_amd64
# wheels from PyPI, cached in ~/.cache/callguard-win); (3) pytest
# tests/test_installer_windows.py with CALLGUARD_WINDOWS_SETUP set: a fresh wine prefix,
# silent install, the installed program's checks, uninstall.
# Needs python3 3.11 with pytest (bash installer/install.sh --dev) and ../shared beside the
# checkout (the test speech).
set -euo pipefail
cd "$(dirname "$0")/../.."
. installer/common.sh  # timer_start, apt_install_missing, ci_step_took, project_version
timer_start

apt_install_missing windows-ci wine wine64 nsis gcc-mingw-w64-x86-64 ffmpeg p7zip-full unzip
ci_step_took windows-ci "apt-get install (${missing:- nothing missing})"

bash installer/windows/build.sh
version=$(project_version python3)
export CALLGUARD_WINDOWS_SETUP=$PWD/dist/callguard-setup-$version.exe
echo "windows-ci: $CALLGUARD_WINDOWS_SETUP $(du -h "$CALLGUARD_WINDOWS_SETUP" | cut -f1)"
ci_step_took windows-ci "build (installer/windows/build.sh)"

python3 -m pytest -q -s -p no:cacheprovider tests/test_installer_windows.py
ci_step_took windows-ci "smoke test under wine (tests/test_installer_windows.py)"
ci_all_took windows-ci
