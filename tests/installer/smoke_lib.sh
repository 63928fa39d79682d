# shellcheck shell=bash
# TEST ONLY. Shell functions shared by smoke_windows.sh and smoke_debian.sh (sourced, never
# run; never shipped). Needs $root (the checkout) set; uses the step timer of
# installer/common.sh.
#
#   . "$here/smoke_lib.sh"
# shellcheck source=installer/common.sh
# shellcheck disable=SC2154  # $root: set by the smoke script that sources this file
. "$root/installer/common.sh"

# Start the checks: no failure yet, the step timer at zero.
smoke_start() { failed=0; timer_start; }
# A step passed / failed: prints "smoke: ok   LABEL (N s)" / "smoke: FAIL LABEL (N s)", N the
# step's whole seconds (tests/test_installer_*.py look for these lines). Arg: LABEL.
ok() { timer_lap; echo "smoke: ok   $1 ($lap_s s)"; }
bad() { timer_lap; echo "smoke: FAIL $1 ($lap_s s)"; failed=1; }
# The last line: "smoke: PASSED in N s" or "smoke: FAILED in N s" (N since smoke_start).
smoke_result() { echo "smoke: $([ "$failed" -eq 0 ] && echo PASSED || echo FAILED) in $(timer_total) s"; }

# The checks on one run of the installed program ($rc its status, $out its output):
# `callguard --version` printed exactly "callguard $version";
version_ok() { [ "$rc" -eq 0 ] && [ "$out" = "callguard $version" ]; }
# `callguard rules check` accepted the default rules;
rules_check_ok() { [ "$rc" -eq 0 ] && grep -q "^OK: .*default.toml: [0-9]* rules" <<<"$out"; }
# gui_smoke.py drew the counselor window (a non-empty size) and exited 0;
gui_smoke_ok() { [ "$rc" -eq 0 ] && grep -q "^gui: CounselorWindow [1-9][0-9]*x[1-9]" <<<"$out"; }
# `callguard model` reported the shipped model (a grep pattern for its folder as the program
# prints it, up to "whisper-base-"; then "verified SHA-256"), and
# DIR/models/whisper-base-*/model.bin on this machine has the SHA-256 that
# callguard/asr/bundled.py names (64 hex digits, set in $sha). Args: PRINTED_PATTERN DIR
shipped_model_ok() {
  local model_bin
  sha=$(sed -n 's/^MODEL_SHA256 = "\([0-9a-f]*\)"/\1/p' "$root/callguard/asr/bundled.py")
  model_bin=$(ls "$2"/models/whisper-base-*/model.bin 2>/dev/null | head -1)
  [ "$rc" -eq 0 ] && grep -q "$1.*verified SHA-256" <<<"$out" \
    && [ -n "$model_bin" ] && [ "$(sha256sum "$model_bin" | cut -d' ' -f1)" = "$sha" ]
}

# What `callguard simulate` heard from the caller ($out: the “…” after "caller") against what
# was said ($speech/$clip.txt): prints both and sets $heard, $said and $sim, the similarity of
# their Hangul letters (0.0 to 1.0, two decimals: difflib's ratio).
compare_heard_with_said() {
  heard=$(sed -n 's/.*caller *“\(.*\)”.*/\1/p' <<<"$out" | tr '\n' ' ')
  said=$(cat "$speech/$clip.txt")
  sim=$(python3 -c 'import difflib,sys,re; n=lambda s: re.sub(r"[^가-힣]","",s); print(round(difflib.SequenceMatcher(None,n(sys.argv[1]),n(sys.argv[2])).ratio(),2))' "$heard" "$said")
  echo "    said:  $said"
  echo "    heard: $heard (similarity $sim)"
}
# True when $sim (compare_heard_with_said) is at least 0.5.
heard_enough() { python3 -c "import sys; sys.exit(float('$sim') < 0.5)"; }
# The speech clip ($speech/$clip.wav) as a phone call's audio: 8 kHz, mono, 16-bit PCM WAV.
# Arg: DEST (the .wav to write).
speech_clip_as_call() { ffmpeg -v error -y -i "$speech/$clip.wav" -ar 8000 -ac 1 -sample_fmt s16 "$1"; }
# `callguard simulate` on that clip passed: exit 0, heard enough of it, said where it stored
# the call (STORED_PATTERN: a grep pattern for "stored as call #1 in <the store>") and the
# store file $store exists. Prints what was heard and said first. Arg: STORED_PATTERN
simulate_ok() {
  compare_heard_with_said
  [ "$rc" -eq 0 ] && heard_enough && grep -q "$1" <<<"$out" && [ -f "$store" ]
}
