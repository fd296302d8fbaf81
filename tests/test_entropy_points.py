"""Entropy at 10/30/100% of training (analysis.entropy_points): the window rule on synthetic histories with known
answers, then the fig3_entropy report from a real SQLite MLflow store of synthetic training runs (logged like
tests/test_regime.py's store): entropy_points.md|csv, the report.html section, byte-identical reruns, and no output
for a spec that does not draw the entropy figure."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from analysis import entropy_points as ep
from analysis.report import build, make_report
from analysis.stats import t_interval
from experiments.plan import plan_runs
from experiments.spec import load_spec
from igrpo.tracking.names import PHASE_TRAIN, TAG_ARM, TAG_EXPERIMENT, TAG_GROUP, TAG_PHASE, TAG_SCALE, TAG_SEED
from igrpo.tracking.runs import mlflow_run

# --- the window rule -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("steps, percent, expected", [
    (150, 10, (8, 15)), (150, 30, (38, 45)), (150, 100, (143, 150)),  # CPU: w = round(7.5) = 8 (half up)
    (58, 10, (4, 6)), (58, 30, (15, 17)), (58, 100, (56, 58)),  # paper: e = round(5.8) = 6, round(17.4) = 17, w = 3
    (50, 10, (3, 5)),  # w = round(2.5) = 3: halves round up (Python's round() would give 2)
    (40, 30, (11, 12)), (40, 100, (39, 40)),
    (10, 10, (1, 1)), (10, 100, (10, 10)),  # w = max(1, round(0.5)) = 1
    (2, 10, (1, 1)), (2, 30, (1, 1)),  # round(0.2) = 0 -> step 1, the first training step
    (1, 100, (1, 1)),
])
def test_window_ends_at_p_percent_and_spans_5_percent_of_the_steps(steps, percent, expected):
    assert ep.window(steps, percent) == expected


def test_points_are_window_means_and_ignore_everything_outside():
    history = {s: float(s) for s in range(1, 151)}  # value = step
    history[7] = history[16] = history[142] = 1e6  # just outside the windows: must not count
    pts = ep.run_points(history, 150)
    assert pts["10%"] == pytest.approx(11.5)  # mean of 8..15
    assert pts["30%"] == pytest.approx(41.5)  # mean of 38..45
    assert pts["100%"] == pytest.approx(146.5)  # mean of 143..150
    assert pts["100%/10%"] == pytest.approx(146.5 / 11.5)


def test_a_window_averages_the_values_logged_in_it_and_is_nan_without_any():
    sparse = {10: 1.0, 20: 2.0, 30: 3.0, 50: 5.0, 150: 9.0}  # e.g. train.logging_steps = 10, 40 missing
    assert ep.entropy_at(sparse, 150, 10) == pytest.approx(1.0)  # only step 10 lies in 8..15
    assert np.isnan(ep.entropy_at(sparse, 150, 30))  # nothing logged in 38..45: n/a, not the nearest value
    assert ep.entropy_at({8: 1.0, 9: float("nan"), 15: 3.0}, 150, 10) == pytest.approx(2.0)  # NaN = not logged
    pts = ep.run_points({150: 1.0}, 150)
    assert np.isnan(pts["10%"]) and np.isnan(pts["100%/10%"]) and pts["100%"] == 1.0
    assert ep.run_points({1: 0.0, 2: 0.5}, 2)["100%/10%"] != ep.run_points({1: 0.0, 2: 0.5}, 2)["100%/10%"]  # /0


@pytest.mark.parametrize("steps, percent, named", [
    (0, 10, "train.steps=0"), (-5, 10, "train.steps=-5"), (12.5, 10, "train.steps=12.5"),
    (True, 10, "train.steps=True"), (10, 0, "percent=0"), (10, 101, "percent=101"), (10, "10", "percent='10'"),
])
def test_bad_window_input_is_one_line_naming_the_value_and_the_choices(steps, percent, named):
    with pytest.raises(ep.EntropyPointsError) as err:
        ep.window(steps, percent)
    text = str(err.value)
    assert named in text and "choose" in text and "\n" not in text


def test_seeds_aggregate_as_t_intervals_and_the_ratio_is_per_seed():
    # seed 0 decays 4 -> 1, seed 1 decays 1 -> 0.5: mean of ratios (0.375) != ratio of means (0.3)
    runs = [ep.RunHistory("tiny", "GRPO", 0, 10, {1: 4.0, 10: 1.0}),
            ep.RunHistory("tiny", "GRPO", 1, 10, {1: 1.0, 10: 0.5}),
            ep.RunHistory("tiny", "iGRPO", 0, 10, {1: 2.0, 3: 2.0, 10: 2.0}),
            ep.RunHistory("tiny", "iGRPO", 1, None, {1: 2.0})]  # no train.steps: n/a, still counted as a run
    grpo, igrpo = ep.build(runs)
    assert (grpo.arm, igrpo.arm) == ("GRPO", "iGRPO")
    assert grpo.cells["10%"] == t_interval([4.0, 1.0]) and grpo.cells["100%"] == t_interval([1.0, 0.5])
    assert grpo.cells["100%/10%"].mean == pytest.approx(0.375)
    assert grpo.cells["10%"].half == pytest.approx(12.7062 * np.std([4.0, 1.0], ddof=1) / np.sqrt(2), rel=1e-4)
    assert grpo.windows == {"10%": "1–1", "30%": "3–3", "100%": "10–10"} and grpo.n == 2
    assert np.isnan(grpo.cells["30%"].mean) and grpo.cells["30%"].n == 0  # nothing logged at step 3
    assert igrpo.cells["30%"].mean == 2.0 and igrpo.cells["30%"].n == 1 and igrpo.n == 2
    table = pd.read_csv(io.StringIO(ep.csv([grpo, igrpo])))
    assert list(table.arm) == ["GRPO", "iGRPO"]
    assert table.entropy_10pct.tolist() == [2.5, 2.0] and np.isnan(table.entropy_30pct[0])
    assert table.ratio_100_10[0] == pytest.approx(0.375) and np.isnan(table.ratio_100_10_ci95[1])
    text = ep.markdown([grpo, igrpo])
    assert "| tiny | GRPO | 2.5 ± 19 | n/a | 0.75 ± 3.2 | 0.375 ± 1.6 | 1–1 · 3–3 · 10–10 | 2 |" in text
    assert "w = max(1, round(0.05·S))" in text


# --- the report, from a real store ---------------------------------------------------------------------------------

SEEDS = [0, 1]
STEPS = 40  # windows: 10% -> steps 3..4, 30% -> 11..12, 100% -> 39..40 (w = 2)
START = {"GRPO": 2.0, "GRPO-4": 1.6, "iGRPO": 1.2}
SUITE = "easy"


def _entropy(arm: str, seed: int, step: int) -> float:
    """A known per-step curve; the steps just outside every window log a spike the windows must not see."""
    if step in (2, 5, 10, 13, 38):
        return 50.0
    return START[arm] + 0.1 * seed - 0.02 * step


def _expected(arm: str, seed: int, steps: tuple[int, int]) -> float:
    return (_entropy(arm, seed, steps[0]) + _entropy(arm, seed, steps[1])) / 2


@pytest.fixture(scope="module")
def fig3_store(tmp_path_factory):
    """fig3_entropy's planned cpu runs for 2 seeds as FINISHED training runs: params, step-0 and final avg@8, and
    train/entropy at every step 1..40 (one timestamp, so the store is the same on every test run)."""
    root = tmp_path_factory.mktemp("entropy_points_store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        for run in plan_runs(load_spec("fig3_entropy"), "cpu", SEEDS):
            tags = {TAG_PHASE: PHASE_TRAIN, TAG_EXPERIMENT: "fig3_entropy", TAG_SCALE: "cpu",
                    TAG_GROUP: run.group.label, TAG_ARM: run.arm.label, TAG_SEED: str(run.seed)}
            with mlflow_run(uri, "fig3_entropy", f"{run.arm.label}-{run.seed}", tags) as mlrun:
                mlrun.params({"train.steps": str(STEPS), "eval.samples_per_problem": "8",
                              "task.eval_suites": f"['{SUITE}']"})
                records = {s: {"timestamp": 1_700_000_000_000 + s,
                               "metrics": {ep.KEY: _entropy(run.arm.label, run.seed, s)}} for s in range(1, STEPS + 1)}
                records[0] = {"timestamp": 1_700_000_000_000, "metrics": {f"eval/{SUITE}/avg_at_8": 0.3}}
                records[STEPS]["metrics"][f"eval/{SUITE}/avg_at_8"] = 0.4
                mlrun.records(records)
        out = make_report("fig3_entropy", "cpu", SEEDS, uri, root / "report")
    return out, uri


def test_report_writes_entropy_points_with_the_known_window_means(fig3_store):
    out, _ = fig3_store
    df = pd.read_csv(out / "entropy_points.csv")
    assert list(df.arm) == ["GRPO", "GRPO-4", "iGRPO"] and set(df.group) == {"tiny"} and set(df.seeds) == {2}
    for arm in START:
        row = df[df.arm == arm].iloc[0]
        for col, steps in (("entropy_10pct", (3, 4)), ("entropy_30pct", (11, 12)), ("entropy_100pct", (39, 40))):
            per_seed = [_expected(arm, s, steps) for s in SEEDS]
            assert row[col] == pytest.approx(np.mean(per_seed), abs=1e-6), (arm, col)
            assert row[f"{col}_ci95"] == pytest.approx(12.7062 * np.std(per_seed, ddof=1) / np.sqrt(2), rel=1e-4)
            assert row[f"{col}_steps"] == f"{steps[0]}–{steps[1]}"
        ratios = [_expected(arm, s, (39, 40)) / _expected(arm, s, (3, 4)) for s in SEEDS]
        assert row.ratio_100_10 == pytest.approx(np.mean(ratios), abs=1e-6)
    text = (out / "entropy_points.md").read_text()
    assert ep.CAPTION in text and "| tiny | iGRPO | 1.18 ± 0.64 | 1.02 ± 0.64 | 0.46 ± 0.64 |" in text


def test_report_html_has_the_section_with_the_window_rule(fig3_store):
    out, _ = fig3_store
    html = (out / "report.html").read_text()
    assert '<h2 id="entropy-points">' in html and "w = max(1, round(0.05·S))" in html
    section = html[html.index('id="entropy-points"'):]
    assert section.index("1.18 ± 0.64") < section.index("Paper Figure 3")  # ours, then the paper's points


def test_entropy_points_rerun_is_byte_identical(fig3_store, tmp_path):
    out, uri = fig3_store
    again = make_report("fig3_entropy", "cpu", SEEDS, uri, tmp_path / "again")
    for name in ("entropy_points.md", "entropy_points.csv", "report.html"):
        assert (again / name).read_bytes() == (out / name).read_bytes(), name


def test_no_entropy_points_for_a_spec_without_the_entropy_figure(fig3_store, tmp_path):
    _, uri = fig3_store
    spec = dataclasses.replace(load_spec("fig3_entropy"), figures=("reward",))
    files = {p.name for p in build(spec, "cpu", SEEDS, MlflowClient(uri), tmp_path)}
    assert "table.md" in files and not {"entropy_points.md", "entropy_points.csv"} & files
    assert 'id="entropy-points"' not in (tmp_path / "report.html").read_text()
