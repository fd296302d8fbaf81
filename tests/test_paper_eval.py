"""Acceptance: `run.py model=hf task=math eval=paper` through the real CLI, for GRPO and iGRPO, with a tiny
Llama model saved in HF format (with a chat template), a tiny MATH-format train file and tiny local files for
all six paper suites in their hub datasets' column layouts. Small k's (AIME 4, others 2) keep it fast while
still checking per-suite k naming."""

from __future__ import annotations

import json

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import run_cli

# suite -> rows in the layout of its hub dataset (conf/eval/paper.yaml maps these columns)
SUITES = {
    "aime24": [{"problem": f"Find {n} plus {n}.", "answer": str(2 * n)} for n in (3, 4, 5)],
    "aime25": [{"problem": f"Find {n} times {n}.", "answer": str(n * n)} for n in (3, 4, 5)],
    "math500": [{"problem": "What is $\\frac{1}{2}+\\frac{1}{2}$?", "solution": "\\boxed{1}", "answer": "1"},
                {"problem": "Simplify $\\sqrt{4}$.", "solution": "\\boxed{2}", "answer": "2"},
                {"problem": "Compute $3-1$.", "solution": "\\boxed{2}", "answer": "2"}],
    "amc23": [{"id": i, "question": f"How many sides has shape {i}?", "answer": float(i + 3)} for i in range(3)],
    "gsm8k": [{"question": f"Tom has {n} apples and buys 2. How many?", "answer": f"{n}+2={n + 2}\n#### {n + 2}"}
              for n in (1, 2, 3)],
    "minerva": [{"question": f"Give {n} in binary.", "answer": bin(n)[2:]} for n in (5, 6, 7)],
}
SAMPLES = {"aime24": 4, "aime25": 4, "math500": 2, "amc23": 2, "gsm8k": 2, "minerva": 2}
CHAT_TEMPLATE = ("{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")


def _jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture(scope="module")
def paper_files(tmp_path_factory):
    """A tiny HF-format Llama with a char tokenizer and chat template, the train file and the six suites."""
    from igrpo.models.tiny import build_char_tokenizer, build_tiny_model

    root = tmp_path_factory.mktemp("paper")
    tok = build_char_tokenizer()
    tok.chat_template = CHAT_TEMPLATE
    model = build_tiny_model(tok, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
                             max_positions=1024, seed=0)
    model.save_pretrained(root / "model")
    tok.save_pretrained(root / "model")
    train = [{"problem": f"What is {a}+{b}?", "solution": f"{a}+{b}={a + b}, so $\\boxed{{{a + b}}}$.",
              "level": "Level 1"} for a in range(1, 5) for b in range(1, 4)]
    files = {"model": str(root / "model"), "train": _jsonl(root / "math_train.jsonl", train)}
    files.update({suite: _jsonl(root / f"{suite}.jsonl", rows) for suite, rows in SUITES.items()})
    return files


def paper_args(files: dict, db) -> list[str]:
    args = ["model=hf", f"model.path={files['model']}", "model.chat_template=true", "task=math",
            f"task.path={files['train']}", "eval=paper", "eval.max_new_tokens=16",
            "generation.max_completion_length=16", "train.steps=1", "train.prompts_per_step=2", "rollout_budget=4",
            f"tracking.uri=sqlite:///{db}", "quiet=true"]
    for suite, k in SAMPLES.items():
        args += [f"eval.suites.{suite}.path={files[suite]}", f"eval.suites.{suite}.samples={k}"]
    return args


def _runs(db):
    client = MlflowClient(f"sqlite:///{db}")
    experiment = client.get_experiment_by_name("igrpo")
    return client, ([] if experiment is None else client.search_runs([experiment.experiment_id]))


