"""One exception tree (callguard.errors): every exception class callguard defines is a
CallguardError, the tree drawn in the module docstring is the real one, and the command
reports such an error as one line, ``callguard: <message>``, without a traceback."""

from __future__ import annotations

import ast
import contextlib
import importlib
import inspect
import os
import re
import textwrap
import wave
from pathlib import Path

import pytest

import callguard
from callguard import errors
from callguard.cli import call_cmd
from callguard.cli.main import main
from callguard.errors import CallguardError, InputError

PACKAGE = Path(callguard.__file__).resolve().parent
GUI = "callguard.gui"


def module_names() -> list[str]:
    """Every module of the package, from its files (nothing imported to find them)."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__main__":  # runs the command when imported
            continue
        if "migrations" in parts:  # Alembic's scripts: run by Alembic, not imported
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


def defined_exceptions(names: list[str]) -> dict[str, type[BaseException]]:
    """``module.Class`` → class, for every exception class defined in those modules."""
    found = {}
    for name in names:
        module = importlib.import_module(name)
        for attr, obj in vars(module).items():
            if (inspect.isclass(obj) and issubclass(obj, BaseException)
                    and obj.__module__ == name):
                found[f"{name}.{attr}"] = obj
    return found


def core_exceptions() -> dict[str, type[BaseException]]:
    return defined_exceptions([n for n in module_names()
                               if n != GUI and not n.startswith(GUI + ".")])


def gui_exceptions() -> dict[str, type[BaseException]]:
    """The GUI's exception classes; skips when Qt cannot be imported offscreen here."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # as tests/gui/conftest.py
    try:
        importlib.import_module("PySide6.QtWidgets")
    except ImportError as exc:
        pytest.skip(f"Qt cannot be imported here: {exc}")
    return defined_exceptions([n for n in module_names()
                               if n == GUI or n.startswith(GUI + ".")])


def test_every_core_exception_is_a_callguard_error():
    found = core_exceptions()
    assert len(found) >= 14  # the walk really finds them (14 when the tree was made)
    outside = [name for name, cls in found.items() if not issubclass(cls, CallguardError)]
    assert outside == []


def test_every_gui_exception_is_a_callguard_error():
    found = gui_exceptions()  # none today; a window's own error class would be checked
    outside = [name for name, cls in found.items() if not issubclass(cls, CallguardError)]
    assert outside == []


def test_errors_module_imports_nothing_from_callguard():
    tree = ast.parse(Path(errors.__file__).read_text(encoding="utf-8"))
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names]
    imported += [node.module or "" for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)]
    assert [m for m in imported if m.split(".")[0] == "callguard"] == []


def drawn_tree() -> list[tuple[str, str | None, list[str]]]:
    """``(class, drawn parent, builtin bases after '+')`` for each line of the drawing."""
    doc = errors.__doc__ or ""
    drawing = textwrap.dedent(doc.split("::", 1)[1].strip("\n").split("\n\n", 1)[0])
    rows: list[tuple[str, str | None, list[str]]] = []
    stack: list[str] = []  # the class at each depth
    for line in drawing.splitlines():
        m = re.match(r"^(?P<lead>[\s│├└─]*)(?P<name>[A-Z]\w+)", line)
        assert m, line
        depth = len(m["lead"]) // 4
        stack[depth:] = [m["name"]]
        builtins = re.findall(r"\+ (\w+)", line)
        rows.append((m["name"], stack[depth - 1] if depth else None, builtins))
    return rows


def test_the_drawn_tree_is_the_real_one():
    classes = {cls.__name__: cls for cls in [*core_exceptions().values(), InputError,
                                             errors.ResourceError, CallguardError]}
    with contextlib.suppress(pytest.skip.Exception):  # no Qt: the GUI's rows are not checked
        classes.update({cls.__name__: cls for cls in gui_exceptions().values()})
    rows = drawn_tree()
    drawn = {name for name, _, _ in rows}
    assert classes.keys() <= drawn, "a class is missing from the drawing"
    for name, parent, builtins in rows:
        if name not in classes:  # a GUI class when Qt is not importable
            continue
        cls = classes[name]
        bases = [b.__name__ for b in cls.__bases__]
        if parent is None:
            assert cls is CallguardError
            continue
        assert bases[0] == parent, f"{name} is drawn under {parent}, its bases are {bases}"
        assert bases[1:] == builtins, f"{name}: drawn + {builtins}, its bases are {bases}"


def test_builtin_bases_callers_rely_on_are_kept():
    from callguard.config import ConfigError
    from callguard.store import CallNotFoundError, StoreError
    from callguard.telephony.rtp import RtpError

    assert issubclass(ConfigError, ValueError) and issubclass(RtpError, ValueError)
    assert issubclass(CallNotFoundError, StoreError) and issubclass(CallNotFoundError, KeyError)
    assert str(CallNotFoundError(7)) == "no call with id 7 in the call store"


def test_exit_status_is_2_for_input_and_1_for_the_rest():
    for name, cls in core_exceptions().items():
        want = 2 if issubclass(cls, InputError) else 1
        assert cls.exit_code == want, name


# --- the command: one line, no traceback -----------------------------------------------------


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """An empty settings file: defaults, whatever the user running the tests has set."""
    path = tmp_path / "config.toml"
    path.write_text("", encoding="utf-8")
    return path


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("callguard: "), err
    return lines[0]


def test_missing_settings_file(tmp_path, capsys):
    missing = tmp_path / "gone.toml"
    assert main(["model", "--config", str(missing)]) == 2
    assert one_line(capsys) == f"callguard: {missing}: settings file not found"
    assert main(["run", "--config", str(missing)]) == 2
    assert one_line(capsys) == f"callguard: {missing}: settings file not found"


def test_broken_settings_file(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text("[asr]\nthreads = 2\n", encoding="utf-8")
    assert main(["model", "--config", str(path)]) == 2
    assert one_line(capsys).startswith(f"callguard: {path}: unknown key asr.'threads'")


def test_bad_wav(tmp_path, config, capsys):
    bad = tmp_path / "notwav.wav"
    bad.write_text("hello", encoding="utf-8")
    assert main(["simulate", str(bad), "--no-store", "--config", str(config)]) == 2
    line = one_line(capsys)
    assert str(bad) in line or bad.name in line


def test_a_file_that_is_not_a_call_store(tmp_path, write_rules, capsys):
    rules = write_rules('[[rule]]\nid = "a"\ncategory = "profanity"\nterms = ["씨발"]\n')
    store = tmp_path / "calls.db"
    store.write_bytes(b"not sqlite at all, " * 100)
    assert main(["rules", "dryrun", str(rules), "--store", str(store)]) == 1
    assert "calls.db" in one_line(capsys)


@pytest.mark.slow  # loads the bundled Whisper model before it reads the rules
def test_broken_rules_file_for_simulate(tmp_path, config, write_rules, capsys):
    rules = write_rules("[[rule]\n")
    wav = tmp_path / "quiet.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 8000)
    assert main(["simulate", str(wav), "--rules", str(rules), "--no-store",
                 "--config", str(config)]) == 2
    assert one_line(capsys).startswith(f"callguard: {rules}:1: TOML syntax error")


def test_other_exceptions_keep_their_traceback(monkeypatch, config):
    def broken(path):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(call_cmd, "load_settings", broken)
    with pytest.raises(ZeroDivisionError):
        main(["model", "--config", str(config)])
