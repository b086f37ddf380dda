"""Even out kept-alive connections across the server processes (`serve --processes N`).

uvicorn's processes accept from one shared listening socket, and the kernel
hands each new connection to whichever process wakes first. A kept-alive
client then stays with that process for good, so 8 clients on 2 processes
fall 4/4, 5/3 or 6/2 by chance, and with 6/2 one core queues six requests
while the other idles: the p99 of `serve_bench` went from about 100 ms at
4/4 to about 150 ms at 6/2 (docs/serving.md).

`ConnectionTable` is a small file-backed table shared by the processes:
one slot per process holding its pid and its number of open connections,
each slot written only by its own process. A process whose open
connections, less those it has already asked to close, exceed its share
(`ceil(all open connections / processes)`, not counting processes known
to have died) answers the request it is
reading with `Connection: close`; the client reconnects, and the kernel
places the new connection again, until no process is over its share. It
costs a surplus client one TCP connect per rebalance, nothing otherwise.

The table lives in a temporary file that `serving.server.run` creates
before it starts the processes and removes when they have stopped; each
process finds it through `BALANCE_ENV` and claims a slot under an advisory
file lock (a free slot, or that of a process no longer alive, as when
uvicorn restarts a dead process). Where `fcntl` or `mmap` is missing the
service runs unbalanced, as before.
"""

import contextlib
import math
import mmap
import os
import tempfile

from neipalette_tf.core.staging import pid_alive

try:
    import fcntl
except ImportError:  # Windows has no fcntl: its processes stay unbalanced
    fcntl = None

BALANCE_ENV = "NEIPALETTE_SERVE_BALANCE"
SLOT = 2  # int64s per slot: pid, open connections (after one header cell: the number of processes)


def _alive(pid):
    return pid > 0 and pid_alive(pid)


@contextlib.contextmanager
def shared_table(processes):
    """Create the table file for `processes` processes, export its path in `BALANCE_ENV`, remove it on exit.

    Yields the path, or None where balancing is unavailable (no `fcntl`) or pointless (one process).
    """
    if processes < 2 or fcntl is None:
        yield None
        return
    slots = 2 * processes  # room for restarted processes before their dead slots are reclaimed
    fd, path = tempfile.mkstemp(prefix="neipalette-serve-", suffix=".balance")
    try:
        os.write(fd, processes.to_bytes(8, "little", signed=True) + bytes(8 * SLOT * slots))
        os.close(fd)
        os.environ[BALANCE_ENV] = path
        yield path
    finally:
        os.environ.pop(BALANCE_ENV, None)
        with contextlib.suppress(OSError):
            os.unlink(path)


class ConnectionTable:
    """This process's slot in the shared table, and the balancing decision (module doc)."""

    def __init__(self, path, pid=None):
        self.pid = os.getpid() if pid is None else pid
        with open(path, "r+b") as f:
            self._map = mmap.mmap(f.fileno(), 0)
            self.processes = int.from_bytes(self._map[:8], "little", signed=True)
            self._cells = memoryview(self._map)[8:].cast("q")
            self.slots = len(self._cells) // SLOT
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                self.slot = self._claim()
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
        self.open = 0     # this process's open connections
        self.closing = 0  # of which asked to close after their current answer

    def _claim(self):
        cells = self._cells
        for i in range(self.slots):
            if cells[SLOT * i] == self.pid:
                break
        else:
            i = next((i for i in range(self.slots) if not _alive(cells[SLOT * i])), None)
            if i is None:
                raise RuntimeError("no free slot in the connection table")
        cells[SLOT * i] = self.pid
        cells[SLOT * i + 1] = 0
        return i

    @classmethod
    def from_env(cls):
        """The table named by `BALANCE_ENV`, or None (unset, or it cannot be opened: run unbalanced)."""
        path = os.environ.get(BALANCE_ENV)
        if not path or fcntl is None:
            return None
        try:
            return cls(path)
        except (OSError, ValueError, RuntimeError):
            return None

    def _publish(self):
        self._cells[SLOT * self.slot + 1] = self.open

    def opened(self):
        self.open += 1
        self._publish()

    def closed(self, was_closing):
        self.open -= 1
        self.closing -= bool(was_closing)
        self._publish()

    def share(self):
        """`ceil(open connections / processes)`: the processes started, less those whose slot names a pid
        no longer alive (one that has not taken a connection yet has not claimed a slot, and counts)."""
        cells, total, dead = self._cells, self.open, 0
        for i in range(self.slots):
            pid = cells[SLOT * i]
            if pid and pid != self.pid:
                if _alive(pid):
                    total += cells[SLOT * i + 1]
                else:
                    dead += 1
        return math.ceil(total / max(1, self.processes - dead))

    def should_close(self):
        """True when this process holds more than its share of connections, not counting those already
        asked to close; the caller then answers its current request with `Connection: close`."""
        if self.open - self.closing <= self.share():
            return False
        self.closing += 1
        return True
