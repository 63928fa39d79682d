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
t0=$(date +%s); tstep=$t0
took() { local now; now=$(date +%s); echo "debian-ci: $1 took $((now - tstep)) s"; tstep=$now; }

debs="debootstrap binutils ffmpeg desktop-file-utils"
missing=""
for deb in $debs; do
  dpkg-query -W -f='${Status}' "$deb" 2>/dev/null | grep -q "install ok installed" \
    || missing="$missing $deb"
done
if [ -n "$missing" ]; then
  apt-get update -q || echo "debian-ci: warning: apt-get update reported errors" >&2
  # shellcheck disable=SC2086  # a list of package names
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
fi
took "apt-get install (${missing:- nothing missing})"

bash installer/debian/build.sh
version=$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml","rb"))["project"]["version"])')
export CALLGUARD_DEB=$PWD/dist/callguard_${version}_amd64.deb
echo "debian-ci: $CALLGUARD_DEB $(du -h "$CALLGUARD_DEB" | cut -f1)"
took "build (installer/debian/build.sh)"

python3 -m pytest -q -s -p no:cacheprovider tests/test_installer_debian.py
took "smoke test in a clean Debian 12 root (tests/test_installer_debian.py)"
echo "debian-ci: all steps took $(( $(date +%s) - t0 )) s"
