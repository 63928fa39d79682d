#!/usr/bin/env bash
# Everything CI needs for the .deb, on a fresh Debian 12 machine (as root): the tools, the
# build, and the smoke test in a clean Debian 12 root. Prints how long each step took.
#
#   bash installer/debian/ci.sh
#
# Steps: (1) apt: debootstrap (the clean root), binutils (readelf: build.sh keeps the Qt
# libraries that are needed), ffmpeg (the test WAV), desktop-file-utils (validates the
# desktop entries); (2) installer/debian/build.sh (Debian 12's CPython 3.11 from the
# mirror, pinned manylinux wheels from PyPI, cached in ~/.cache/callguard-deb);
# (3) pytest tests/test_installer_debian.py with CALLGUARD_DEB set: debootstrap, apt-get
# install ./callguard_*.deb, the installed program's checks, remove and purge.
# Needs python3 3.11 with pytest (bash installer/install.sh --dev) and ../shared beside the
# checkout (the test speech).
set -euo pipefail
cd "$(dirname "$0")/../.."
. installer/common.sh  # timer_start, apt_install_missing, ci_step_took, project_version
timer_start

apt_install_missing debian-ci debootstrap binutils ffmpeg desktop-file-utils
ci_step_took debian-ci "apt-get install (${missing:- nothing missing})"

bash installer/debian/build.sh
version=$(project_version python3)
export CALLGUARD_DEB=$PWD/dist/callguard_${version}_amd64.deb
echo "debian-ci: $CALLGUARD_DEB $(du -h "$CALLGUARD_DEB" | cut -f1)"
ci_step_took debian-ci "build (installer/debian/build.sh)"

python3 -m pytest -q -s -p no:cacheprovider tests/test_installer_debian.py
ci_step_took debian-ci "smoke test in a clean Debian 12 root (tests/test_installer_debian.py)"
ci_all_took debian-ci
