#!/usr/bin/env bash
# TEST ONLY. Make a fresh 64-bit wine prefix for the Windows smoke test, with the shims that
# stand in for what real Windows 10/11 has and wine 8 lacks (README of this folder):
#   icuuc.dll             Windows' ICU (Qt6Core imports ucnv_*): icuuc_stub.c
#   bcryptprimitives.dll  ProcessPrng (tokenizers imports it): bcryptprimitives_shim.c
# Both go into the prefix's system32, never into the installer or the install folder.
#
#   WINEPREFIX=/tmp/x bash tests/installer/wine_prefix.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${WINEPREFIX:?set WINEPREFIX to a folder that does not exist yet}"
mkdir -p "$(dirname "$WINEPREFIX")"
export WINEARCH=win64 WINEDEBUG=${WINEDEBUG:--all}
[ -e "$WINEPREFIX" ] && { echo "wine_prefix.sh: $WINEPREFIX exists" >&2; exit 1; }
# No Mono/Gecko download prompts (no network here, and nothing uses them).
# (wineboot's status is not reliable: without wine32 it reports the 32-bit half it cannot
# set up; the 64-bit prefix is what counts.)
WINEDLLOVERRIDES="mscoree,mshtml=" wine wineboot -i > "$WINEPREFIX.wineboot.log" 2>&1 || true
wineserver -w || true
sys32=$WINEPREFIX/drive_c/windows/system32
[ -f "$sys32/kernel32.dll" ] || { cat "$WINEPREFIX.wineboot.log" >&2; echo "wine_prefix.sh: wineboot failed" >&2; exit 1; }
rm -f "$WINEPREFIX.wineboot.log"
x86_64-w64-mingw32-gcc -shared -O2 -s -o "$sys32/icuuc.dll" "$here/icuuc_stub.c"
x86_64-w64-mingw32-gcc -shared -O2 -s -o "$sys32/bcryptprimitives.dll" \
  "$here/bcryptprimitives_shim.c"
echo "wine_prefix: $WINEPREFIX ready (test-only icuuc.dll, bcryptprimitives.dll in system32)"
