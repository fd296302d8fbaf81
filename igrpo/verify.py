"""Robust math answer equivalence for the binary reward on MATH/AIME-style answers.

``MathVerifier.equivalent(predicted, gold)`` decides in three stages: (1) pathological inputs (too long, nested too
deep, exponent towers or huge exponent literals) are rejected before any parsing, since they are model output that
could pin a core in sympy for minutes or exhaust memory; (2) a fast path settles the common cases without sympy:
identical text after light LaTeX normalisation, two plain integers/decimals (compared exactly), two plain-text
answers ("east", "(B)") -- on the embedded arithmetic task every answer takes this path; (3) everything else goes
to ``math_verify``: both sides are wrapped as ``$\\boxed{...}$``, parsed, and compared by ``verify(gold, pred)``.

Why a worker process: math_verify bounds its own work with ``signal.alarm``, which only works in the main thread
(and raises a ``BaseException``), but rewards are also computed from trainer/evaluator threads, and a running sympy
computation cannot be interrupted from inside the process. So math_verify's timeouts are switched off and it runs
in a persistent subprocess, started on first use. A call waits at most ``time_budget_s`` for its reply; on overrun
the worker is killed, a replacement is started at once, and the call returns False. Calls share the one worker and
are serialised; the first call also waits for the worker's sympy import (``start()`` pays that up front).
Model output is only ever parsed by math_verify, never evaluated.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import subprocess
import sys
import threading
import time
import weakref
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

_STARTUP_TIMEOUT_S = 60.0  # importing sympy on a busy 2-core machine can take several seconds
_WORKER_MEMORY_BYTES = 4 << 30  # a runaway sympy computation gets a MemoryError instead of swapping the host
_WORKER_BOOT = "from igrpo.verify import _worker_main; _worker_main()"

# Pathological inputs: exponent literals of 5+ digits (2^{999999999}, x**12345) and numeric exponent towers
# (10^{10^{10}}, 9**9**9**9). A symbolic tower such as 2^{2^n} is a legitimate answer and stays allowed.
_POW = r"(?:\^|\*\*)\s*\{?\s*\(?\s*"
_HUGE_EXPONENT = re.compile(_POW + r"[-+]?\d{5,}")
_NUMERIC_TOWER = re.compile(_POW + r"\d+\s*\}?\s*" + _POW + r"\d")

# Normalisation that never changes the value of an answer.
_DOLLARS = re.compile(r"\\\$|\$")  # currency \$ and math-mode delimiters
_SPACING = re.compile(r"\\left\b|\\right\b|(?<!\\)\\[!,;: ]|~")  # not the "\\ " row break of a matrix
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|°")
_PERCENT = re.compile(r"\\?%")  # "50\%" is graded as 50, matching math_verify's own "$50\%$" -> 50
_THOUSANDS = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_TEXT_WRAPPER = re.compile(r"\\(?:text|textbf|textit|textrm|mathrm|mathbf|mbox)\s*\{([^{}]*)\}")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)")
_CHOICE = re.compile(r"\(([A-Za-z])\)|([A-E])")  # multiple-choice letter: "(b)", "(B)", "B"
_WORD = re.compile(r"[A-Za-z]{2,}")  # "east", "yes", "undefined"; spaces were removed by _key


@dataclass
class VerifyStats:
    calls: int = 0  # equivalent() calls
    fast_path: int = 0  # decided without sympy
    timeouts: int = 0  # worker killed after time_budget_s
    rejected_pathological: int = 0  # refused before any parsing
    parse_failures: int = 0  # a side math_verify could not parse (or that crashed the worker)
    worker_starts: int = 0  # worker processes started (1 + restarts)


def brace_depth(text: str) -> int:
    """Deepest nesting of ``{([`` brackets (mixed kinds count together, so ``[0,1)`` is depth 1)."""
    depth = deepest = 0
    for ch in text:
        if ch in "{([":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "})]":
            depth -= 1
    return deepest


def _unbalanced_braces(text: str) -> bool:
    """LaTeX groups that never close (``\\frac{1}{``) cannot parse; escaped ``\\{ \\}`` are set braces."""
    plain = text.replace("\\{", "").replace("\\}", "")
    depth = 0
    for ch in plain:
        depth += (ch == "{") - (ch == "}")
        if depth < 0:
            return True
    return depth != 0


def clean_answer(text: str) -> str:
    """Value-preserving cleanup; the result is what math_verify sees."""
    text = _DOLLARS.sub("", text.strip())
    text = _SPACING.sub("", text).replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    text = _PERCENT.sub("", _DEGREES.sub("", text)).replace("{,}", ",").strip()
    text = re.sub(r"\.\s*$", "", text).strip()  # sentence-final period: "12." is 12
    if _THOUSANDS.fullmatch(text):
        text = text.replace(",", "")
    return text


def _key(cleaned: str) -> str:
    """Comparison key for the fast path: no ``\\text{}``-style wrappers, no whitespace."""
    for _ in range(3):  # nested wrappers such as \textbf{\text{B}}
        cleaned = _TEXT_WRAPPER.sub(r"\1", cleaned)
    return re.sub(r"\s+", "", cleaned)


def _text_answer(key: str) -> str | None:
    """Canonical form of a plain-text answer (choice letter or word), None for anything mathematical."""
    choice = _CHOICE.fullmatch(key)
    if choice:
        return (choice.group(1) or choice.group(2)).upper()
    return key.lower() if _WORD.fullmatch(key) else None


def fast_decision(pred: str, gold: str) -> bool | None:
    """Decide cleaned answers without sympy where that is safe, else None."""
    a, b = _key(pred), _key(gold)
    if a == b:
        return True
    if _NUMBER.fullmatch(a) and _NUMBER.fullmatch(b):
        return Decimal(a) == Decimal(b)  # exact: "0.5" == "0.50", "-3" == "-3.0"
    text_a, text_b = _text_answer(a), _text_answer(b)
    if text_a is not None and text_b is not None:
        return text_a == text_b  # as words, not as products of symbols ("east" is not "teas")
    return None


class MathVerifier:
    """Answer equivalence with a per-call time budget enforced by a killable worker process."""

    def __init__(self, time_budget_s: float = 2.0, max_answer_chars: int = 1000, max_brace_depth: int = 30):
        self.time_budget_s = time_budget_s
        self.max_answer_chars = max_answer_chars
        self.max_brace_depth = max_brace_depth
        self.stats = VerifyStats()
        self._lock = threading.Lock()  # one request at a time on the worker's pipes
        self._stats_lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._finalizer: weakref.finalize | None = None
        self._selector: selectors.BaseSelector | None = None
        self._ready = False
        self._buf = b""

    # ---- public API ----
    def equivalent(self, predicted: str | None, gold: str) -> bool:
        """True when ``predicted`` (an extracted final answer, or None) equals the reference ``gold``."""
        self._bump("calls")
        if predicted is None or gold is None:
            return False
        if self.is_pathological(predicted) or self.is_pathological(gold):
            self._bump("rejected_pathological")
            return False
        pred, ref = clean_answer(predicted), clean_answer(gold)
        if not _key(pred) or not _key(ref) or _unbalanced_braces(pred) or _unbalanced_braces(ref):
            self._bump("parse_failures")  # empty, or a group that never closes ("\\frac{1}{"): cannot parse
            return False
        decided = fast_decision(pred, ref)
        if decided is not None:
            self._bump("fast_path")
            return decided
        reply = self._ask({"gold": ref, "pred": pred})
        if reply is None:
            return False
        if not (reply["gold_ok"] and reply["pred_ok"]):
            self._bump("parse_failures")
        return bool(reply["eq"])

    def gold_is_gradeable(self, gold: str) -> bool:
        """False when the reference is empty or neither a plain-text answer nor parseable math."""
        if gold is None or not str(gold).strip() or self.is_pathological(str(gold)):
            return False
        ref = clean_answer(str(gold))
        key = _key(ref)
        if not key or _unbalanced_braces(ref):
            return False
        if _NUMBER.fullmatch(key) or _text_answer(key) is not None:
            return True
        reply = self._ask({"gold": ref})
        return bool(reply and reply["gold_ok"])

    def is_pathological(self, text: str) -> bool:
        """Too long, nested too deep, or asking for an astronomically large number."""
        return (len(text) > self.max_answer_chars or brace_depth(text) > self.max_brace_depth
                or bool(_HUGE_EXPONENT.search(text)) or bool(_NUMERIC_TOWER.search(text)))

    def start(self) -> None:
        """Start the worker now, so that the first call does not wait for the sympy import."""
        with self._lock:
            self._ensure_ready()

    def close(self) -> None:
        """Stop the worker (a later call starts a new one)."""
        with self._lock:
            self._stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _bump(self, counter: str) -> None:
        with self._stats_lock:
            setattr(self.stats, counter, getattr(self.stats, counter) + 1)

    # ---- worker management (the methods below run with self._lock held) ----

    def _ask(self, request: dict) -> dict | None:
        """Send one request; the reply, or None after a timeout or a worker crash (the worker is replaced)."""
        with self._lock:
            self._ensure_ready()
            deadline = time.monotonic() + self.time_budget_s
            try:
                data = memoryview((json.dumps(request) + "\n").encode())
                while data:  # a pipe write may be partial
                    data = data[os.write(self._proc.stdin.fileno(), data):]
                line, failure = self._read_line(deadline), "timeouts"
            except (OSError, EOFError):  # the worker died on this input (e.g. hit its memory limit)
                line, failure = None, "parse_failures"
            except BaseException:  # Ctrl-C mid-request: the late reply would answer the next call, so drop the worker
                self._stop()
                raise
            if line is None:
                self._bump(failure)
                self._stop()
                self._spawn()  # the replacement imports sympy while the caller moves on
                return None
            return json.loads(line)

    def _spawn(self) -> None:
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parent.parent)  # so the child imports this very igrpo package
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        proc = subprocess.Popen([sys.executable, "-c", _WORKER_BOOT], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, bufsize=0, env=env, close_fds=True)
        # Runs on close(), when the verifier is garbage-collected, or at interpreter exit (atexit).
        self._finalizer = weakref.finalize(self, _stop_process, proc, os.getpid())
        self._selector = selectors.DefaultSelector()  # poll/epoll: no FD_SETSIZE limit, unlike select()
        self._selector.register(proc.stdout, selectors.EVENT_READ)
        self._proc, self._ready, self._buf = proc, False, b""
        self._bump("worker_starts")

    def _ensure_ready(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            self._stop()
            self._spawn()
        if not self._ready:
            try:
                line = self._read_line(time.monotonic() + _STARTUP_TIMEOUT_S)
            except (OSError, EOFError):
                line = None
            if line != "ready":
                self._stop()
                raise RuntimeError("igrpo.verify: the math_verify worker process failed to start")
            self._ready = True

    def _read_line(self, deadline: float) -> str | None:
        """Next line from the worker, or None at the deadline; EOFError when the worker is gone."""
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._selector.select(remaining):
                return None
            chunk = os.read(self._proc.stdout.fileno(), 65536)
            if not chunk:
                raise EOFError("math_verify worker exited")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode()

    def _stop(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # kills and reaps the process; idempotent
        if self._selector is not None:
            self._selector.close()
        self._proc = self._finalizer = self._selector = None
        self._ready, self._buf = False, b""


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


# ---- worker side: runs in the subprocess only ----
def _worker_main() -> None:
    """Answer one JSON request per stdin line with one JSON reply per line, until stdin closes."""
    import logging
    import signal
    import warnings

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which then kills us
    try:
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (_WORKER_MEMORY_BYTES, _WORKER_MEMORY_BYTES))
    except (ImportError, ValueError, OSError):  # not on this platform: the time budget still applies
        pass
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints from libraries go to stderr and cannot corrupt the protocol
    sys.stdout = sys.stderr
    logging.disable(logging.WARNING)  # math_verify warns that its timeouts are off; we enforce our own
    warnings.simplefilter("ignore")
    import math_verify  # noqa: F401  (import before "ready" so the first request is not charged for it)

    protocol.write("ready\n")
    for line in sys.stdin:
        try:
            reply = _handle(json.loads(line))
        except BaseException:  # noqa: BLE001  math_verify's TimeoutException is a BaseException
            reply = {"eq": False, "gold_ok": False, "pred_ok": False}
        protocol.write(json.dumps(reply) + "\n")


def _handle(request: dict) -> dict:
    """Parse ``$\\boxed{...}$``-wrapped answers with math_verify's signal timeouts off, then verify(gold, pred)."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    config = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]
    parsed = {side: parse(f"$\\boxed{{{text}}}$", extraction_config=config, parsing_timeout=None)
              for side, text in request.items()}
    # ok = math_verify produced a sympy object, not just its raw-string fallback
    ok = {side: any(not isinstance(item, str) for item in items) for side, items in parsed.items()}
    gold, pred = parsed["gold"], parsed.get("pred")
    equal = bool(gold and pred and verify(gold, pred, timeout_seconds=None))
    return {"eq": equal, "gold_ok": ok["gold"], "pred_ok": ok.get("pred", False)}
