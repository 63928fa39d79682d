"""Drop the parts of PySide6 that callguard never loads from the staged .deb tree (the
Linux counterpart of installer/windows/trim_qt.py, which reads PE imports).

PySide6-Essentials and -Addons carry all of Qt (WebEngine, QML, 3D, designer tools,
headers). callguard's GUI uses QtCore, QtGui, QtWidgets, QtMultimedia (recordings in the
review window) and QtNetwork. Kept: those Python modules, the plugins an X11 widgets app
with multimedia loads (xcb and offscreen platforms with their GL integrations, input
methods such as ibus for Hangul, image formats, icon engines, multimedia, TLS), Korean and
English translations, and every library in PySide6/Qt/lib those need, directly or not (the
ELF NEEDED entries, read with readelf). No Wayland plugins: on a Wayland desktop Qt uses
XWayland, which pynput's protect hotkey needs anyway.

    python3 trim_qt.py SITE_PACKAGES
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

MODULES = ("QtCore", "QtGui", "QtWidgets", "QtMultimedia", "QtNetwork")
PLUGINS = ("platforms", "platforminputcontexts", "xcbglintegrations", "imageformats",
           "iconengines", "multimedia", "tls")
PLATFORMS = ("libqxcb.so", "libqoffscreen.so", "libqminimal.so")
# Qt's on-screen keyboard (QML) and PDF pages as images: never used.
DROP_PLUGINS = ("platforminputcontexts/libqtvirtualkeyboardplugin.so",
                "imageformats/libqpdf.so")
DROP_DIRS = ("Qt/qml", "Qt/resources", "Qt/metatypes", "Qt/libexec", "include",
             "typesystems", "glue", "doc", "lib", "scripts")
TOOLS = ("assistant", "designer", "linguist", "lrelease", "lupdate", "qmlformat", "qmllint",
         "qmlls", "balsam", "balsamui", "pyside6-svgtoqml", "svgtoqml")


def needed(elf: Path) -> set[str]:
    out = subprocess.run(["readelf", "-d", str(elf)], capture_output=True, text=True,
                         check=True).stdout
    return set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out))


def main(site: Path) -> None:
    pyside = site / "PySide6"
    before = sum(f.stat().st_size for f in pyside.rglob("*") if f.is_file())
    for name in DROP_DIRS:
        shutil.rmtree(pyside / name, ignore_errors=True)
    for name in TOOLS:
        (pyside / name).unlink(missing_ok=True)
    for stub in pyside.rglob("*.pyi"):
        stub.unlink()
    plugins = pyside / "Qt" / "plugins"
    for folder in plugins.iterdir():
        if folder.name not in PLUGINS:
            shutil.rmtree(folder)
    for lib in (plugins / "platforms").iterdir():
        if lib.name not in PLATFORMS:
            lib.unlink()
    for lib in DROP_PLUGINS:
        (plugins / lib).unlink(missing_ok=True)
    for qm in (pyside / "Qt" / "translations").rglob("*"):
        if qm.is_file() and not re.search(r"_(ko|en)\.qm$", qm.name):
            qm.unlink()
    for mod in pyside.glob("Qt*.abi3.so"):
        if mod.name.split(".")[0] not in MODULES:
            mod.unlink()
    (pyside / "libpyside6qml.abi3.so.6.11").unlink(missing_ok=True)
    # The libraries in PySide6/Qt/lib that the kept modules and plugins need, transitively.
    qtlib = pyside / "Qt" / "lib"
    local = {f.name: f for f in qtlib.iterdir() if ".so" in f.name}
    todo = [*pyside.glob("*.so*"), *plugins.rglob("*.so"), *(site / "shiboken6").glob("*.so*")]
    keep: set[str] = set()
    while todo:
        for name in needed(todo.pop()):
            if name in local and name not in keep:
                keep.add(name)
                todo.append(local[name])
    # Qt's FFmpeg loads its stubs (libva, OpenSSL for network streams) with dlopen.
    keep |= {n for n in local if n.startswith("libQt6FFmpegStub")}
    for name, path in local.items():
        if name not in keep:
            path.unlink()
    after = sum(f.stat().st_size for f in pyside.rglob("*") if f.is_file())
    print(f"trim_qt: PySide6 {before / 1e6:.0f} MB -> {after / 1e6:.0f} MB "
          f"({len(keep)} Qt libraries kept)")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
