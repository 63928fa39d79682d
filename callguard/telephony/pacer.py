"""Send clock for RTP: packets on an absolute schedule, pure (the caller passes the time).

pyVoIP's sender slept a fixed 20 ms minus the time spent on each packet, so every
oversleep and every scheduler delay accumulated: its stream ran 0.4-0.6 % slow, and the far
end's jitter buffer had to drop or stretch audio to cope. Here packet ``n`` (the *slot*) is
due at ``start + n * ptime``, computed from ``n`` every time rather than by adding ``ptime``
to a running float, so a late wake-up delays one packet and the next ones catch up; over a
call the packet count tracks the wall clock exactly.

Times are seconds on whatever monotonic clock the caller uses (``time.monotonic()``).

If the sender falls more than ``max_late`` behind (the process was suspended, the machine
stalled), sending the whole backlog at once would burst hundreds of packets that the far
end would drop anyway; instead the missed slots are *skipped* (counted) and sending resumes
with the latest due slot. Skipped slots still consume their indices: the sender derives the
RTP timestamp from :attr:`SendSchedule.packet_index` (``ts0 + index * 160`` at 8 kHz, 20 ms),
so the timestamps keep tracking real time across the gap while sequence numbers stay
contiguous.

Typical loop::

    sched = SendSchedule(time.monotonic())
    while running:
        time.sleep(sched.sleep_for(time.monotonic()))
        for _ in range(sched.due(time.monotonic())):
            send(packet_for_slot(sched.packet_index))
            sched.sent()
"""

from __future__ import annotations

import math

__all__ = ["SendSchedule"]


class SendSchedule:
    """Deadlines ``start + n * ptime`` (seconds) for packet slots ``n = 0, 1, 2, ...``.

    State: :attr:`packet_index` is the next slot to send (slots sent plus slots skipped),
    :attr:`packets_sent` and :attr:`skipped` count each kind.
    """

    def __init__(self, start: float, ptime: float = 0.020, max_late: float = 0.2) -> None:
        if not ptime > 0:
            raise ValueError(f"ptime must be positive, not {ptime}")
        if not max_late >= 0:
            raise ValueError(f"max_late must be non-negative, not {max_late}")
        self.start = start
        self.ptime = ptime
        self.max_late = max_late
        self.packet_index = 0
        self.packets_sent = 0
        self.skipped = 0

    def deadline(self, n: int) -> float:
        """When slot ``n`` is due: ``start + n * ptime`` (absolute, no accumulated error)."""
        return self.start + n * self.ptime

    def slots_due(self, now: float) -> int:
        """How many slots are due by ``now`` in total (sent, skipped or not): the number of
        ``n >= 0`` with ``deadline(n) <= now``."""
        if now < self.start:
            return 0
        n = math.floor((now - self.start) / self.ptime)
        # The division can round across a slot boundary; settle it with deadline() itself so
        # due() and sleep_for() always agree.
        while n >= 0 and self.deadline(n) > now:
            n -= 1
        while self.deadline(n + 1) <= now:
            n += 1
        return n + 1

    def due(self, now: float) -> int:
        """Packets to send now: slots due by ``now`` minus those already sent or skipped.

        If the oldest unsent slot is more than ``max_late`` overdue, all but the latest due
        slot are skipped first (advancing :attr:`packet_index` and :attr:`skipped`), so the
        answer is then 1.
        """
        total = self.slots_due(now)
        backlog = total - self.packet_index
        if backlog <= 0:
            return 0
        if now - self.deadline(self.packet_index) > self.max_late:
            skip = backlog - 1
            self.packet_index += skip
            self.skipped += skip
            return 1
        return backlog

    def sent(self, k: int = 1) -> None:
        """Record that the next ``k`` slots were sent."""
        if k < 0:
            raise ValueError(f"k must be non-negative, not {k}")
        self.packet_index += k
        self.packets_sent += k

    def sleep_for(self, now: float) -> float:
        """Seconds from ``now`` to the next unsent slot's deadline; 0 if it is already due."""
        return max(0.0, self.deadline(self.packet_index) - now)
