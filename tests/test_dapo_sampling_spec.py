"""The ``dapo_sampling`` experiment plans the crossing the issue asks for (and ``debug=smoke`` sizes it), its
table's ``baseline_group`` is checked, and ``analysis.spend`` turns the runs' spend counters into the spend table and
each arm's Δ across groups with its token ratio (synthetic runs: no MLflow)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from analysis import spend
from analysis.regime import regime_cells
from experiments.plan import plan_runs
from experiments.spec import SpecError, load_spec

SPEC = load_spec("dapo_sampling")


def test_the_spec_crosses_dynamic_sampling_with_grpo_and_igrpo_and_drafts_fixed_with_adaptive():
    runs = plan_runs(SPEC, "cpu")
    cells = {(r.group.label, r.arm.label) for r in runs}
    assert cells == {("DS off", a) for a in ("GRPO-8", "GRPO-4", "iGRPO-8", "iGRPO-8 adaptive")} | {
        ("DS on", a) for a in ("GRPO-8", "GRPO-4", "iGRPO-8")}
    assert len(runs) == 7 * 3 and {r.seed for r in runs} == {0, 1, 2}
    on = next(r for r in runs if r.group.label == "DS on" and r.arm.label == "iGRPO-8")
    assert {"algo=dapo", "algo.dynamic_sampling=true", "variant=igrpo", "train.steps=40"} <= set(on.overrides)
    # the trained-count control: each iGRPO arm is paired with GRPO-8 (same budget) and GRPO-4 (same trained count)
    assert [(c.group, c.igrpo, c.grpo, c.grpo_half) for c in regime_cells(SPEC, "cpu")] == [
        ("DS off", "iGRPO-8", "GRPO-8", "GRPO-4"), ("DS off", "iGRPO-8 adaptive", "GRPO-8", "GRPO-4"),
        ("DS on", "iGRPO-8", "GRPO-8", "GRPO-4")]
    smoke = plan_runs(SPEC, "cpu", [0], ["debug=smoke"])
    assert not any(o.startswith(("train.steps=", "task.eval_size=")) for r in smoke for o in r.overrides)
    assert len(plan_runs(SPEC, "paper")) == 7


def test_baseline_group_must_name_a_group(tmp_path: Path):
    text = SPEC.path.read_text().replace("baseline_group: DS off", "baseline_group: DS maybe")
    (tmp_path / "dapo_sampling.yaml").write_text(text)
    (tmp_path / "_scales.yaml").write_text((SPEC.path.parent / "_scales.yaml").read_text())
    with pytest.raises(SpecError, match="table.baseline_group='DS maybe' is not valid"):
        load_spec(tmp_path / "dapo_sampling.yaml", spec_dir=tmp_path)


def _run(group: str, arm: str, seed: int, generated: float | None, tokens: float | None) -> pd.Series:
    metrics = {} if generated is None else {"metrics.rollouts/generated_total": generated,
                                            "metrics.rollouts/generated_tokens_total": tokens,
                                            "metrics.perf/train_seconds": 60.0 + seed}
    return pd.Series({"run_id": f"{group}-{arm}-{seed}", "params.train.steps": "40",
                      "params.train.prompts_per_step": "8", **metrics})


def test_spend_and_each_arm_across_groups_with_its_token_ratio():
    seeds = [0, 1]
    # 40 steps x 8 prompts: GRPO-8 generates 8 per prompt (2560), with dynamic sampling twice that
    per_prompt = {("DS off", "GRPO-8"): 8, ("DS off", "GRPO-4"): 4, ("DS off", "iGRPO-8"): 8,
                  ("DS off", "iGRPO-8 adaptive"): 8, ("DS on", "GRPO-8"): 16, ("DS on", "GRPO-4"): 8,
                  ("DS on", "iGRPO-8"): 24}
    matched = {(g, a, s): _run(g, a, s, n * 320, n * 320 * 30.0) for (g, a), n in per_prompt.items() for s in seeds}
    matched[("DS off", "GRPO-4", 1)] = _run("DS off", "GRPO-4", 1, None, None)  # a run older than the counters
    frame = spend.spend_frame(SPEC, "cpu", matched, seeds)
    row = frame.set_index(["group", "arm"])
    assert row.loc[("DS on", "iGRPO-8"), "per_prompt"].mean == 24 and row.loc[("DS off", "GRPO-4"), "per_prompt"].n == 1
    assert row.loc[("DS on", "iGRPO-8"), "tokens_vs_baseline"] == pytest.approx(1.5)

    avg = {("DS off", "iGRPO-8"): 0.30, ("DS on", "iGRPO-8"): 0.34, ("DS off", "GRPO-8"): 0.32,
           ("DS on", "GRPO-8"): 0.31, ("DS off", "GRPO-4"): 0.28, ("DS on", "GRPO-4"): 0.27,
           ("DS off", "iGRPO-8 adaptive"): 0.33}
    per_seed = pd.DataFrame([{"group": g, "method": a, "seed": s, "Avg": v + 0.01 * s} for (g, a), v in avg.items()
                             for s in seeds])
    deltas = spend.group_deltas(SPEC, "cpu", per_seed, matched, seeds, ["hard"], None, frame)
    d = deltas.set_index("arm")
    assert list(deltas.arm) == ["GRPO-8", "GRPO-4", "iGRPO-8"]  # the adaptive arm runs with DS off only
    assert d.loc["iGRPO-8", "delta_avg"] == pytest.approx(0.04) and d.loc["iGRPO-8", "tokens_ratio"] == 3.0
    assert math.isnan(d.loc["iGRPO-8", "boot_low"]) and d.loc["iGRPO-8", "boot_note"] == "no per-problem scores logged"
    text = spend.markdown(spend.sections(frame, deltas, "GRPO-8", "DS off"))
    assert "| DS on | iGRPO-8 | 24.00 ± 0.00 | 230,400 ± 0 | 60 ± 6 | 1.50x |" in text
    assert "| iGRPO-8 | DS on − DS off | +4.0 ± 0.0 | n/a (no per-problem scores logged) | 3.00x | 2 |" in text
    assert "| DS off | GRPO-4 | 4.00 |" in text


def test_the_across_group_delta_gets_the_paired_bootstrap(monkeypatch):
    import numpy as np

    from analysis import bootstrap

    seeds, problems = [0, 1], 60
    base = np.random.default_rng(0).uniform(0.1, 0.5, problems)

    def scores(client, matched, seeds_, group, arm, loaded):  # per-problem scores: DS on lifts iGRPO-8 by 0.3
        lift = 0.3 if (group, arm) == ("DS on", "iGRPO-8") else 0.0
        return bootstrap.from_runs(arm, {s: {"hard": ([f"hard:{i}" for i in range(problems)],
                                                      list(np.clip(base + lift, 0, 1)))} for s in seeds_})

    monkeypatch.setattr(spend, "final_scores", scores)
    matched = {(g.label, a.label, s): _run(g.label, a.label, s, 2560, 76800.0)
               for g in SPEC.scale("cpu").groups for a in SPEC.arms for s in seeds}
    per_seed = pd.DataFrame([{"group": g, "method": a, "seed": s, "Avg": 0.3}
                             for (g, a, s) in matched])
    frame = spend.spend_frame(SPEC, "cpu", matched, seeds)
    d = spend.group_deltas(SPEC, "cpu", per_seed, matched, seeds, ["hard"], None, frame).set_index("arm")
    assert 0.25 < d.loc["iGRPO-8", "boot_low"] <= d.loc["iGRPO-8", "boot_high"] < 0.35
    assert d.loc["iGRPO-8", "boot_excludes_0"] and not d.loc["GRPO-8", "boot_excludes_0"]


def test_a_pair_must_name_two_different_arms(tmp_path: Path):
    text = SPEC.path.read_text().replace("pairs: [[iGRPO-8 adaptive, iGRPO-8]]", "pairs: [[iGRPO-8 adaptive, iGRPO-9]]")
    (tmp_path / "dapo_sampling.yaml").write_text(text)
    (tmp_path / "_scales.yaml").write_text((SPEC.path.parent / "_scales.yaml").read_text())
    with pytest.raises(SpecError, match=r"table.pairs\[0\]=\['iGRPO-8 adaptive', 'iGRPO-9'\] is not valid"):
        load_spec(tmp_path / "dapo_sampling.yaml", spec_dir=tmp_path)


def test_the_adaptive_draft_budget_is_compared_with_the_fixed_one_where_both_run():
    seeds = [0, 1]
    matched = {(g.label, a.label, s): _run(g.label, a.label, s, 2560, 76800.0 if a.label != "iGRPO-8" else 38400.0)
               for g in SPEC.scale("cpu").groups for a in SPEC.arms for s in seeds}
    avg = {"iGRPO-8 adaptive": 0.33, "iGRPO-8": 0.30}
    per_seed = pd.DataFrame([{"group": g, "method": a, "seed": s, "Avg": avg.get(a, 0.2) + 0.02 * s}
                             for (g, a, s) in matched])
    frame = spend.spend_frame(SPEC, "cpu", matched, seeds)
    pairs = spend.pair_deltas(SPEC, "cpu", per_seed, matched, seeds, ["hard"], None, frame)
    assert list(zip(pairs.group, pairs.arm, pairs.reference)) == [("DS off", "iGRPO-8 adaptive", "iGRPO-8")]
    assert pairs.delta_avg[0] == pytest.approx(0.03) and pairs.tokens_ratio[0] == 2.0
    text = spend.markdown(spend.sections(frame, pd.DataFrame(), "GRPO-8", "DS off", pairs))
    assert "| DS off | iGRPO-8 adaptive − iGRPO-8 | +3.0 ± 0.0 | n/a (no per-problem scores logged) | 2.00x | 2 |" in text
