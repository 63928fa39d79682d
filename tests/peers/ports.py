"""Free port picking on 127.0.0.1 for the test peers.

A port is "free" when both a UDP and a TCP socket can bind ``127.0.0.1:<port>`` at the
moment of the check (baresip listens on UDP and TCP with the same number; SIPp and our own
Python sockets use UDP). Ports handed out by this module are remembered for the life of the
process so two peers started by the same test run never get the same number, even before
either has bound it. The check-then-bind race against *other* processes remains; it is
harmless on a test machine.
"""

from __future__ import annotations

import socket
import threading

HOST = "127.0.0.1"
"""The only address the peers listen on and send to."""

_lock = threading.Lock()
_handed_out: set[int] = set()


def _can_bind(port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def port_is_free(port: int, *, udp: bool = True, tcp: bool = True) -> bool:
    """True when ``port`` can be bound on 127.0.0.1 now (UDP and/or TCP as asked)."""
    return (not udp or _can_bind(port, socket.SOCK_DGRAM)) and (
        not tcp or _can_bind(port, socket.SOCK_STREAM))


def free_port(*, udp: bool = True, tcp: bool = True, span: int = 1,
              attempts: int = 200) -> int:
    """A port number ``p`` such that ``p .. p+span-1`` are free on 127.0.0.1.

    ``udp``/``tcp`` choose which protocols must be free (both by default). ``span`` > 1
    reserves consecutive numbers (e.g. ``span=2`` for an RTP port and its RTCP neighbour;
    the first port is then even). Numbers are drawn by the kernel (bind to port 0), so they
    lie in the ephemeral range. Raises ``RuntimeError`` after ``attempts`` failures.
    """
    for _ in range(attempts):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        if span > 1 and port % 2:
            port -= 1
        ports = range(port, port + span)
        if port < 1024 or ports[-1] > 65535:
            continue
        with _lock:
            if any(p in _handed_out for p in ports):
                continue
            if all(port_is_free(p, udp=udp, tcp=tcp) for p in ports):
                _handed_out.update(ports)
                return port
    raise RuntimeError(f"no free port span of {span} on {HOST} after {attempts} attempts")


def free_udp_port(span: int = 1) -> int:
    """A free UDP port on 127.0.0.1 (TCP not checked); see :func:`free_port`."""
    return free_port(udp=True, tcp=False, span=span)


def free_tcp_port() -> int:
    """A free TCP port on 127.0.0.1 (UDP not checked); see :func:`free_port`."""
    return free_port(udp=False, tcp=True)
