"""``python -m igrpo.tasks inspect|decontaminate`` (issue #12 acceptance 5): counts, skipped rows with line numbers,
answer types and (problem, gold) pairs; planted n-gram overlaps found, near misses not."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import ROOT, subprocess_env

SUITES = ("aime24", "aime25", "math500", "amc23", "gsm8k", "minerva")


def jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def suite_overrides(path: str) -> list[str]:
    """Every paper suite read from one local file with problem/answer columns."""
    out = []
    for suite in SUITES:
        out += [f"eval.suites.{suite}.path={path}", f"eval.suites.{suite}.problem_field=problem",
                f"eval.suites.{suite}.answer_format=plain"]
    return out


def run_tasks(*args: str):
    return subprocess.run([sys.executable, "-m", "igrpo.tasks", *args], cwd=ROOT, env=subprocess_env(),
                          capture_output=True, text=True, timeout=300)


def test_inspect_prints_counts_skipped_rows_types_and_pairs(tmp_path):
    train = jsonl(tmp_path / "math.jsonl", [
        {"problem": "What is 1+1?", "solution": "$\\boxed 2$"},
        {"problem": "Half of one?", "solution": "It is \\fbox{\\frac{1}{2}}."},
        {"problem": "No answer here", "solution": "We stop."},
        {"problem": "Interval?", "solution": "So $\\boxed{(0, 1]}$."},
    ])
    suite = jsonl(tmp_path / "suite.jsonl", [{"problem": "Eval one", "answer": "3"}])
    proc = run_tasks("inspect", "task=math", f"task.path={train}", "task.max_bad_fraction=0.3", "eval=paper",
                     *suite_overrides(suite))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:8] == [
        f"task.path={train}: 4 rows, 3 loaded, 1 skipped",
        "  skipped line 3: no \\boxed{} answer in field 'solution'",
        "  loads with task.max_bad_fraction=0.3",
        "  answer types: integer 1, fraction 1, interval/tuple 1",
        "  [math:1] What is 1+1?  ->  gold: 2",
        "  [math:2] Half of one?  ->  gold: \\frac{1}{2}",
        "  [math:4] Interval?  ->  gold: (0, 1]",
        f"eval.suites.aime24.path={suite}: 1 rows, 1 loaded, 0 skipped",
    ]
    assert sum(line.startswith("eval.suites.") for line in lines) == 6


def test_inspect_errors_are_one_line():
    proc = run_tasks("inspect", "task=nosuch")
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "error: task=nosuch is not a known option; choose one of: acereason, arith, arith_smoke, math, words"]
    proc = run_tasks("frobnicate")
    assert proc.returncode == 2 and proc.stderr.startswith("usage: python -m igrpo.tasks {inspect|decontaminate|probe|words}")


def test_decontaminate_finds_planted_overlaps_and_training_drops_them(tmp_path, capsys):
    from igrpo.tasks.__main__ import compose, main
    from igrpo.tasks import load_task

    eval_rows = [{"problem": "Let $x$ be the smallest positive integer such that the sum of its digits is 20. "
                             "Find $x$.", "answer": "299"},
                 {"problem": "A bag holds 5 red and 7 blue marbles; two are drawn without replacement.",
                  "answer": "1"}]
    train_rows = [{"problem": f"Compute {i} times {i + 1}.", "answer": str(i * (i + 1))} for i in range(6)]
    # planted: an 8-word span of an eval problem (case, LaTeX and punctuation differ)
    train_rows.insert(2, {"problem": "Find the SMALLEST positive integer such that the sum of its digits is 11.",
                          "answer": "29"})
    train_rows.insert(5, {"problem": "Suppose a bag holds 5 red and 7 blue marbles, and one is green.",
                          "answer": "3"})
    # near miss: only 7 consecutive words shared
    train_rows.append({"problem": "Two are drawn without replacement from an urn.", "answer": "2"})
    train, suite = jsonl(tmp_path / "train.jsonl", train_rows), jsonl(tmp_path / "eval.jsonl", eval_rows)
    overrides = ["task=math", f"task.path={train}", "task.answer_field=answer", "task.solution_field=null",
                 "eval=paper", *suite_overrides(suite)]
    assert main(["decontaminate", *overrides]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("2 of 9 training problems share a 8-gram with an eval problem")
    assert [line.split(" ~ ")[0].strip() for line in out[1:]] == ["math:3", "math:6"]
    assert out[1] == '  math:3 ~ aime24:1: "the smallest positive integer such that the sum"'
    cfg = compose([*overrides, "task.decontaminate=true"])
    data = load_task(cfg.task, cfg.seed, eval_cfg=cfg.eval)
    assert len(data.train) == 7 and data.extra["decontaminated"] == 2
    assert main(["decontaminate", *overrides, "task.decontaminate_ngram=13"]) == 0
    assert capsys.readouterr().out.startswith("0 of 9 training problems share a 13-gram")



def test_a_bad_ngram_size_is_a_one_line_error(tmp_path, capsys):
    from igrpo.tasks.__main__ import main

    train = jsonl(tmp_path / "t.jsonl", [{"problem": "train me", "answer": "1"}])
    suite = jsonl(tmp_path / "s.jsonl", [{"problem": "eval me", "answer": "2"}])
    code = main(["decontaminate", "task=math", f"task.path={train}", "task.answer_field=answer",
                 "task.solution_field=null", "eval=paper", *suite_overrides(suite), "task.decontaminate_ngram=0"])
    assert code == 2 and capsys.readouterr().err.strip().splitlines() == [
        "error: task.decontaminate_ngram=0 is not valid; it must be >= 1 (words per n-gram)"]


def test_probe_prints_each_levels_base_success_under_training_sampling(tmp_path):
    """The tiny smoke base (shipped), 3 problems of two levels, G = 4 samples each at the training temperature."""
    proc = run_tasks("probe", "--problems", "3", "--levels", "easy,hard", "debug=smoke",
                     f"model.cache_dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    header, *rows = proc.stdout.strip().splitlines()
    assert header.split()[:4] == ["level", "problems", "G", "success"]
    assert [row.split()[:3] for row in rows] == [["easy", "3", "4"], ["hard", "3", "4"]]
    for row in rows:
        success, mixed, mixed_format, answered = map(float, row.split()[3:])
        assert 0 <= success <= 1 and 0 <= mixed <= mixed_format <= 1 and 0 <= answered <= 1
    bad = run_tasks("probe", "--levels", "sum", "debug=smoke")
    assert bad.returncode == 2 and bad.stderr.strip() == (
        "error: --levels='sum' is not valid; choose one of: easy, hard, harder, hardest")
