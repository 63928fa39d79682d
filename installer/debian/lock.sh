#!/usr/bin/env bash
# Regenerate the .deb's lock files from pyproject.toml (run by hand when a dependency
# changes; build.sh only reads them):
#   requirements.txt         every dependency as a pinned, hashed manylinux x86_64 cp311 wheel
#   requirements-source.txt  the pinned, hashed sdists that have no wheel (kiwipiepy-model,
#                            pure Python: build.sh builds its wheel)
# Resolved for manylinux_2_34 (glibc >= 2.34): PySide6 6.11 has no older Linux wheel, and
# Debian 12 has glibc 2.36. numpy is not held back here (the Windows build holds it at 2.0.2
# only for wine 8). evdev (pynput's uinput backend, sdist-only, needs a compiler) is locked
# but not shipped: pynput uses its X11 backend unless PYNPUT_BACKEND says otherwise.
# Needs uv (`pip install uv`; $UV names another). The work is write_lock_files (common.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
. installer/common.sh
write_lock_files debian x86_64-manylinux_2_34 "kiwipiepy-model evdev"
