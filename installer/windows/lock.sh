#!/usr/bin/env bash
# Regenerate the Windows lock files from pyproject.toml (run by hand when a dependency
# changes; build.sh only reads them):
#   requirements.txt         every dependency as a pinned, hashed win_amd64 cp311 wheel
#   requirements-source.txt  the pinned, hashed sdists that have no wheel (pure Python:
#                            build.sh builds their wheels)
# uv resolves for Windows (pip cannot: it evaluates markers such as
# `platform_system == "Windows"` for the machine it runs on). numpy is held at 2.0.2: numpy
# >= 2.1 imports crealf/cimagf from ucrtbase, which wine 8 lacks, and the build that ships
# is the build that the wine smoke test ran.
set -euo pipefail
cd "$(dirname "$0")/../.."
. installer/common.sh
write_lock_files windows x86_64-pc-windows-msvc kiwipiepy-model "numpy==2.0.2"
