#!/usr/bin/env bash
# The .deb's smoke test in a clean Debian 12 root (debootstrap --variant=minbase), as root.
#
#   bash tests/installer/smoke_debian.sh dist/callguard_VERSION_amd64.deb
#
# A fresh minimal bookworm is made with debootstrap (no container: a chroot with a fresh
# proc, sysfs and /dev/shm mounted, unmounted in a trap before anything is deleted), then:
#   0. `apt-get install ./callguard_*.deb` pulls the Depends from Debian's mirror
#   1. the installed files are exactly the build's list (dpkg -L), nothing test-only is in
#      the package (dpkg-deb -c) or the install, and every ELF file under /opt/callguard
#      finds all its libraries (ldd: the Depends list is complete)
#   2. isolation: the bundled Python's sys.path is /opt/callguard only, and every callguard
#      command below runs with decoy `numpy` packages that fail on import in PYTHONPATH,
#      PYTHONHOME, ~/.local, /usr/local, /usr/lib/python3/dist-packages and the current
#      folder (if any leaked in, the recogniser would not start)
#   3. /usr/bin/callguard --version, as a non-root user made in the root
#   4. callguard rules check on the shipped default rules
#   5. callguard model: the shipped model, found with no setting, SHA-256 checked here too
#   6. callguard simulate on real Korean speech (a clip of ../shared/data/speech-ko
#      converted to 8 kHz here, never shipped) through the real Whisper: prints the text,
#      checked by similarity; stored in ~/.local/share/callguard with no setting
#   7. the GUI (callguard.gui.app.main) offscreen, drawn and closed, exit 0; then
#      `callguard gui` itself starts with its recogniser and Kiwi processes
#   8. desktop entries 상담 화면, 통화 검토, 규칙 편집 (desktop-file-validate when there),
#      the systemd user unit (systemd-analyze verify when there, else parsed)
#   9. apt-get remove, then install again and purge: no file of the package is left,
#      /opt/callguard is gone, the counselor's calls (~/.local/share/callguard) stay
# Env: CALLGUARD_DEB_WORK (default: a new folder in /tmp, removed at the end unless
# CALLGUARD_DEB_KEEP=1), CALLGUARD_DEB_MIRROR (default http://deb.debian.org/debian),
# CALLGUARD_DEB_CACHE (debootstrap's package cache, default ~/.cache/callguard-deb),
# CALLGUARD_SPEECH (default ../shared/data/speech-ko beside the repo), CALLGUARD_SPEECH_CLIP
# (default k002).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
deb=$(realpath "${1:?usage: smoke_debian.sh callguard_VERSION_amd64.deb}")
files_list=${deb%.deb}.files.txt
work=${CALLGUARD_DEB_WORK:-$(mktemp -d /tmp/callguard-deb-smoke.XXXXXX)}
mirror=${CALLGUARD_DEB_MIRROR:-http://deb.debian.org/debian}
cache=${CALLGUARD_DEB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/callguard-deb}
speech=${CALLGUARD_SPEECH:-$root/../shared/data/speech-ko}
clip=${CALLGUARD_SPEECH_CLIP:-k002}
rootfs=$work/root
version=$(dpkg-deb -f "$deb" Version)
user=counselor uid=4242
home=/home/$user
site=/opt/callguard/python/lib/python3/dist-packages
# shellcheck source=tests/installer/smoke_lib.sh
. "$here/smoke_lib.sh"  # ok, bad, smoke_result and the checks shared with smoke_windows.sh
smoke_start

[ "$(id -u)" -eq 0 ] || { echo "smoke: FAIL must run as root (debootstrap, chroot)"; exit 1; }
for tool in debootstrap dpkg-deb ffmpeg findmnt; do
  command -v "$tool" >/dev/null || { echo "smoke: FAIL $tool missing"; exit 1; }
done

# Mounts inside the root: only fresh virtual filesystems (never a bind of the host's /dev:
# debootstrap made the few device nodes a root needs). All are unmounted, deepest first,
# before anything is deleted; nothing is deleted while any mount is still under $work.
# (The whole mount table is read: findmnt -R finds nothing under a folder that is not
# itself a mount point.)
mounts_under() { findmnt -n -l -o TARGET | awk -v d="$1/" 'index($0, d) == 1' | sort -r; }
unmount_all() {
  local m
  for _ in 1 2 3; do
    [ -z "$(mounts_under "$work")" ] && return 0
    for m in $(mounts_under "$work"); do umount "$m" 2>/dev/null || umount -l "$m"; done
  done
  [ -z "$(mounts_under "$work")" ]
}
cleanup() {
  if ! unmount_all; then
    echo "smoke: FAIL could not unmount under $work; left in place"; return
  fi
  if [ -z "${CALLGUARD_DEB_KEEP:-}" ] && [ -z "${CALLGUARD_DEB_WORK:-}" ] \
     && [ -z "$(mounts_under "$work")" ]; then
    rm -rf --one-file-system "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Run in the root: as the counselor (`as_user`, a login-like clean environment plus any
# VAR=value given first) or as root (`as_root`). Output in $out, status in $rc.
as_root() { out=$(chroot "$rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@" 2>&1); rc=$?; printf '%s\n' "$out" | sed 's/^/    /'; }
as_user() { out=$(chroot --userspec=$uid:$uid --groups=$uid "$rootfs" /usr/bin/env -i \
  HOME=$home USER=$user LOGNAME=$user PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 \
  /bin/sh -c 'cd "$HOME" && exec /usr/bin/env "$@"' sh "$@" 2>&1); rc=$?; printf '%s\n' "$out" | sed 's/^/    /'; }
# The decoys: PYTHONPATH and PYTHONHOME point at them, and the current folder is one.
poison=(PYTHONPATH=/opt/poison PYTHONHOME=/opt/poison PYTHONSTARTUP=/opt/poison/numpy/__init__.py)

echo "smoke: $deb ($(du -h "$deb" | cut -f1)) in $rootfs"

# 0. A clean Debian 12 and the package, with its Depends from the mirror.
mkdir -p "$work" "$cache/debootstrap"
if ! debootstrap --variant=minbase --cache-dir="$cache/debootstrap" bookworm "$rootfs" \
     "$mirror" > "$work/debootstrap.log" 2>&1; then
  tail -20 "$work/debootstrap.log"; bad "debootstrap bookworm"; exit 1
fi
ok "debootstrap --variant=minbase bookworm ($(du -sh "$rootfs" | cut -f1))"
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
mount -t proc proc "$rootfs/proc"
mount -t sysfs -o ro sysfs "$rootfs/sys"
mount -t tmpfs -o mode=1777,size=256m tmpfs "$rootfs/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$rootfs/dev/pts"
cp "$deb" "$rootfs/tmp/"
as_root apt-get update -q
as_root apt-get install -y -q --no-install-recommends "/tmp/$(basename "$deb")"
if [ "$rc" -eq 0 ] && [ -x "$rootfs/usr/bin/callguard" ]; then
  ok "apt-get install ./$(basename "$deb") (Depends from $mirror)"
else bad "apt-get install: exit $rc"; exit 1; fi
as_root useradd -m -u $uid -U -s /bin/sh $user

# 1. What was installed, and nothing test-only; every library found.
chroot "$rootfs" dpkg-query -L callguard | LC_ALL=C sort > "$work/dpkg-L.txt"
(cd "$rootfs" && while read -r f; do [ -f ".$f" ] && [ ! -L ".$f" ] && echo "$f"; done \
  < "$work/dpkg-L.txt") > "$work/installed.txt"
echo "    $(wc -l < "$work/installed.txt") files, $(du -sh "$rootfs/opt/callguard" | cut -f1) in /opt/callguard"
if [ -f "$files_list" ]; then
  diff "$work/installed.txt" "$files_list" > "$work/files.diff" \
    && ok "installed files = the build's file list" \
    || { head -20 "$work/files.diff"; bad "installed files differ from $files_list"; }
fi
(cd "$rootfs" && find opt/callguard -type f | sed 's|^|/|' | LC_ALL=C sort) > "$work/opt.txt"
comm -23 "$work/opt.txt" "$work/installed.txt" > "$work/stray.txt"
[ -s "$work/stray.txt" ] && { head "$work/stray.txt"; bad "files in /opt/callguard that dpkg does not own"; }
test_only='tests/installer|gui_smoke|smoke_(debian|windows)|wine_prefix|icuuc_stub|icuuc\.dll|bcryptprimitives|speech-ko|KsponSpeech|shared/data|/poison|sitecustomize\.py|usercustomize\.py|\.wav$'
dpkg-deb -c "$deb" > "$work/deb-listing.txt"
n=$(wc -l < "$work/deb-listing.txt")
if [ "$n" -gt 1000 ] && ! grep -Eiq "$test_only" "$work/deb-listing.txt" \
   && ! grep -Eiq "$test_only" "$work/installed.txt"; then
  ok "package listing: $n entries, nothing test-only in it or in the install"
else
  grep -Ei "$test_only" "$work/deb-listing.txt" "$work/installed.txt" | head
  bad "package listing ($n entries) empty or has a test-only file"
fi
# No test-only setting in what starts the program (the launcher, desktop entries, unit).
settings='QT_QPA_PLATFORM|KMP_AFFINITY|WINE|CALLGUARD_[A-Z_]*=|PYTHONPATH=|LD_LIBRARY_PATH|LD_PRELOAD'
if grep -Eq "$settings" "$rootfs/usr/bin/callguard" "$rootfs"/usr/share/applications/callguard-*.desktop \
     "$rootfs/usr/lib/systemd/user/callguard-agent.service"; then
  grep -E "$settings" "$rootfs/usr/bin/callguard" "$rootfs"/usr/share/applications/callguard-*.desktop \
    "$rootfs/usr/lib/systemd/user/callguard-agent.service"
  bad "a test-only setting in the launcher, a desktop entry or the unit"
else ok "no test-only setting in /usr/bin/callguard, the desktop entries or the unit"; fi
chroot "$rootfs" /bin/sh -c 'find /opt/callguard -type f \( -name "*.so*" -o -path "*/bin/*" \) \
  -exec ldd {} + 2>&1' > "$work/ldd.txt"
if grep -q "not found" "$work/ldd.txt"; then
  grep -B30 "not found" "$work/ldd.txt" | grep -E '^/|not found' | head -20
  bad "ldd: libraries not found (a Depends is missing)"
else ok "ldd: every library of $(grep -c '^/' "$work/ldd.txt") ELF files found (Depends complete)"; fi

# 2. Isolation: decoy numpy packages everywhere a Python might look.
for d in /opt/poison "$home/.local/lib/python3.11/site-packages" \
         /usr/local/lib/python3.11/dist-packages /usr/lib/python3/dist-packages \
         /usr/lib/python3.11/site-packages "$home"; do
  mkdir -p "$rootfs$d/numpy"
  echo 'raise ImportError("callguard smoke: decoy numpy imported, sys.path leaked")' \
    > "$rootfs$d/numpy/__init__.py"
done
chroot "$rootfs" chown -R $uid:$uid "$home"
as_user "${poison[@]}" /opt/callguard/python/bin/python3.11 -I -c \
  'import sys; bad = [p for p in sys.path if p and not p.startswith("/opt/callguard/python/")]; print(sys.path); sys.exit(bool(bad))'
[ "$rc" -eq 0 ] && ok "isolated: the bundled Python's sys.path is /opt/callguard/python only" \
  || bad "isolation: sys.path leaves /opt/callguard"

# 3. --version, through /usr/bin/callguard
as_user "${poison[@]}" callguard --version
version_ok && ok "/usr/bin/callguard --version" \
  || bad "callguard --version: exit $rc"

# 4. rules check on the shipped default rules
as_user "${poison[@]}" callguard rules check "$site/rules/default.toml"
rules_check_ok && ok "rules check (default rules)" || bad "rules check: exit $rc"

# 5. model: the shipped, verified model, found with no setting
as_user "${poison[@]}" callguard model
if shipped_model_ok "$site/models/whisper-base-" "$rootfs$site"; then
  ok "model: shipped, SHA-256 $sha"
else bad "model: exit $rc"; fi

# 6. simulate real speech through the real Whisper
store=$rootfs$home/.local/share/callguard/callguard.db
if [ -f "$speech/$clip.wav" ] && [ -f "$speech/$clip.txt" ]; then
  speech_clip_as_call "$rootfs$home/call.wav"
  chroot "$rootfs" chown $uid:$uid "$home/call.wav"
  as_user "${poison[@]}" callguard simulate call.wav
  if simulate_ok "stored as call #1 in $home/.local/share/callguard/callguard.db"; then
    ok "simulate: real Whisper heard the speech, call stored in ~/.local/share/callguard"
  else bad "simulate: exit $rc, similarity $sim"; fi
  rm -f "$rootfs$home/call.wav"
else
  bad "simulate: no $speech/$clip.wav"
fi

# 7. the GUI offscreen (the test-only gui_smoke.py is copied into the root's /tmp)
cp "$here/gui_smoke.py" "$rootfs/tmp/gui_smoke.py"
as_user QT_QPA_PLATFORM=offscreen PYTHONNOUSERSITE=1 PYTHONSAFEPATH=1 PYTHONDONTWRITEBYTECODE=1 \
  /opt/callguard/python/bin/python3.11 -I -B /tmp/gui_smoke.py 8
gui_smoke_ok && ok "GUI started offscreen, drawn, closed, exit 0" || bad "GUI: exit $rc"
rm -f "$rootfs/tmp/gui_smoke.py"
# 7b. `callguard gui` through /usr/bin/callguard: it comes up with its worker processes
# (the same interpreter, `-m callguard.asr.process` and `-m callguard.text.kiwiproc`).
chroot --userspec=$uid:$uid --groups=$uid "$rootfs" /usr/bin/env -i HOME=$home USER=$user \
  PATH=/usr/bin:/bin LANG=C.UTF-8 QT_QPA_PLATFORM=offscreen PYTHONPATH=/opt/poison \
  /usr/bin/callguard gui --fake-line > "$work/gui.log" 2>&1 &
gui_pid=$!
seen=""
for _ in $(seq 1 90); do
  kids=$(ps -o args= --ppid "$gui_pid" 2>/dev/null)
  if grep -q -- '-m callguard.asr.process' <<<"$kids" \
     && grep -q -- '-m callguard.text.kiwiproc' <<<"$kids"; then seen=1; break; fi
  kill -0 "$gui_pid" 2>/dev/null || break
  sleep 1
done
sleep 3  # the recogniser loads its model (a decoy numpy would end it here)
kids_alive=$(ps -o args= --ppid "$gui_pid" 2>/dev/null | grep -c -- '-m callguard')
kill -TERM "$gui_pid" 2>/dev/null
for _ in $(seq 1 20); do kill -0 "$gui_pid" 2>/dev/null || break; sleep 0.5; done
kill -KILL "$gui_pid" 2>/dev/null; wait "$gui_pid" 2>/dev/null
sed 's/^/    /' "$work/gui.log" | tail -15
[ -n "$seen" ] && [ "$kids_alive" -ge 2 ] \
  && ok "callguard gui started with its recogniser and Kiwi processes" \
  || bad "callguard gui: no recogniser/Kiwi process within 90 s"

# 8. desktop entries and the systemd user unit
apps=$rootfs/usr/share/applications
entries=""
for pair in "callguard-counselor:상담 화면:/usr/bin/callguard gui" \
            "callguard-review:통화 검토:/usr/bin/callguard gui --review" \
            "callguard-rules:규칙 편집:/usr/bin/callguard gui --open rules"; do
  IFS=: read -r file name exec <<<"$pair"
  f=$apps/$file.desktop
  if [ -f "$f" ] && grep -qx "Name=$name" "$f" && grep -qx "Exec=$exec" "$f"; then
    entries="$entries $name"
    if command -v desktop-file-validate >/dev/null && ! desktop-file-validate "$f"; then
      bad "desktop-file-validate $file.desktop"
    fi
  fi
done
[ "$entries" = " 상담 화면 통화 검토 규칙 편집" ] \
  && ok "desktop entries:$entries (Exec: callguard gui, --review, --open rules)" \
  || bad "desktop entries: only$entries"
unit=$rootfs/usr/lib/systemd/user/callguard-agent.service
if [ -f "$unit" ] && python3 - "$unit" <<'PY'
import configparser, sys
c = configparser.ConfigParser(strict=True, interpolation=None)
c.optionxform = str
c.read(sys.argv[1], encoding="utf-8")
assert c["Service"]["ExecStart"] == "/usr/bin/callguard run", c["Service"]["ExecStart"]
assert c["Install"]["WantedBy"] == "default.target"
assert c["Unit"]["Description"]
PY
then
  if command -v systemd-analyze >/dev/null; then
    # verify looks for ExecStart's program on this machine: a copy of the unit points it
    # at the root's /usr/bin/callguard (systemd 252 cannot verify inside a --root).
    mkdir -p "$work/unit"
    sed "s|^ExecStart=/usr/bin/callguard|ExecStart=$rootfs/usr/bin/callguard|" "$unit" \
      > "$work/unit/callguard-agent.service"
    if SYSTEMD_LOG_LEVEL=notice systemd-analyze verify "$work/unit/callguard-agent.service" \
         > "$work/verify.txt" 2>&1 && [ ! -s "$work/verify.txt" ]; then
      ok "systemd user unit callguard-agent.service: parsed, systemd-analyze verify clean"
    else sed 's/^/    /' "$work/verify.txt"; bad "systemd-analyze verify callguard-agent.service"; fi
  else ok "systemd user unit callguard-agent.service: parsed (ExecStart=/usr/bin/callguard run)"; fi
else bad "systemd user unit missing or invalid"; fi

# The unit's command as the counselor, with no settings yet: it says what is missing and
# exits 2 (RestartPreventExitStatus=2: systemd does not retry a wrong configuration).
as_user "${poison[@]}" timeout 60 callguard run
[ "$rc" -eq 2 ] && grep -q "no SIP line configured" <<<"$out" \
  && ok "ExecStart (callguard run) without settings: names the missing [sip], exit 2" \
  || bad "callguard run without settings: exit $rc"

# 9. remove, then install again and purge: nothing of the package left, the calls kept
as_root apt-get remove -y -q callguard
left=$(cd "$rootfs" && while read -r f; do [ -e ".$f" ] && echo "$f"; done < "$work/installed.txt")
if [ "$rc" -eq 0 ] && [ -z "$left" ] && [ ! -e "$rootfs/opt/callguard" ] \
   && [ ! -e "$rootfs/usr/bin/callguard" ] && [ -f "$store" ]; then
  ok "apt-get remove: no file of the package left, /opt/callguard gone, the call store kept"
else echo "$left" | head; bad "apt-get remove: exit $rc, files left or the store removed"; fi
# Install again and purge it (apt forgets a removed package that had no conffiles).
as_root apt-get install -y -q --no-install-recommends "/tmp/$(basename "$deb")"
as_root apt-get purge -y -q callguard
status=$(chroot "$rootfs" dpkg-query -W -f='${Status}' callguard 2>/dev/null)
if [ "$rc" -eq 0 ] && { [ -z "$status" ] || [ "$status" = "unknown ok not-installed" ]; } \
   && [ ! -e "$rootfs/opt/callguard" ] && [ -f "$store" ]; then
  ok "apt-get purge: (installed again) package gone, /opt/callguard gone, ~/.local/share/callguard kept"
else bad "apt-get purge: exit $rc, status '$status'"; fi

smoke_result
exit $failed
