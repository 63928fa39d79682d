#!/usr/bin/env bash
# The Windows installer's smoke test under wine, in a fresh wine prefix.
#
#   bash tests/installer/smoke_windows.sh dist/callguard-setup-VERSION.exe
#
# Installs silently (/S), then checks the installed program, each step timed:
#   1. the install folder holds exactly the build's file list (plus Uninstall.exe), and no
#      test-only DLL or shim (icuuc, bcryptprimitives, anything from tests/installer) is
#      in the installer (7z listing, when 7z is there) or the folder; Start-menu entries
#   2. callguard.exe --version
#   3. callguard.exe rules check on the installed default rules
#   4. callguard.exe model: the shipped model, SHA-256 checked here too
#   5. callguard.exe simulate on real Korean speech (a clip of ../shared/data/speech-ko
#      converted to 8 kHz here, never shipped) through the real Whisper: prints the text,
#      stored in the default store (%LOCALAPPDATA%\callguard) with no setting
#   6. the GUI (callguard.gui.app.main, as callguard-gui.exe runs it) offscreen, drawn and
#      closed, exit 0; then callguard-gui.exe itself starts it with its worker processes
#   7. silent uninstall: the folder and Start-menu entries go, the call store stays
#   8. install again and uninstall with /PURGE: the call store goes too
#
# Test-only wine settings (real Windows needs none; none is in the installer):
#   - the shims of wine_prefix.sh in the prefix's system32 (WINEDLLOVERRIDES prefers the
#     native bcryptprimitives.dll there);
#   - KMP_AFFINITY=disabled: ctranslate2's Intel OpenMP calls GetNumaNodeProcessorMaskEx,
#     which wine 8 does not implement (OMP: Error #179), unless affinity is off;
#   - WINEQT_QPA_PLATFORM=offscreen: wine drops QT_* variables (no display needed);
#   - output piped through cat: Python under wine 8 aborts when stdout is a file.
# Env: CALLGUARD_WINE_WORK (default: a new folder in /tmp, removed on success unless
# CALLGUARD_WINE_KEEP=1), CALLGUARD_SPEECH (default ../shared/data/speech-ko beside the repo),
# CALLGUARD_SPEECH_CLIP (default k002).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
setup=$(realpath "${1:?usage: smoke_windows.sh SETUP.exe}")
files_list=${setup%.exe}.files.txt
work=${CALLGUARD_WINE_WORK:-$(mktemp -d /tmp/callguard-wine.XXXXXX)}
speech=${CALLGUARD_SPEECH:-$root/../shared/data/speech-ko}
clip=${CALLGUARD_SPEECH_CLIP:-k002}
mkdir -p "$work"
export WINEPREFIX=$work/prefix WINEARCH=win64 WINEDEBUG=-all
export WINEDLLOVERRIDES="bcryptprimitives=n,b;mscoree,mshtml="
export KMP_AFFINITY=disabled WINEQT_QPA_PLATFORM=offscreen
for v in $(env | sed -n 's/^\(PIP_[A-Z_]*\|QT_[A-Z_]*\|PYTHON[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
version=$(basename "$setup" .exe); version=${version#callguard-setup-}
appdir="$WINEPREFIX/drive_c/Program Files/callguard"
win_app='C:\Program Files\callguard'
# shellcheck source=tests/installer/smoke_lib.sh
. "$here/smoke_lib.sh"  # ok, bad, smoke_result and the checks shared with smoke_debian.sh
smoke_start
# Run a Windows program; its output (stdout+stderr, through a pipe) in $out, status in $rc.
win() { out=$(wine "$@" 2>&1 | tr -d '\r'; exit "${PIPESTATUS[0]}"); rc=$?; printf '%s\n' "$out" | sed 's/^/    /'; }

echo "smoke: $setup ($(du -h "$setup" | cut -f1)) in $WINEPREFIX"
bash "$here/wine_prefix.sh" || { echo "smoke: FAIL wine prefix"; exit 1; }
ok "fresh wine prefix with the test-only shims"

# 0. The installer, silent.
wine "$setup" /S 2>&1 | cat; rc=${PIPESTATUS[0]}; wineserver -w
if [ "$rc" -eq 0 ] && [ -f "$appdir/callguard.exe" ]; then ok "silent install (/S)"; else bad "silent install: exit $rc"; exit 1; fi

# 1. What was installed, and nothing test-only.
(cd "$appdir" && find . -type f | sed 's|^\./||' | LC_ALL=C sort) > "$work/installed.txt"
echo "    $(wc -l < "$work/installed.txt") files, $(du -sh "$appdir" | cut -f1) installed"
test_only='(^|[/\\ ])(icuuc|bcryptprimitives)\.dll|icuuc_stub|bcryptprimitives_shim|gui_smoke|wine_prefix|smoke_windows'
if [ -f "$files_list" ]; then
  diff <(grep -v '^Uninstall.exe$' "$work/installed.txt") "$files_list" > "$work/files.diff" \
    && ok "install folder = the build's file list" \
    || { head -20 "$work/files.diff"; bad "install folder differs from $files_list"; }
fi
if grep -Eiq "$test_only" "$work/installed.txt"; then
  grep -Ei "$test_only" "$work/installed.txt" | head; bad "test-only file in the install folder"
else ok "no test-only DLL or shim in the install folder"; fi
if command -v 7z >/dev/null; then
  7z l -ba "$setup" > "$work/setup-listing.txt" 2>&1
  n=$(wc -l < "$work/setup-listing.txt")
  if [ "$n" -gt 100 ] && ! grep -Eiq "$test_only" "$work/setup-listing.txt"; then
    ok "installer's own listing: $n entries, none test-only"
  else bad "installer listing ($n entries) empty or has a test-only file"; fi
fi
menu="$WINEPREFIX/drive_c/ProgramData/Microsoft/Windows/Start Menu/Programs/callguard"
missing=""
for lnk in "상담 화면" "통화 검토" "규칙 편집"; do [ -f "$menu/$lnk.lnk" ] || missing="$missing $lnk"; done
[ -z "$missing" ] && ok "Start menu: 상담 화면, 통화 검토, 규칙 편집" || bad "Start menu lacks$missing"
# Each shortcut runs callguard-gui.exe with its arguments (.lnk strings are UTF-16).
lnk_args() { python3 -c 'import sys; b = open(sys.argv[1], "rb").read(); t = b.decode("utf-16-le", "replace") + b[1:].decode("utf-16-le", "replace"); print("callguard-gui.exe" in t and sys.argv[2] in t)' "$menu/$1.lnk" "$2" 2>/dev/null; }
if [ "$(lnk_args "통화 검토" "--review")" = True ] && [ "$(lnk_args "규칙 편집" "--open rules")" = True ]; then
  ok "shortcuts: 통화 검토 = callguard-gui.exe --review, 규칙 편집 = --open rules"
else bad "shortcut arguments"; fi

# 2. --version
win "$win_app\\callguard.exe" --version
version_ok && ok "callguard.exe --version" \
  || bad "callguard.exe --version: exit $rc"

# 3. rules check on the installed default rules
win "$win_app\\callguard.exe" rules check "$win_app\\rules\\default.toml"
rules_check_ok && ok "rules check (default rules)" || bad "rules check: exit $rc"

# 4. model: the shipped, verified model, found with no setting
win "$win_app\\callguard.exe" model
if shipped_model_ok 'Program Files\\callguard\\models\\whisper-base-' "$appdir"; then
  ok "model: shipped, SHA-256 $sha"
else bad "model: exit $rc"; fi

# 5. simulate real speech through the real Whisper
store="$WINEPREFIX/drive_c/users/$(id -un)/AppData/Local/callguard/callguard.db"
mkdir -p "$WINEPREFIX/drive_c/smoke"
if [ -f "$speech/$clip.wav" ] && command -v ffmpeg >/dev/null; then
  speech_clip_as_call "$WINEPREFIX/drive_c/smoke/call.wav"
  win "$win_app\\callguard.exe" simulate 'C:\smoke\call.wav'
  if simulate_ok 'stored as call #1 in C:\\users\\.*\\AppData\\Local\\callguard\\callguard.db'; then
    ok "simulate: real Whisper heard the speech, call stored in %LOCALAPPDATA%\\callguard"
  else bad "simulate: exit $rc, similarity $sim"; fi
else
  bad "simulate: no $speech/$clip.wav or no ffmpeg"
fi

# 6. the GUI, offscreen, drawn and closed
cp "$here/gui_smoke.py" "$WINEPREFIX/drive_c/smoke/"
win "$win_app\\python.exe" -X utf8 'C:\smoke\gui_smoke.py' 8
gui_smoke_ok && ok "GUI started offscreen, drawn, closed, exit 0" || bad "GUI: exit $rc"

# 6b. callguard-gui.exe itself (the Start-menu launcher, no console): the GUI comes up and
# starts its recogniser and Kiwi processes (the launcher again, `-m ...`). A GUI program
# cannot be asked to close from here (no window messages), so it is ended with the prefix.
(wine "$appdir/callguard-gui.exe" --fake-line 2>&1 | cat > "$work/gui-exe.log") &
seen=""
for _ in $(seq 1 90); do
  procs=$(ps -eo args)
  if grep -q 'callguard-gui.exe -m callguard.asr.process' <<<"$procs" \
     && grep -q 'callguard-gui.exe -m callguard.text.kiwiproc' <<<"$procs"; then seen=1; break; fi
  sleep 1
done
wineserver -k 2>/dev/null; wait
sed 's/^/    /' "$work/gui-exe.log"
[ -n "$seen" ] && ok "callguard-gui.exe started the GUI with its recogniser and Kiwi processes" \
  || bad "callguard-gui.exe: no recogniser/Kiwi process within 90 s"

# 7. silent uninstall keeps the call store
wine "$appdir/Uninstall.exe" /S 2>&1 | cat; wineserver -w; sleep 2; wineserver -w
if [ ! -e "$appdir/callguard.exe" ] && [ ! -e "$menu" ] && [ -f "$store" ]; then
  ok "silent uninstall: program and Start menu gone, call store kept"
else bad "uninstall: folder/menu left, or the store was removed"; fi

# 8. ... unless asked: install again, uninstall with /PURGE (the box ticked)
wine "$setup" /S 2>&1 | cat; wineserver -w
wine "$appdir/Uninstall.exe" /S /PURGE 2>&1 | cat; wineserver -w; sleep 2; wineserver -w
if [ ! -e "$appdir/callguard.exe" ] && [ ! -e "$store" ]; then
  ok "reinstall, then uninstall /S /PURGE: the call store is deleted when asked"
else bad "uninstall /PURGE left the program or the store"; fi

wineserver -k 2>/dev/null
smoke_result
[ $failed -eq 0 ] && [ -z "${CALLGUARD_WINE_KEEP:-}" ] && [ -z "${CALLGUARD_WINE_WORK:-}" ] && rm -rf "$work"
exit $failed