@pytest.fixture(scope="module")
def paper_runs(paper_files, tmp_path_factory):
    """GRPO and iGRPO (refinement template `paper`) as one multirun of the real CLI: one process start for
    both runs (most of a tiny run's time on a loaded machine is importing torch/transformers/TRL/MLflow). The two
    runs set different variant fields, so they go through a plan (hydra/sweeper=igrpo_plan), as experiments do."""
    cwd = tmp_path_factory.mktemp("paper_runs")
    db = cwd / "mlflow.db"
    plan = cwd / "plan.json"
    # iGRPO hands its final evaluation to the eval-job path (eval.mode=job); GRPO evaluates inline
    plan.write_text(json.dumps([["variant=grpo"], ["variant=igrpo", "variant.num_drafts=2", "variant.template=paper",
                                                   "eval.mode=job", f"eval.store_root={cwd / 'eval_store'}"]]))
    proc = run_cli(["-m", "hydra/sweeper=igrpo_plan", f"hydra.sweeper.plan={plan}", "eval.greedy=true",
                    *paper_args(paper_files, db)], cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client, runs = _runs(db)
    children = {r.data.tags["variant"]: r for r in runs if r.data.tags.get("phase") == "train"}
    return proc, client, children, cwd


@pytest.mark.parametrize("variant", ["grpo", "igrpo"])
def test_paper_eval_end_to_end_through_the_cli(variant, paper_runs):
    proc, client, children, cwd = paper_runs
    run = children[variant]
    assert run.info.status == "FINISHED" and run.data.tags["task"] == "math"
    metrics = run.data.metrics
    for suite, k in SAMPLES.items():
        for name in (f"eval/{suite}/avg_at_{k}", f"eval/{suite}/greedy"):
            steps = [m.step for m in client.get_metric_history(run.info.run_id, name)]
            assert steps == [0, 1], name  # base model and after training
            assert 0.0 <= metrics[name] <= 1.0
    mean = sum(metrics[f"eval/{s}/avg_at_{k}"] for s, k in SAMPLES.items()) / len(SAMPLES)
    assert metrics["eval/mean/avg_at_k"] == pytest.approx(mean) and "eval/mean/greedy" in metrics
    assert "eval_gain/mean/avg_at_k" in metrics
    assert not any(key.startswith("eval/mean/avg_at_") and key != "eval/mean/avg_at_k" for key in metrics)  # mixed k
    assert "objective eval/mean/avg_at_k = " in proc.stdout and "eval/aime24/avg_at_4" in proc.stdout
    # what data loading dropped, as params (the train file has no bad row and shares no problem with a suite)
    assert run.data.params["data/skipped_rows"] == "0" and run.data.params["data/held_out_removed"] == "0"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "eval_job")}
    if variant == "igrpo":  # the eval-job path: every sample graded into the store and the per-sample table
        problems = sum(len(rows) for rows in SUITES.values())
        assert metrics["eval_job/generated_problems"] == problems and metrics["eval_job/reused_problems"] == 0
        assert artifacts == {"eval_job/samples_step1.json"}
        per_sample = json.loads(open(client.download_artifacts(run.info.run_id, "eval_job/samples_step1.json",
                                                               str(cwd))).read())
        assert len(per_sample["data"]) == sum(len(rows) * SAMPLES[s] for s, rows in SUITES.items())
    else:
        assert not artifacts and "eval_job/generated_problems" not in metrics
    rows = json.loads(open(client.download_artifacts(run.info.run_id, "rollouts.json", str(cwd))).read())
    rows = [dict(zip(rows["columns"], row)) for row in rows["data"]]
    prompts = {r["stage"]: r["prompt"] for r in rows}
    if variant == "igrpo":
        assert set(prompts) == {"draft", "refinement"}
        assert prompts["draft"].startswith("<|user|>What is ") and prompts["draft"].endswith("\n<|assistant|>")
        # Stage 2: the paper template in the user turn of the same chat frame, the selected draft inside <draft>
        refinement = prompts["refinement"]
        assert refinement.startswith("<|user|>What is ") and "\n</draft>\n<|assistant|>" in refinement
        assert "A previous draft solution is given below" in refinement
    else:
        assert set(prompts) == {"grpo"} and prompts["grpo"].endswith("within \\boxed{}.\n<|assistant|>")


def test_malformed_train_file_stops_the_run_before_anything_is_written(paper_files, tmp_path):
    db = tmp_path / "mlflow.db"
    bad = _jsonl(tmp_path / "bad.jsonl", [{"problem": "p", "solution": "\\boxed{1}"}, {"problem": "q"}])
    proc = run_cli([*paper_args(paper_files, db), "variant=grpo", f"task.path={bad}"], cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: task.path={bad}: 1 of 2 rows are unusable, more than task.max_bad_fraction=0.05 allows: line 2: "
        "missing field 'solution' (rows have fields: problem, solution)"]
    assert not db.exists() and not list(tmp_path.rglob("result.json"))  # no MLflow run, no run output


