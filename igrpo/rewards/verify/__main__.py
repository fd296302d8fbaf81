"""Probe the answer verifier without training.

    python -m igrpo.rewards.verify [--budget S] [--workers N] < pairs.jsonl

reads one JSON object per line, ``{"reference": ..., "candidate": ...}`` (strings; ``candidate`` may be null), and
writes one line per non-empty input line, in order: ``{"equal": bool, "seconds": float}``, or ``{"error": "..."}`` for a
line that is not such an object (the other lines are still answered). This contract is stable.

    python -m igrpo.rewards.verify --bench [--threads 8] [--rounds 3]

times a fixed mix of answers (fast-path, sympy, structurally refused, and one that exceeds the budget) from
several threads and prints p50/p95/max call times.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from igrpo.rewards.verify import MathVerifier

# (reference, candidate) pairs for --bench: ordinary answers of every path, plus inputs that stress the caps.
BENCH_PAIRS = [
    ("42", "42"), ("0.5", r"\frac{1}{2}"), (r"\{1,2\}", r"\{2,1\}"), (r"2\pi", r"\pi \cdot 2"),
    (r"\sqrt{2}", "1.41421356"), ("1000", "1e3"), (r"5\text{ m}", r"5\text{ km}"), ("1", "{{{{{1}}}}}"),
    ("[0,1)", "[0,1)"), (r"\frac{3}{4}", "0.75"), ("x^2+1", "1+x^2"), (r"\binom{5}{2}", "10"),
    ("5", "((((((((((((1))))))))))))"), ("5", "(9999!)!"), ("5", "10^{10^{10}}"),
]
SLOW_PAIR = ("5", r"\binom{9999999}{4999999}")  # passes the structural cap; sympy needs far longer than any budget


def _answer(verifier: MathVerifier, line: str) -> dict:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as err:
        return {"error": f"line is not JSON: {err.msg}"}
    if not isinstance(item, dict) or not isinstance(item.get("reference"), str) \
            or not isinstance(item.get("candidate"), (str, type(None))):
        return {"error": 'each line must be an object {"reference": string, "candidate": string or null}'}
    start = time.perf_counter()
    equal = verifier.equivalent(item["candidate"], item["reference"])
    return {"equal": equal, "seconds": round(time.perf_counter() - start, 4)}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _bench(verifier: MathVerifier, threads: int, rounds: int) -> None:
    pairs = (BENCH_PAIRS * rounds) + [SLOW_PAIR]
    pairs = pairs[len(pairs) // 2:] + pairs[:len(pairs) // 2]  # the slow call lands mid-run, not last

    def timed(pair):
        start = time.perf_counter()
        verifier.equivalent(pair[1], pair[0])
        return time.perf_counter() - start

    with ThreadPoolExecutor(max_workers=threads) as pool:
        seconds = list(pool.map(timed, pairs))
    s = verifier.stats
    print(f"verify bench: {len(seconds)} calls from {threads} threads, budget {verifier.time_budget_s:g}s, "
          f"{verifier._pool.size} workers")
    print(f"  p50 {_percentile(seconds, 0.5):.4f}s  p95 {_percentile(seconds, 0.95):.4f}s  max {max(seconds):.4f}s")
    print(f"  fast_path {s.fast_path}  refused {s.rejected_pathological}  unit_mismatches {s.unit_mismatches}  "
          f"timeouts {s.timeouts} (queue {s.queue_timeouts})  worker_starts {s.worker_starts}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m igrpo.rewards.verify", description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=2.0, help="seconds per call, waiting included (default 2)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--bench", action="store_true", help="time a fixed answer mix instead of reading stdin")
    parser.add_argument("--threads", type=int, default=8, help="--bench: calling threads (default 8)")
    parser.add_argument("--rounds", type=int, default=3, help="--bench: repetitions of the mix (default 3)")
    args = parser.parse_args(argv)
    for name in ("budget", "workers", "threads", "rounds"):
        if not getattr(args, name) > 0:
            parser.error(f"--{name}={getattr(args, name)} is not valid; it must be > 0")
    with MathVerifier(time_budget_s=args.budget, workers=args.workers) as verifier:
        verifier.start()
        if args.bench:
            _bench(verifier, args.threads, args.rounds)
            return 0
        for line in sys.stdin:
            if line.strip():
                print(json.dumps(_answer(verifier, line)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
