"""Measure how often the verifier agrees with a list of labelled (gold, prediction, expected) cases.

    python -m igrpo.rewards.verify.agreement CASES.jsonl [--extract] [--only KEY ...] [--list] [--budget S] [--workers N]

``CASES.jsonl`` holds one JSON object per line:

    {"gold": "$28\\\\%$", "prediction": "28 percent", "expected": true, "id": "percent-1", "answer_only": true}

- ``gold`` (string): the reference, as the project would store it;
- ``prediction`` (string): a model's answer, or a whole completion;
- ``expected`` (boolean, or 0/1): whether the two should be graded equal;
- ``id`` (string, optional): printed with ``--list``; the line number is used when absent;
- ``answer_only`` (boolean, optional): both sides are already a final answer (no answer to find in prose); the
  agreement on these cases is printed on a line of its own;
- any other key (e.g. ``source``, ``settings``) is carried along; ``--only KEY`` keeps the cases whose ``KEY`` is
  ``true`` (e.g. ``--only same_settings`` for cases marked so by whoever wrote the file).

Blank lines are skipped; a line that is not such an object is an error (exit status 2, with its line number).

Each case is graded as ``MathVerifier.equivalent(prediction, gold)``, the call the binary reward makes. With
``--extract`` each side first goes through ``igrpo.core.answers.extract_final_answer`` (the reward's extraction), and
is used whole when that finds no answer: this measures extraction and verification together.

The output gives, for all cases and for the ``answer_only`` ones: the number of cases, agreement (the share whose
grade equals ``expected``), false positives (graded equal, expected not) and false negatives (expected equal,
graded not), and the slowest call. ``--list`` also prints every disagreement. Exit status 0 whatever the
agreement: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field

from igrpo.core.answers import extract_final_answer
from igrpo.rewards.verify import MathVerifier


@dataclass
class Case:
    gold: str
    prediction: str
    expected: bool
    name: str
    answer_only: bool | None = None
    flags: dict = field(default_factory=dict)


@dataclass
class Tally:
    cases: int = 0
    agree: int = 0
    false_positives: int = 0
    false_negatives: int = 0
    slowest_s: float = 0.0
    disagreements: list[tuple[Case, bool]] = field(default_factory=list)

    def add(self, case: Case, graded: bool, seconds: float) -> None:
        self.cases += 1
        self.slowest_s = max(self.slowest_s, seconds)
        if graded == case.expected:
            self.agree += 1
            return
        if graded:
            self.false_positives += 1
        else:
            self.false_negatives += 1
        self.disagreements.append((case, graded))

    def line(self, label: str) -> str:
        share = 100.0 * self.agree / self.cases if self.cases else 0.0
        return (f"{label}: {self.cases} cases, agreement {self.agree}/{self.cases} ({share:.1f}%), "
                f"false positives {self.false_positives}, false negatives {self.false_negatives}, "
                f"slowest call {self.slowest_s:.2f} s")


def read_cases(lines) -> list[Case]:
    """Parse the JSONL format above; ValueError names the first bad line."""
    cases = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"line {number}: not JSON ({err.msg})") from None
        if not isinstance(item, dict) or not isinstance(item.get("gold"), str) \
                or not isinstance(item.get("prediction"), str) or item.get("expected") not in (True, False, 0, 1):
            raise ValueError(f'line {number}: expected {{"gold": string, "prediction": string, '
                             f'"expected": true/false}}')
        answer_only = item.get("answer_only")
        if answer_only is not None and not isinstance(answer_only, bool):
            raise ValueError(f"line {number}: answer_only must be true or false")
        cases.append(Case(item["gold"], item["prediction"], bool(item["expected"]),
                          str(item.get("id", item.get("source", f"line {number}"))), answer_only,
                          {k: v for k, v in item.items() if v is True}))
    return cases


def side(text: str, extract: bool) -> str:
    """What the verifier is given for one side of a case."""
    if not extract:
        return text
    return extract_final_answer(text) or text


def measure(cases: list[Case], verifier: MathVerifier, extract: bool = False) -> tuple[Tally, Tally]:
    """(all cases, answer-only cases) tallies."""
    everything, answer_only = Tally(), Tally()
    for case in cases:
        start = time.perf_counter()
        graded = verifier.equivalent(side(case.prediction, extract), side(case.gold, extract))
        seconds = time.perf_counter() - start
        everything.add(case, graded, seconds)
        if case.answer_only:
            answer_only.add(case, graded, seconds)
    return everything, answer_only


def _short(text: str, limit: int = 90) -> str:
    text = json.dumps(text)[1:-1]
    return text if len(text) <= limit else text[:limit - 3] + "..."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m igrpo.rewards.verify.agreement", description=__doc__.split("\n\n")[0])
    parser.add_argument("cases", help="JSONL file of {gold, prediction, expected} cases ('-' for stdin)")
    parser.add_argument("--extract", action="store_true",
                        help="pass each side through extract_final_answer first (the reward's extraction)")
    parser.add_argument("--only", action="append", default=[], metavar="KEY",
                        help="measure only the cases whose KEY is true (repeatable: all must hold)")
    parser.add_argument("--list", action="store_true", help="print every disagreement")
    parser.add_argument("--budget", type=float, default=2.0, help="seconds per call, waiting included (default 2)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    args = parser.parse_args(argv)
    if not args.budget > 0 or not args.workers > 0:
        parser.error("--budget and --workers must be > 0")
    try:
        if args.cases == "-":
            cases = read_cases(sys.stdin)
        else:
            with open(args.cases, encoding="utf-8") as handle:
                cases = read_cases(handle)
    except (OSError, ValueError) as err:
        print(f"{args.cases}: {err}", file=sys.stderr)
        return 2
    if args.only:
        cases = [c for c in cases if all(c.flags.get(key) is True for key in args.only)]
    with MathVerifier(time_budget_s=args.budget, workers=args.workers) as verifier:
        verifier.start()  # the sympy import is not charged to the first case
        everything, answer_only = measure(cases, verifier, extract=args.extract)
        stats = verifier.stats
    print(everything.line("all" if not args.only else "only " + ", ".join(args.only)))
    if answer_only.cases and answer_only.cases != everything.cases:
        print(answer_only.line("answer-only"))
    print(f"verifier: fast path {stats.fast_path}, timeouts {stats.timeouts}, refused {stats.rejected_pathological}, "
          f"parse failures {stats.parse_failures}")
    if args.list:
        for case, graded in everything.disagreements:
            kind = "FP" if graded else "FN"
            marker = " [answer-only]" if case.answer_only else ""
            print(f"{kind} {case.name}{marker}\n   gold: {_short(case.gold)}\n   pred: {_short(case.prediction)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
