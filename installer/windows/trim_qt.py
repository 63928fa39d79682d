"""Drop the parts of PySide6 that callguard never loads from the staged Windows folder.

PySide6-Essentials and -Addons carry all of Qt (WebEngine alone is 300 MB with its
resources, plus QML, 3D, designer tools, headers). callguard's GUI uses QtCore, QtGui,
QtWidgets and QtMultimedia (recordings in the review window). Kept: those Python modules,
the plugin folders a widgets app with multimedia loads (platforms, styles, imageformats,
iconengines, multimedia, tls), Korean and English translations, and every DLL in PySide6\\
that those import, directly or not (read from the PE import tables with mingw's objdump).

    python3 trim_qt.py APP_DIR
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

MODULES = ("QtCore", "QtGui", "QtWidgets", "QtMultimedia", "QtNetwork")
PLUGINS = ("platforms", "styles", "imageformats", "iconengines", "multimedia", "tls")
DROP_DIRS = ("qml", "resources", "metatypes", "include", "typesystems", "glue", "doc", "lib")
OBJDUMP = "x86_64-w64-mingw32-objdump"


def imports(dll: Path) -> set[str]:
    out = subprocess.run([OBJDUMP, "-p", str(dll)], capture_output=True, text=True,
                         check=True).stdout
    return {m.lower() for m in re.findall(r"DLL Name: (\S+)", out)}


def main(app: Path) -> None:
    pyside = app / "Lib" / "site-packages" / "PySide6"
    before = sum(f.stat().st_size for f in pyside.rglob("*") if f.is_file())
    for name in DROP_DIRS:
        shutil.rmtree(pyside / name, ignore_errors=True)
    for exe in pyside.glob("*.exe"):
        exe.unlink()
    for stub in pyside.rglob("*.pyi"):
        stub.unlink()
    for folder in (pyside / "plugins").iterdir():
        if folder.name not in PLUGINS:
            shutil.rmtree(folder)
    for qm in (pyside / "translations").rglob("*"):
        if qm.is_file() and not re.search(r"_(ko|en)\.qm$", qm.name):
            qm.unlink()
    for pyd in pyside.glob("Qt*.pyd"):
        if pyd.stem not in MODULES:
            pyd.unlink()
    # The DLLs in PySide6\ that the kept modules and plugins need, transitively.
    local = {f.name.lower(): f for f in pyside.glob("*.dll")}
    todo = [*pyside.glob("*.pyd"), *(pyside / "plugins").rglob("*.dll")]
    todo += [f for f in (app / "Lib" / "site-packages" / "shiboken6").glob("*.dll")]
    needed: set[str] = set()
    while todo:
        for name in imports(todo.pop()):
            if name in local and name not in needed:
                needed.add(name)
                todo.append(local[name])
    for name, path in local.items():
        if name not in needed and name != "pyside6.abi3.dll":
            path.unlink()
    after = sum(f.stat().st_size for f in pyside.rglob("*") if f.is_file())
    print(f"trim_qt: PySide6 {before / 1e6:.0f} MB -> {after / 1e6:.0f} MB "
          f"({len(needed)} Qt DLLs kept)")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
