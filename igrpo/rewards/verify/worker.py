"""The worker process's side: one JSON request per stdin line, one JSON reply per stdout line.

Runs only in a subprocess started by ``igrpo.rewards.verify.pool`` (``python -c WORKER_BOOT``). math_verify's own signal
timeouts are off (they work in a main thread only); the parent bounds each call by killing this process.
Model output is only ever parsed by math_verify, never evaluated.
"""

from __future__ import annotations

import json
import os
import sys

WORKER_BOOT = "from igrpo.rewards.verify.worker import main; main()"
_WORKER_MEMORY_BYTES = 4 << 30  # a runaway sympy computation gets a MemoryError instead of swapping the host
READY = "ready"


def main() -> None:
    """Answer requests until stdin closes (the parent exited or closed the pool)."""
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
    # Warm up before "ready": the first parse builds math_verify's LaTeX grammar (~0.4 s idle, seconds on a busy
    # machine), which would otherwise be charged to the first real request's budget.
    handle({"gold": "\\frac{1}{2}", "pred": "x^2+\\sqrt{2}"})
    protocol.write(READY + "\n")
    for line in sys.stdin:
        try:
            reply = handle(json.loads(line))
        except BaseException:  # noqa: BLE001  math_verify's TimeoutException is a BaseException
            reply = {"eq": False, "gold_ok": False, "pred_ok": False}
        protocol.write(json.dumps(reply) + "\n")


def handle(request: dict) -> dict:
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
