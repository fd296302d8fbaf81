"""A small pool of killable math_verify worker processes, shared by threads.

Why processes: a running sympy computation cannot be interrupted from inside the process, and math_verify's own
timeouts use ``signal.alarm`` (main thread only). So each call goes to a worker process that is killed when the
caller's deadline passes.

Why a pool: with one worker, a slow input stalls every other caller behind it, and after a kill the next call
waits for the replacement to import sympy. Here a call waits only for *a* free worker, within its own deadline;
a killed worker is replaced by a background thread while the others keep serving.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path
from typing import Callable

from igrpo.rewards.verify.worker import READY, WORKER_BOOT

STARTUP_TIMEOUT_S = 60.0  # importing sympy on a busy 2-core machine can take several seconds


class WorkerStartError(RuntimeError):
    """The math_verify worker processes could not be started (e.g. math_verify is not installed)."""


class Worker:
    """One worker process and its pipes; used by one caller at a time (the pool hands it out)."""

    def __init__(self, generation: int) -> None:
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[3])  # so the child imports this very igrpo package
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        env["OMP_NUM_THREADS"] = "1"  # sympy needs no BLAS threads
        self.generation = generation
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER_BOOT], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, bufsize=0, env=env, close_fds=True)
        # Runs on kill(), when the worker is garbage-collected, or at interpreter exit (atexit).
        self._finalizer = weakref.finalize(self, _stop_process, self.proc, os.getpid())
        self._selector = selectors.DefaultSelector()  # poll/epoll: no FD_SETSIZE limit, unlike select()
        self._selector.register(self.proc.stdout, selectors.EVENT_READ)
        self._buf = b""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout_s: float) -> bool:
        """Whether the worker imported math_verify and said so within ``timeout_s``."""
        try:
            return self._read_line(time.monotonic() + timeout_s) == READY
        except (OSError, EOFError):
            return False

    def ask(self, request: dict, deadline: float) -> dict | None:
        """The reply, or None at ``deadline``; OSError/EOFError when the worker died on this input."""
        data = memoryview((json.dumps(request) + "\n").encode())
        while data:  # a pipe write may be partial
            data = data[os.write(self.proc.stdin.fileno(), data):]
        line = self._read_line(deadline)
        return None if line is None else json.loads(line)

    def kill(self) -> None:
        self._finalizer()  # kills and reaps the process; idempotent
        self._selector.close()

    def _read_line(self, deadline: float) -> str | None:
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._selector.select(remaining):
                return None
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                raise EOFError("math_verify worker exited")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode()


class WorkerPool:
    """``size`` workers; ``acquire`` waits for a free one until a deadline, ``discard`` replaces one in the background.

    ``close`` bumps a generation counter: workers of an older generation are killed when they come back or finish
    booting, so a closed pool leaves no process behind, and a later call starts a fresh pool.
    """

    def __init__(self, size: int, on_start: Callable[[], None] = lambda: None) -> None:
        if size < 1:
            raise ValueError(f"workers={size} is not valid; it must be >= 1")
        self.size = size
        self._on_start = on_start
        self._cond = threading.Condition()
        self._start_lock = threading.Lock()
        self._idle: list[Worker] = []
        self._alive: set[Worker] = set()  # idle and busy workers of the current generation
        self._booting = 0  # replacements being started in the background
        self._generation = 0
        self._started = False

    def start(self) -> None:
        """Start all workers and wait until they are ready (the first call's one-off cost, outside any budget)."""
        with self._start_lock:
            if self._started:
                return
            with self._cond:
                generation = self._generation
            workers = [self._spawn(generation) for _ in range(self.size)]  # import sympy in parallel
            if not all(w.wait_ready(STARTUP_TIMEOUT_S) for w in workers):
                for w in workers:
                    w.kill()
                raise WorkerStartError("igrpo.rewards.verify: the math_verify worker process failed to start")
            with self._cond:
                self._idle.extend(workers)
                self._alive.update(workers)
                self._started = True
                self._cond.notify_all()

    def acquire(self, deadline: float) -> Worker | None:
        """A free worker, or None when none became free before ``deadline``."""
        with self._cond:
            while not self._idle:
                if not self._alive and not self._booting:
                    raise WorkerStartError("igrpo.rewards.verify: no math_verify worker is left (replacements failed to start)")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
            return self._idle.pop()

    def release(self, worker: Worker) -> None:
        """Give a healthy worker back."""
        with self._cond:
            if worker.generation == self._generation:
                self._idle.append(worker)
                self._cond.notify()
                return
        worker.kill()  # the pool was closed while it was busy

    def discard(self, worker: Worker) -> None:
        """Kill a worker (timed out, crashed, or interrupted mid-request) and start its replacement in the background."""
        worker.kill()
        with self._cond:
            self._alive.discard(worker)
            if worker.generation != self._generation:
                return
            self._booting += 1
        threading.Thread(target=self._replace, args=(worker.generation,), name="verify-worker-boot",
                         daemon=True).start()

    def close(self) -> None:
        """Kill every worker; a later ``start`` (or call) starts new ones."""
        with self._start_lock, self._cond:
            self._generation += 1
            idle, self._idle = self._idle, []
            self._alive.difference_update(idle)
            busy, self._alive = self._alive, set()  # killed by release() when their callers give them back
            self._booting = 0
            self._started = False
            self._cond.notify_all()
        for w in idle:
            w.kill()
        del busy

    def pids(self) -> list[int]:
        """Process ids of the current workers (idle and busy), for tests and diagnostics."""
        with self._cond:
            return sorted(w.pid for w in self._alive)

    def _spawn(self, generation: int) -> Worker:
        worker = Worker(generation)
        self._on_start()
        return worker

    def _replace(self, generation: int) -> None:
        worker = self._spawn(generation)
        ready = worker.wait_ready(STARTUP_TIMEOUT_S)
        with self._cond:
            current = generation == self._generation
            if current:
                self._booting -= 1
            if ready and current:
                self._idle.append(worker)
                self._alive.add(worker)
            self._cond.notify_all()  # also wakes waiters when the replacement failed, so they can give up
        if not (ready and current):
            worker.kill()


def _stop_process(proc: subprocess.Popen, owner_pid: int) -> None:
    """Kill and reap (no zombie) a worker; only the process that started it may do so (not a forked child)."""
    if os.getpid() != owner_pid:
        return
    try:
        proc.kill()
        proc.wait(timeout=10)
        proc.stdin.close()
        proc.stdout.close()
    except (OSError, subprocess.TimeoutExpired):
        pass
