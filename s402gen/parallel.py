"""The services' own files rendered by forked worker processes (``build --jobs N``).

A cold build renders three files per service (route module, catalog entry, doc
page): most of its CPU time, and independent from service to service. A
:class:`Farm` forks ``N`` workers once the catalog has compiled: they inherit
the IR and the compiled templates (copy on write; the parent's objects are
frozen out of the collector first, so that a collection does not copy them).
The work is a list of passes, each a list of service positions and the function
that renders one; worker ``k`` of ``N`` takes positions ``k, k + N, ...`` of each
pass in turn and sends every result, in order, down its own pipe. The parent
reads them back in exactly the serial order (:meth:`Farm.take`), so the output,
the order of the files and the first error are those of a serial render. During
a build a worker also hashes, compares and stages its files itself
(:class:`s402gen.write.Stager`: the same no-follow writes into the build's
staging folder) and sends only the outcome; the parent classifies them and
commits through the journal as before.

A result or an exception is pickled; a worker stops after its first exception,
which the parent raises at that file's place in the stream. A pipe holds up to
:data:`PIPE_BYTES` of results ahead of the parent, so memory stays bounded
whatever the catalog's size. Workers ignore Ctrl-C (the parent handles it), die
with the parent (``PR_SET_PDEATHSIG`` on Linux; elsewhere at their next write, on
a closed pipe), and are killed and reaped when the parent stops reading
(:meth:`Farm.close`), on success or failure.

The price is memory: a worker ends up with private copies of much of the
parent's heap (reference counts written, freed slots reused), measured at about
40 MiB a worker at 2,000 services and 190 MiB at 10,000 (proportional set size);
``--jobs 1`` forks none.
"""

from __future__ import annotations

import gc
import os
import pickle
import signal
import sys
from multiprocessing.connection import Connection
from typing import Any, Callable, Sequence

PIPE_BYTES = 1 << 20
"""Bytes a worker's pipe holds before the worker waits for the parent (Linux; elsewhere the
system's default)."""

_F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ (Python 3.10+ on Linux)
_PR_SET_PDEATHSIG = 1

Pass = tuple[str, Sequence[int], Callable[[int], Any]]
"""``(name, service positions, render one)``: one kind of file of some services."""


def default_jobs() -> int:
    """The CPUs this process may run on (what ``--jobs`` defaults to)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def available() -> bool:
    """True where workers can be forked (POSIX)."""
    return hasattr(os, "fork")


class WorkerFailed(RuntimeError):
    """A worker stopped without sending what it owed (killed, out of memory)."""


class Farm:
    """``jobs`` forked workers running ``passes``; read their results with :meth:`take`,
    in each pass's order, passes in order; always :meth:`close` (a context manager).

    Raises ``OSError`` when a pipe or a process cannot be made.
    """

    def __init__(self, jobs: int, passes: list[Pass]):
        self._passes = {name: len(positions) for name, positions, _ in passes}
        self._taken = {name: 0 for name in self._passes}
        self._workers: list[tuple[int, Connection]] = []
        parent = os.getpid()
        gc.freeze()  # the inherited objects stay out of the collector: no copy on write
        try:
            for k in range(jobs):
                reader, writer = _pipe()
                pid = os.fork()
                if pid == 0:  # the worker
                    reader.close()
                    for _, other in self._workers:
                        other.close()
                    _work(k, jobs, passes, writer, parent)  # never returns
                writer.close()
                self._workers.append((pid, reader))
        except BaseException:
            self.close()
            raise
        finally:
            gc.unfreeze()

    def take(self, name: str) -> Any:
        """The next result of pass ``name``; raises what rendering it raised, or
        :class:`WorkerFailed`."""
        position = self._taken[name]
        self._taken[name] = position + 1
        pid, reader = self._workers[position % len(self._workers)]
        try:
            tag, sent_name, payload = pickle.loads(reader.recv_bytes())
        except (EOFError, OSError):
            raise WorkerFailed(f"render worker {pid} stopped before its work was done") from None
        if tag == "error":
            raise payload
        assert sent_name == name, (sent_name, name)
        return payload

    def close(self) -> None:
        """Stop every worker (whether done or not) and reap it (idempotent)."""
        for pid, reader in self._workers:
            reader.close()
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid, _ in self._workers:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        self._workers = []

    def __enter__(self) -> Farm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pipe() -> tuple[Connection, Connection]:
    read_fd, write_fd = os.pipe()
    if sys.platform.startswith("linux"):
        import fcntl

        try:
            fcntl.fcntl(write_fd, _F_SETPIPE_SZ, PIPE_BYTES)
        except OSError:
            pass  # over /proc/sys/fs/pipe-max-size: the default then
    return Connection(read_fd, writable=False), Connection(write_fd, readable=False)


def _work(k: int, jobs: int, passes: list[Pass], writer: Connection, parent: int) -> None:
    """Worker ``k``'s share of ``passes``, sent down ``writer``; exits the process."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _die_with(parent)
        for name, positions, render in passes:
            for position in positions[k::jobs]:
                try:
                    result = ("ok", name, render(position))
                except Exception as exc:  # the parent raises it at this file's place
                    writer.send_bytes(_pickled_error(name, exc))
                    return
                writer.send_bytes(pickle.dumps(result, pickle.HIGHEST_PROTOCOL))
    except BaseException:  # the parent went away (a closed pipe), or was interrupted
        code = 1
    finally:
        os._exit(code)


def _pickled_error(name: str, exc: Exception) -> bytes:
    try:
        return pickle.dumps(("error", name, exc), pickle.HIGHEST_PROTOCOL)
    except Exception:  # an exception that does not pickle: its type and message
        stand_in = RuntimeError(f"{type(exc).__name__}: {exc}")
        return pickle.dumps(("error", name, stand_in), pickle.HIGHEST_PROTOCOL)


def _die_with(parent: int) -> None:
    """Have the kernel kill this worker when its parent dies (Linux); exit now if it has."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:
        os._exit(1)