def test_half_precision_on_cpu_is_a_one_line_error(paper_files, compose):
    from igrpo.errors import ConfigError
    from igrpo.config.validate import validate

    cfg = compose("model=r1_distill_qwen_7b", f"model.path={paper_files['model']}", "variant=grpo")
    assert cfg.model.dtype == "bfloat16" and cfg.model.chat_template and "\\boxed{}" in cfg.model.prompt_template
    with pytest.raises(ConfigError, match=r"^model.dtype=bfloat16 is not valid with device=cpu .*model.dtype=float32"):
        validate(cfg)


@pytest.mark.parametrize("name", ["r1_distill_qwen_7b", "r1_distill_qwen_14b", "openmath_nemotron_7b",
                                  "nemotron_h_8b", "openreasoning_nemotron_7b"])
def test_paper_model_configs_compose_and_validate_on_cpu_in_float32(name, paper_files, compose, monkeypatch):
    from igrpo.config.validate import objective_choices, validate

    # the hub answers (as if probed: no test reaches a real host; the offline case is tests/test_unusable_inputs.py's)
    monkeypatch.setattr("igrpo.config.checks._HUB_PROBE", {"reason": None})
    cfg = compose(f"model={name}", "model.dtype=float32", "variant=grpo", "task=math",
                  f"task.path={paper_files['train']}",
                  "eval=paper", *[f"eval.suites.{s}.path={paper_files[s]}" for s in SUITES])
    assert "/" in compose(f"model={name}").model.path  # the hub id by default
    validate(cfg)
    ks = {s: cfg.eval.suites[s].samples for s in SUITES}
    assert ks == {"aime24": 64, "aime25": 64, "math500": 8, "amc23": 8, "gsm8k": 8, "minerva": 8}
    assert cfg.objective == "eval/mean/avg_at_k" and cfg.eval.temperature == 0.6 and cfg.eval.top_p == 0.95
    evals = [c for c in objective_choices(cfg) if c.startswith("eval/")]
    assert evals == [*(f"eval/{s}/avg_at_{k}" for s, k in ks.items()), "eval/mean/avg_at_k"]


def test_toy_eval_keeps_its_names_and_lists_exactly_what_it_logs(compose):
    from igrpo.config.validate import objective_choices

    cfg = compose()
    evals = [c for c in objective_choices(cfg) if c.startswith("eval/")]
    assert evals == ["eval/easy/avg_at_2", "eval/easy/greedy", "eval/hard/avg_at_2", "eval/hard/greedy",
                     "eval/mean/avg_at_k", "eval/mean/avg_at_2", "eval/mean/greedy"]


@pytest.mark.parametrize("overrides, message", [
    (["task=math", "task.path={train}"], "eval=toy is not valid with task=math: a real dataset has no eval suites"),
    (["task=math", "task.path={train}", "eval=paper", "eval.suites.aime24.path=/nope/aime24.jsonl"],
     "eval.suites.aime24.path=/nope/aime24.jsonl does not exist (no such file)"),
    (["task=math", "task.path=/nope/train.parquet", "eval=paper"], "task.path=/nope/train.parquet does not exist"),
    (["task=acereason", "task.hub=null", "eval=paper"], "task: no data source; set task.path"),
    (["eval=paper", "eval.suites.aime24.samples=0"], "eval.suites.aime24.samples=0 is not valid; it must be > 0"),
    (["eval=paper", "eval.suites.aime24.answer_format=latex"], "eval.suites.aime24.answer_format='latex' is not valid"),
    (["eval=paper", "objective=eval/mean/avg_at_8"], "objective='eval/mean/avg_at_8' is not valid"),
])
def test_task_eval_and_model_mistakes_are_one_line_errors(overrides, message, paper_files, compose):
    from igrpo.errors import ConfigError
    from igrpo.config.validate import validate

    cfg = compose(*[o.format(train=paper_files["train"]) for o in overrides])
    with pytest.raises(ConfigError) as info:
        validate(cfg)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_suite_names_become_metric_names_so_mean_is_reserved(compose):
    from omegaconf import OmegaConf, open_dict

    from igrpo.errors import ConfigError
    from igrpo.config.validate import validate

    cfg = compose("eval=paper")
    with open_dict(cfg):  # a new suite is added in YAML (an eval config of your own); the CLI can only edit suites
        cfg.eval.suites["mean"] = OmegaConf.merge(cfg.eval.suites.aime24, {"hub": "org/data"})
    with pytest.raises(ConfigError, match="^eval.suites.mean is not a valid suite name"):
        validate(cfg)
