"""Robust math answer equivalence for the binary reward on MATH/AIME-style answers.

``MathVerifier.equivalent(predicted, gold)`` decides in four stages:

1. *Structural refusal* (``normalize.structural_problem``): answers too long, nested too deep (bare groups are
   capped tighter than command arguments, since they are what makes parsing slow), or asking for astronomically
   large numbers (huge exponent or factorial literals, numeric exponent towers, nested factorials) are graded
   wrong before any parsing. The cap is deterministic and linear in the answer's length, so the grade of a merely
   nested answer never depends on machine load.
2. *Units*: when both sides end in a unit (``5\\text{ m}``, ``5\\text{ km}``) and the units differ, they are not equal.
3. *Fast path* (no sympy): identical text after value-preserving normalisation (``normalize.clean_answer``: redundant
   braces, ``1e3`` -> ``1000``, thousands separators ...), two plain numbers (exact decimal comparison), two
   plain-text answers ("east", "(B)"). On the embedded arithmetic task every answer takes this path.
4. *math_verify* in a worker process from a small pool (``igrpo.rewards.verify.pool``): the whole call, waiting for a free
   worker included, is bounded by ``time_budget_s``; on overrun the worker is killed and replaced in the
   background, and the answer is graded wrong.

``python -m igrpo.rewards.verify`` reads ``{"reference", "candidate"}`` JSON lines and writes ``{"equal", "seconds"}``
(``--bench`` for timing percentiles). Model output is only ever parsed by math_verify, never evaluated.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from igrpo.rewards.verify.normalize import (
    brace_depth,
    clean_answer,
    fast_decision,
    is_number,
    key,
    split_unit,
    structural_problem,
    text_answer,
    unbalanced_braces,
    units_conflict,
)
from igrpo.rewards.verify.pool import WorkerPool, WorkerStartError

_CACHE_SIZE = 4096  # replies kept (a few hundred bytes each)

__all__ = ["MathVerifier", "VerifyStats", "WorkerStartError", "brace_depth", "clean_answer", "fast_decision"]


@dataclass
class VerifyStats:
    calls: int = 0  # equivalent() calls
    fast_path: int = 0  # decided without sympy
    timeouts: int = 0  # no reply within time_budget_s (the worker was killed and replaced)
    queue_timeouts: int = 0  # of those: no worker became free within the budget (all busy or restarting)
    rejected_pathological: int = 0  # refused by the structural cap before any parsing
    unit_mismatches: int = 0  # both sides carry a unit and the units differ
    parse_failures: int = 0  # a side math_verify could not parse (or that crashed the worker)
    cache_hits: int = 0  # pairs answered from the cache of earlier math_verify replies
    worker_starts: int = 0  # worker processes started (initial pool + replacements)


class MathVerifier:
    """Answer equivalence with a per-call time budget enforced by a pool of killable worker processes."""

    def __init__(self, time_budget_s: float = 2.0, max_answer_chars: int = 1000, max_brace_depth: int = 12,
                 max_bare_depth: int = 5, workers: int = 2):
        self.time_budget_s = time_budget_s
        self.max_answer_chars = max_answer_chars
        self.max_brace_depth = max_brace_depth
        # math_verify's parse time grows by ~50-60 ms per bare level on an idle core, several times that on a busy
        # one; 5 levels keep the worst nested answer well inside a 2 s budget.
        self.max_bare_depth = max_bare_depth
        self.stats = VerifyStats()
        self._stats_lock = threading.Lock()
        self._pool = WorkerPool(workers, on_start=lambda: self._bump("worker_starts"))
        # math_verify replies by request: a group's completions often repeat an answer, and a reply never depends on
        # timing (timeouts are not cached), so this saves worker time without changing any grade.
        self._replies: OrderedDict[str, dict] = OrderedDict()
        self._replies_lock = threading.Lock()

    # ---- public API ----
    def equivalent(self, predicted: str | None, gold: str) -> bool:
        """True when ``predicted`` (an extracted final answer, or None) equals the reference ``gold``."""
        self._bump("calls")
        if predicted is None or gold is None:
            return False
        if len(predicted) > self.max_answer_chars or len(gold) > self.max_answer_chars:
            self._bump("rejected_pathological")
            return False
        pred, ref = clean_answer(predicted), clean_answer(gold)
        if self.refusal(pred) or self.refusal(ref):
            self._bump("rejected_pathological")
            return False
        if not key(pred) or not key(ref) or unbalanced_braces(pred) or unbalanced_braces(ref):
            self._bump("parse_failures")  # empty, or a group that never closes ("\\frac{1}{"): cannot parse
            return False
        (pred_value, pred_unit), (ref_value, ref_unit) = split_unit(pred), split_unit(ref)
        if units_conflict(pred_unit, ref_unit):
            self._bump("unit_mismatches")
            return False
        if pred_unit is not None and ref_unit is not None:  # same unit on both sides: compare the values
            pred, ref = pred_value, ref_value
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
        """False when the reference is empty, refused by the structural cap, or neither plain text nor parseable."""
        if gold is None or not str(gold).strip() or len(str(gold)) > self.max_answer_chars:
            return False
        ref = clean_answer(str(gold))
        if self.refusal(ref):
            return False
        answer_key = key(ref)
        if not answer_key or unbalanced_braces(ref):
            return False
        if is_number(answer_key) or text_answer(answer_key) is not None:
            return True
        reply = self._ask({"gold": ref})
        return bool(reply and reply["gold_ok"])

    def refusal(self, cleaned: str) -> str | None:
        """Why a cleaned answer is refused before parsing (``normalize.structural_problem``), or None."""
        return structural_problem(cleaned, self.max_brace_depth, self.max_bare_depth)

    def is_pathological(self, text: str) -> bool:
        """Too long, or refused by the structural cap."""
        return len(text) > self.max_answer_chars or self.refusal(clean_answer(text)) is not None

    def start(self) -> None:
        """Start the workers now, so that no call waits for the sympy import."""
        self._pool.start()

    def worker_pids(self) -> list[int]:
        """Process ids of the running workers."""
        return self._pool.pids()

    def close(self) -> None:
        """Stop the workers (a later call starts new ones)."""
        self._pool.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _bump(self, counter: str) -> None:
        with self._stats_lock:
            setattr(self.stats, counter, getattr(self.stats, counter) + 1)

    def _ask(self, request: dict) -> dict | None:
        """The worker's reply (cached), or None when the budget ran out (waiting included) or the worker died."""
        cache_key = json.dumps(request, sort_keys=True)
        with self._replies_lock:
            reply = self._replies.get(cache_key)
            if reply is not None:
                self._replies.move_to_end(cache_key)
        if reply is not None:
            self._bump("cache_hits")
            return reply
        reply = self._ask_worker(request)
        if reply is not None:
            with self._replies_lock:
                self._replies[cache_key] = reply
                if len(self._replies) > _CACHE_SIZE:
                    self._replies.popitem(last=False)
        return reply

    def _ask_worker(self, request: dict) -> dict | None:
        self._pool.start()  # the first use boots the pool: a one-off cost outside the budget
        deadline = time.monotonic() + self.time_budget_s
        worker = self._pool.acquire(deadline)
        if worker is None:
            self._bump("timeouts")
            self._bump("queue_timeouts")
            return None
        try:
            reply = worker.ask(request, deadline)
        except (OSError, EOFError):  # the worker died on this input (e.g. hit its memory limit)
            self._pool.discard(worker)
            self._bump("parse_failures")
            return None
        except BaseException:  # Ctrl-C mid-request: a late reply would answer the next call, so drop the worker
            self._pool.discard(worker)
            raise
        if reply is None:
            self._bump("timeouts")
            self._pool.discard(worker)
            return None
        self._pool.release(worker)
        return reply
