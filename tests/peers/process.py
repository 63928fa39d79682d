"""What the peers run as processes share: the ``running`` and ``log_tail`` of
:class:`~peers.kamailio.Kamailio` and :class:`~peers.baresip.Baresip`, their use as context
managers, and signalling a peer's process group."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path
from types import TracebackType
from typing import Self


class PeerProcess:
    """A peer program run as a child in a session of its own, its output in ``log_path``.
    A subclass sets ``_proc`` in ``start()`` and provides ``stop()`` (the process ends, the
    files stay) and ``close()`` (the process ends, its own temp files go)."""

    _proc: subprocess.Popen[bytes] | None
    log_path: Path

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        """True while the peer's main process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the peer's log (for error and assertion messages)."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        if et is not None:
            self.stop()  # keep the files (log, recordings) for debugging
        else:
            self.close()


def signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal the process group the peer leads (it was started in a new session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
