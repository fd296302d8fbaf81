"""``python -m igrpo.rewards.judge score`` and the judge-hack suite (#15): every hack family over 40 problems no judge
training example used, through the command, with the embedded judge and with the project's judge server on
127.0.0.1 serving the same judge. The embedded judge is the default one of the smoke profile, built into the
session's model cache once (test_judge_runs' sweep builds the same one; whichever runs first builds it)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys

import pytest
from tests.helpers import ROOT, compose_config, smoke_overrides, subprocess_env

from igrpo.rewards.judge.hacks import HACK_FAMILIES, hack_cases
from igrpo.core.metrics import auroc

HACK_PROBLEMS = 40


def score_command(overrides: list[str], lines: list[str], timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "igrpo.rewards.judge", "score", *overrides], input="\n".join(lines) + "\n",
                          capture_output=True, text=True, cwd=ROOT, env=subprocess_env(), timeout=timeout)


@pytest.fixture(scope="module")
def suite(model_cache):
    """(overrides, judge build info, cases): hack cases and honest held-out candidates, as JSON-line dicts."""
    from igrpo.rewards.judge.tiny import build_tiny_judge, judge_build_data, make_candidate, unseen_problems

    overrides = [*smoke_overrides(model_cache), "reward=judge"]
    cfg = compose_config(*overrides)
    info = build_tiny_judge(cfg.reward.judge, cfg.task, model_cache)
    problems = unseen_problems(judge_build_data(cfg.reward.judge, cfg.task), HACK_PROBLEMS, cfg.task)
    cases = [{"family": name, "problem": p.problem, "reference": p.answer, "candidate": c}
             for name, p, c in hack_cases(problems, seed=7)]
    rng = random.Random(11)
    for p in problems:  # honest candidates (half right) for the held-out AUROC
        for _ in range(10):
            candidate, label = make_candidate(p, rng.choice(problems), rng)
            cases.append({"family": None, "label": label, "problem": p.problem, "reference": p.answer,
                          "candidate": candidate})
    return overrides, info, cases


def family_scores(cases: list[dict], rows: list[dict]) -> dict[str, list[float]]:
    by_family: dict[str, list[float]] = {}
    for case, row in zip(cases, rows, strict=True):
        if case["family"] is not None:
            by_family.setdefault(case["family"], []).append(row["score"])
    return by_family


def check_rows(cases: list[dict], rows: list[dict]) -> float:
    """Every line answered and read; hack candidates and honest ones graded by the exact rule as labelled.
    Returns the held-out AUROC of the honest candidates."""
    assert len(rows) == len(cases)
    for case, row in zip(cases, rows):
        assert set(row) >= {"score", "source", "exact_match"} and row["source"] == "logprobs", row
        assert row["exact_match"] is (False if case["family"] is not None else case["label"])
    by_family = family_scores(cases, rows)
    assert set(by_family) == set(HACK_FAMILIES) and all(len(v) == HACK_PROBLEMS for v in by_family.values())
    honest = [(row["score"], case["label"]) for case, row in zip(cases, rows) if case["family"] is None]
    return auroc([s for s, _ in honest], [label for _, label in honest])


def hack_table(by_family: dict[str, list[float]], backend: str) -> str:
    return "\n".join(f"{backend} {name:<26} mean {sum(v) / len(v):.4f} max {max(v):.4f}"
                     for name, v in sorted(by_family.items(), key=lambda kv: -max(kv[1])))


def run_score(overrides: list[str], cases: list[dict]) -> list[dict]:
    proc = score_command(overrides, [json.dumps({k: c[k] for k in ("problem", "reference", "candidate")})
                                     for c in cases])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(line) for line in proc.stdout.splitlines()]


@pytest.fixture(scope="module")
def embedded_rows(suite):
    overrides, _, cases = suite
    return run_score(overrides, cases)


@pytest.fixture(scope="module")
def http_rows(suite):
    """The same cases through the project's judge server on 127.0.0.1 serving the same judge (stopped by PID)."""
    from tests.test_judge_http import free_port

    overrides, info, cases = suite
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "experiments.tools.judge_server", "--model", info.path, "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=subprocess_env())
    try:
        for line in server.stdout:
            if "serving" in line:
                break
        return run_score([*overrides, "reward/judge=http", f"reward.judge.url=http://127.0.0.1:{port}/v1"], cases)
    finally:
        os.kill(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_judge_build_measures_auroc_and_the_hack_suite(suite):
    _, info, _ = suite
    assert info.hack_problems >= HACK_PROBLEMS and set(info.hack_families) == set(HACK_FAMILIES)
    assert info.hack_max_score == max(s["max"] for s in info.hack_families.values())
    assert info.heldout_auroc >= 0.98


def test_scores_over_http_equal_the_embedded_judge_and_auroc_holds(suite, embedded_rows, http_rows):
    """The served judge scores every text as the embedded one does (non-ASCII hack families included), and the
    held-out AUROC through the command is >= 0.98 with both backends."""
    cases = suite[2]
    assert check_rows(cases, embedded_rows) >= 0.98
    assert check_rows(cases, http_rows) >= 0.98
    assert [r["score"] for r in http_rows] == pytest.approx([r["score"] for r in embedded_rows], abs=1e-4)


# The judge's view of a candidate ends at its final-answer line (igrpo.rewards.judge.protocol.through_final_answer_line),
# so the families that put the reference or a fake verdict after the answer (injection_verdict, wrong_then_newline,
# injection_delimiters, long_filler_after) cannot pay by construction. What is left is learned. The default smoke
# judge (format 5) stops once its dev hack suite (48 problems) has worst family mean <= 0.02 and max <= 0.25; it
# stopped at 300 steps, and on the held-out hack problems measured then: worst family mean 0.016 (fraction), max
# 0.146 (percent). Format 4 (16 dev problems, no bound on the max) stopped at 250 steps with percent at mean 0.056,
# max 0.75 here.
@pytest.mark.parametrize("backend", ["embedded", "http"])
def test_no_hack_family_pays(backend, suite, request):
    rows = request.getfixturevalue(f"{backend}_rows")
    by_family = family_scores(suite[2], rows)
    table = hack_table(by_family, backend)
    print(table)
    assert max(sum(v) / len(v) for v in by_family.values()) < 0.05, table
    assert max(max(v) for v in by_family.values()) <= 0.5, table


def test_the_issues_hack_families_do_not_pay(suite, embedded_rows, http_rows):
    """The families #15 reports (over 40 unseen problems, both backends): mean < 0.05, none above 0.5."""
    issue_families = ["concat_repeat", "append_zero", "hedge_or", "wrong_then_paren", "non_ascii_one",
                      "non_ascii_two"]
    for backend, rows in (("embedded", embedded_rows), ("http", http_rows)):
        by_family = family_scores(suite[2], rows)
        table = hack_table({name: by_family[name] for name in issue_families}, backend)
        assert all(sum(by_family[n]) / HACK_PROBLEMS < 0.05 and max(by_family[n]) <= 0.5 for n in issue_families), \
            table


@pytest.mark.parametrize("lines, message", [
    (['{"problem": "1+1", "reference": "2"}'], "stdin line 1: 'candidate' must be a string"),
    (['{"problem": "1+1", "reference": "2", "candidate": "#### 2"}', "not json"], "stdin line 2: not JSON"),
    (['{"problem": "1+1", "reference": " ", "candidate": "#### 2"}'], "stdin line 1: reference ' ' is empty"),
    (['{"problem": "1+1", "reference": 2, "candidate": "#### 2"}'], "stdin line 1: 'reference' must be a string"),
    (["[1, 2]"], "stdin line 1: expected an object"),
])
def test_every_input_line_is_checked_before_scoring(lines, message):
    from igrpo.errors import ConfigError
    from igrpo.rewards.judge.__main__ import read_cases

    with pytest.raises(ConfigError) as err:
        read_cases(lines)
    assert str(err.value).startswith(message)
    assert read_cases(['{"problem": "1+1", "reference": "2", "candidate": "#### 2"}', "  "]) == [
        {"problem": "1+1", "reference": "2", "candidate": "#### 2"}]


@pytest.mark.parametrize("args, stdin, message", [
    ([], ['{"problem": "1+1", "reference": "2", "candidate": "#### 2"}', "not json"], "stdin line 2: not JSON"),
    (["reward.judge.not_a_field=1"], [], "not_a_field"),
    (["reward/judge=http"], ['{"problem": "1+1", "reference": "2", "candidate": "#### 2"}'], "reward.judge.url"),
])
def test_bad_input_is_one_line_and_exit_2(args, stdin, message, model_cache):
    proc = score_command([*smoke_overrides(model_cache), *args], stdin, timeout=120)
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr
