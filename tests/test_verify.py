"""MathVerifier against the real math_verify 0.9.0 (no mocks): equivalences, pathological inputs, worker timeouts.

Every pair below was first checked against what math_verify + our wrapper really return. Cases the task asked for
that math_verify alone does not support, and what the wrapper does about them:
- ``50\\%`` vs ``50``: math_verify cannot parse ``\\%`` inside ``\\boxed{}``; the wrapper strips percent signs, so a
  percentage equals its number (as math_verify itself does for ``$50\\%$``) and ``50\\%`` is NOT ``0.5``.
- ``east`` vs ``teas``: math_verify parses bare words as products of symbols (e*a*s*t), so anagrams would match;
  the wrapper compares two plain-text answers as words.
- ``12.`` vs ``12``: math_verify fails to parse a trailing period; the wrapper strips it.
- ``1e3`` vs ``1000``: math_verify reads ``1e3`` as 1*e*3 (so it would equal ``3e``); the wrapper expands a whole
  answer in scientific notation to its decimal value first.
- ``5\\text{ m}`` vs ``5\\text{ km}``: math_verify drops units; the wrapper refuses two different units (a unit on
  one side only is still ignored).
- ``{{{{{1}}}}}`` vs ``1``: redundant grouping braces are dropped before the structural cap, so the grade does not
  depend on how long nested parsing takes on a loaded machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from igrpo.rewards.verify import MathVerifier

ROOT = Path(__file__).resolve().parent.parent
BUDGET_S = 2.0

# (gold, predicted): equivalent, and asserted in both directions.
EQUIVALENT = [
    (r"\frac{1}{2}", "0.5"),
    (r"\frac{1}{2}", "1/2"),
    ("0.5", "1/2"),
    (r"\frac12", "0.5"),
    (r"\dfrac{3}{4}", "0.75"),
    (r"\dfrac{3}{4}", r"\frac{3}{4}"),
    (r"\frac{1}{2}", r"$\frac{1}{2}$"),
    ("0.50", ".5"),
    (r"\sqrt{2}/2", r"\frac{\sqrt{2}}{2}"),
    (r"\sqrt{8}", r"2\sqrt{2}"),
    (r"3\sqrt{3}", r"\sqrt{27}"),
    (r"\sqrt{2}", "1.41421356"),  # numeric comparison at math_verify's 6-digit rounding
    (r"2\pi", r"\pi \cdot 2"),
    (r"\{1,2\}", r"\{2,1\}"),
    ("1,2", "2,1"),
    ("[0, 1)", "[0,1)"),
    (r"(-\infty, 2]", r"(-\infty,2]"),
    (r"\left( 1, 2 \right)", "(1,2)"),
    (r"5 \text{ cm}", "5"),
    (r"12 \text{ apples}", "12"),
    (r"90^\circ", "90"),
    (r"90^{\circ}", "90"),
    (r"\$5", "5"),
    ("-3", "-3.0"),
    (r"-\frac{1}{2}", "-0.5"),
    (r"50\%", "50"),
    (r"\text{east}", "east"),
    (r"\text{East}", "east"),
    (r"\text{yes}", "yes"),
    ("(B)", "B"),
    (r"\text{(B)}", "B"),
    (r"\textbf{(B)}", "(B)"),
    ("(B)", "b"),
    ("1,000", "1000"),
    ("1,234,567", "1234567"),
    (r"1\,000", "1000"),
    ("10", "10.0"),
    ("12", "12."),
    ("2^{10}", "1024"),
    (r"\binom{5}{2}", "10"),
    ("x^2+2x+1", "(x+1)^2"),
    ("2^{2^n}+1", "1+2^{2^n}"),  # a symbolic exponent tower is legitimate, not pathological
    ("e^{x^2}", r"\exp(x^2)"),
    ("1+i", "i+1"),
    ("y=2x+1", "2x+1"),
    ("x=3", "3"),
    (r"\begin{pmatrix}1\\2\end{pmatrix}", r"\begin{pmatrix}1 \\ 2\end{pmatrix}"),
    ("1000", "1e3"),
    ("0.00025", "2.5E-4"),
    ("120000", "1.2e+05"),
    ("1", "{{{{{1}}}}}"),
    (r"\frac{1}{2}", r"{\frac{1}{2}}"),
    (r"5\text{ m}", r"5\text{ meters}"),
    (r"5\text{ km}", r"5\text{ km}"),
]

# (gold, predicted): NOT equivalent, in either direction.
NOT_EQUIVALENT = [
    ("1/2", "0.51"),
    (r"\frac{1}{3}", "0.3333"),
    (r"\{1,2\}", r"\{1,3\}"),
    ("1,2", "1,3"),
    ("-3", "3"),
    (r"-\frac{1}{2}", "0.5"),
    ("[0,1)", "(0,1]"),
    ("(0,1)", "[0,1]"),
    (r"\text{east}", "west"),
    ("east", "teas"),  # would be equal as the products e*a*s*t
    ("(B)", "(C)"),
    (r"50\%", "0.5"),
    (r"\sqrt{2}", "1.414"),
    (r"2\pi", "6.28"),
    ("1000", "1,001"),
    ("2^{10}", "1000"),
    ("x^2+1", "(x+1)^2"),
    (r"\frac{\pi}{3}", r"60^\circ"),
    (r"\text{yes}", "no"),
    ("3e", "1e3"),  # 3 times Euler's number, not a thousand
    ("1000", "1e4"),
    (r"5\text{ m}", r"5\text{ km}"),
    (r"5\text{ s}", r"5\text{ h}"),
]

PATHOLOGICAL = {
    "long_number": "9" * 100_000,
    "deep_braces": "{" * 5000 + "1" + "}" * 5000,
    "exponent_tower": "10^{10^{10}}",
    "python_tower": "9**9**9**9",
    "huge_exponent": "2^{999999999}",
    "unbalanced": r"\frac{1}{",
    "long_completion": "Let me think step by step. " * 3700 + r"\boxed{5}",
    "huge_factorial": "999999!",  # measured 8.3 s in sympy before the cap
    "nested_factorial": "(9999!)!",  # measured 4.1 s before the cap
    "deep_parens": "(" * 13 + "1" + ")" * 13,  # ~50-60 ms per bare level on an idle core, far more when loaded
    "deep_set_braces": "\\{" * 6 + "1" + "\\}" * 6,
    "huge_scientific": "1e99999",
}


@pytest.fixture(scope="module")
def verifier():
    with MathVerifier(time_budget_s=BUDGET_S) as v:
        v.start()  # pay the sympy import once, outside the timed assertions
        yield v


@pytest.mark.parametrize(("gold", "pred"), EQUIVALENT)
def test_equivalent_both_directions(verifier, gold, pred):
    assert verifier.equivalent(pred, gold)
    assert verifier.equivalent(gold, pred)


@pytest.mark.parametrize(("gold", "pred"), NOT_EQUIVALENT)
def test_not_equivalent_both_directions(verifier, gold, pred):
    assert not verifier.equivalent(pred, gold)
    assert not verifier.equivalent(gold, pred)


def test_missing_or_empty_prediction_is_wrong(verifier):
    assert not verifier.equivalent(None, "5")
    assert not verifier.equivalent("", "5")
    assert not verifier.equivalent("   ", "5")


def test_integers_take_the_fast_path_without_a_worker():
    v = MathVerifier()
    try:
        for i in range(200):
            assert v.equivalent(f"{i}", str(i))
            assert v.equivalent(f" {i:,}. ", str(i))
            assert not v.equivalent(str(i + 1), str(i))
        assert v.stats.fast_path == v.stats.calls == 600
        assert v.stats.worker_starts == 0  # no subprocess, no sympy
    finally:
        v.close()


def test_sympy_path_works_from_worker_threads(verifier):
    pairs = [(r"\frac{1}{2}", "0.5"), (r"\{1,2\}", r"\{2,1\}"), ("1/2", "0.51"), (r"2\pi", r"\pi \cdot 2")] * 3
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda gp: verifier.equivalent(gp[1], gp[0]), pairs))
    assert results == [True, True, False, True] * 3


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
@pytest.mark.parametrize("as_gold", [False, True])
def test_pathological_inputs_return_false_quickly_from_a_thread(verifier, name, as_gold):
    bad = PATHOLOGICAL[name]
    args = ("5", bad) if as_gold else (bad, "5")
    with ThreadPoolExecutor(max_workers=1) as pool:
        start = time.perf_counter()
        result = pool.submit(verifier.equivalent, *args).result(timeout=BUDGET_S + 5)
        elapsed = time.perf_counter() - start
    assert result is False
    assert elapsed < BUDGET_S + 1.0, f"{name} took {elapsed:.2f}s"


def test_pathological_inputs_are_counted(verifier):
    before = verifier.stats.rejected_pathological
    names = ("long_number", "deep_braces", "exponent_tower", "python_tower", "huge_exponent", "huge_factorial",
             "nested_factorial", "deep_parens", "deep_set_braces", "huge_scientific")
    for name in names:
        assert not verifier.equivalent(PATHOLOGICAL[name], "5")
    assert verifier.stats.rejected_pathological == before + len(names)


SLOW = r"\binom{9999999}{4999999}"  # passes the structural cap, but sympy needs far more than any budget (>30 s)


def _wait_for(condition, timeout_s: float = 30.0) -> bool:
    stop = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < stop:
        time.sleep(0.05)
    return condition()


def test_slow_sympy_input_times_out_and_worker_restarts(verifier):
    timeouts, starts = verifier.stats.timeouts, verifier.stats.worker_starts
    with ThreadPoolExecutor(max_workers=1) as pool:
        start = time.perf_counter()
        result = pool.submit(verifier.equivalent, SLOW, "5").result()
        elapsed = time.perf_counter() - start
    assert result is False
    assert elapsed < BUDGET_S + 1.0
    assert verifier.stats.timeouts == timeouts + 1
    # Right after the timeout the other worker answers at once, on the sympy path as well as on the fast path,
    # while the replacement imports sympy in the background.
    start = time.perf_counter()
    assert verifier.equivalent("0.5", r"\frac{1}{2}")
    assert time.perf_counter() - start < BUDGET_S + 1.0
    assert not verifier.equivalent(r"\{1,3\}", r"\{1,2\}")
    assert verifier.equivalent("42", "42")
    assert _wait_for(lambda: verifier.stats.worker_starts == starts + 1 and len(verifier.worker_pids()) == 2)
    assert verifier.stats.timeouts == timeouts + 1


def test_deadline_holds_from_eight_threads_with_slow_and_pathological_inputs():
    """Acceptance (#15): with a 2 s budget no call takes more than 3 s, from 8 threads, right after a timeout and
    with pathological inputs in the mix, and every ordinary answer equals the single-threaded one."""
    ordinary = EQUIVALENT[:16] + NOT_EQUIVALENT[:8]  # 8 threads x 3 calls, most of them on the sympy path
    pathological = [(v, "5") for v in PATHOLOGICAL.values()]
    with MathVerifier(time_budget_s=BUDGET_S) as single:
        single.start()
        expected = [single.equivalent(p, g) for g, p in ordinary]
    calls = [("slow", (SLOW, "5"))] + [("ordinary", pair) for pair in ordinary[:8]] + \
        [("pathological", pair) for pair in pathological] + [("ordinary", pair) for pair in ordinary[8:]]
    with MathVerifier(time_budget_s=BUDGET_S) as shared:
        shared.start()

        def timed(call):
            start = time.perf_counter()
            result = shared.equivalent(call[1][1], call[1][0])
            return result, time.perf_counter() - start

        with ThreadPoolExecutor(max_workers=8) as pool:
            outcomes = list(pool.map(timed, calls))
        slowest = max(seconds for _, seconds in outcomes)
        assert slowest <= 3.0, f"a call took {slowest:.2f}s"
        got = [result for (kind, _), (result, _) in zip(calls, outcomes) if kind == "ordinary"]
        assert got == expected, shared.stats
        assert not any(result for (kind, _), (result, _) in zip(calls, outcomes) if kind != "ordinary")
        assert shared.stats.timeouts == 1 and shared.stats.queue_timeouts == 0


def test_gold_is_gradeable(verifier):
    for gold in ("", "   ", "$$", r"\text{}", r"\frac{1}{", "9" * 100_000):
        assert not verifier.gold_is_gradeable(gold), gold
    for gold in ("42", "-3.5", "east", "(B)", r"\frac{1}{2}", r"\{1,2\}", "[0,1)", r"2\sqrt{2}"):
        assert verifier.gold_is_gradeable(gold), gold


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs /proc to tell a reaped pid from a zombie")
def test_close_reaps_the_worker():
    v = MathVerifier()
    v.start()
    pids = v.worker_pids()
    assert len(pids) == 2
    v.close()
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists()  # killed and reaped: not even a zombie entry is left
    assert v.equivalent("0.5", r"\frac{1}{2}")  # a closed verifier starts a new worker on demand
    v.close()


def test_worker_does_not_outlive_the_interpreter():
    # The interpreter exits without close(): the atexit finalizer (or, failing that, stdin EOF) ends the worker.
    code = "from igrpo.rewards.verify import MathVerifier; v = MathVerifier(); v.start(); print(*v.worker_pids())"
    out = subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, capture_output=True, text=True, timeout=60)
    pids = [int(pid) for pid in out.stdout.split()]
    assert len(pids) == 2
    time.sleep(0.2)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_command_line_contract():
    """``python -m igrpo.rewards.verify``: one ``{"equal", "seconds"}`` line per input line, ``{"error"}`` for a bad line."""
    lines = [{"reference": "1000", "candidate": "1e3"}, {"reference": "3e", "candidate": "1e3"},
             {"reference": r"5\text{ m}", "candidate": r"5\text{ km}"}, {"reference": "1", "candidate": "{{{{{1}}}}}"},
             "not json", {"reference": 5}, {"reference": r"\frac{1}{2}", "candidate": None}]
    stdin = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    out = subprocess.run([sys.executable, "-m", "igrpo.rewards.verify"], input=stdin, cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=True)
    replies = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r.get("equal") for r in replies] == [True, False, False, True, None, None, False]
    assert "error" in replies[4] and "error" in replies[5]
    assert all(0 <= r["seconds"] < 3 for r in replies if "equal" in r)
