"""Paper-scale presets (conf/experiment/): ``experiment=paper`` composes the paper's recipe (arXiv 2602.09000, "Training
recipe"), compared value by value with the table below; every paper-scale command of the README and every spec's
paper scale composes and passes validation without loading weights (or needing CUDA); Table 3's paper judge arm
has a real judge; the tiny model's settings on a real model are refused through the real CLI; and a cosine run
with ``algo.min_lr_rate=0.1`` logs 10% of the peak LR at its last step."""

from __future__ import annotations

import itertools
import re
import shlex
import struct

import pytest
from mlflow.tracking import MlflowClient

from experiments.execute import compose_runs
from experiments.plan import plan_runs
from experiments.spec import load_spec, spec_names
from igrpo.config.validate import validate
from tests.helpers import ROOT, compose_config, run_cli

# the paper's training recipe (docs/configuration.md), as config fields (the iGRPO rows: variant=igrpo only)
PAPER_RECIPE = {
    "model.path": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
    "model.dtype": "bfloat16",
    "model.chat_template": True,
    "task.name": "math",
    "task.hub": "DigitalLearningGmbH/MATH-lighteval",
    "eval.name": "paper",
    "generation.name": "vllm",
    "device": "cuda",
    "algo.learning_rate": 1e-6,
    "algo.lr_scheduler_type": "cosine",
    "algo.min_lr_rate": 0.1,
    "algo.warmup_ratio": 0.1,
    "algo.beta": 0.0,
    "entropy.name": "none",
    "generation.temperature": 0.7,
    "train.max_prompt_tokens": 1024,
    "generation.max_completion_length": 4096,
    "train.prompts_per_step": 128,
    "rollout_budget": 8,
    "train.gradient_accumulation_steps": 8,
    "train.gradient_checkpointing": True,
    "train.steps": 58,
    "reward.name": "binary",
    "reward.verifier": "math_verify",
    "reward.format_weight": 1.0,
}
PAPER_IGRPO = {
    "variant.num_drafts": 4,
    "variant.num_refinements": 4,
    "variant.template": "paper",
    "variant.draft_content": "answer_section",
    "variant.max_draft_tokens": 640,
    "variant.draft_truncation": "tail",
}


def _value(cfg, dotted: str):
    node = cfg
    for key in dotted.split("."):
        node = node[key]
    return node


def _assert_values(cfg, expected: dict) -> None:
    wrong = {k: (_value(cfg, k), v) for k, v in expected.items() if _value(cfg, k) != v}
    assert not wrong, f"(composed, expected): {wrong}"


def test_experiment_paper_composes_the_papers_recipe():
    cfg = compose_config("experiment=paper", "model=r1_distill_qwen_7b")
    assert cfg.variant.name == "igrpo"
    _assert_values(cfg, {**PAPER_RECIPE, **PAPER_IGRPO})
    validate(cfg, machine=False)
    # 128 prompts x 8 = 1,024 completions per optimizer step, as 8 micro-batches of 128 (one process)
    from igrpo.job.factory import per_device_batch, vllm_max_model_len

    assert per_device_batch(128, 4, 1, 8) * 8 == 128 * 4  # iGRPO trains on its 4 refinements per prompt
    assert per_device_batch(128, 8, 1, 8) == 128  # GRPO: 128 completions per micro-step, x8 (the paper)
    assert vllm_max_model_len(cfg) == 1024 + 4096


def test_the_recipe_is_shared_and_model_chooses_the_model_only():
    grpo = compose_config("experiment=paper", "model=openmath_nemotron_7b", "variant=grpo")
    _assert_values(grpo, {**PAPER_RECIPE, "model.path": "nvidia/OpenMath-Nemotron-7B"})
    assert "template" not in grpo.variant and "draft_content" not in grpo.variant  # GRPO has no draft fields
    validate(grpo, machine=False)
    dapo = compose_config("experiment=paper", "algo=dapo")
    _assert_values(dapo, {"algo.name": "dapo", "algo.learning_rate": 1e-6, "algo.min_lr_rate": 0.1,
                          "algo.lr_scheduler_type": "cosine"})


def test_acereason_headline_preset():
    cfg = compose_config("experiment=paper_acereason")
    _assert_values(cfg, {**PAPER_RECIPE, **PAPER_IGRPO, "model.path": "nvidia/OpenReasoning-Nemotron-7B",
                         "task.name": "acereason", "task.hub": "nvidia/AceReason-Math", "task.max_train_size": 9400,
                         "train.steps": 73})
    validate(cfg, machine=False)


@pytest.mark.parametrize("preset, backend", [("paper_judge", "hf"), ("paper_judge_http", "http")])
def test_judge_presets_use_a_real_judge(preset, backend):
    cfg = compose_config(f"experiment={preset}")
    _assert_values(cfg, {**{k: v for k, v in PAPER_RECIPE.items() if not k.startswith("reward.")}, **PAPER_IGRPO,
                         "reward.name": "judge", "reward.judge.backend": backend, "reward.judge.template": "paper",
                         "reward.judge.verdict": "word"})
    assert cfg.reward.judge.max_candidate_chars >= 4 * 4096  # a whole 4,096-token solution (~4 characters a token)
    assert cfg.reward.judge.get("max_candidate_tokens", 4096) == 4096  # hf: and in the judge's tokens
    validate(cfg, machine=False)


PRESETS = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("paper*.yaml"))  # the paper's recipe presets


@pytest.mark.parametrize("variant", ["grpo", "igrpo"])
@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_composes_and_validates(preset, variant):
    """Every paper preset of conf/experiment/ (a new one included), with the plain and the iGRPO wrapper (the tiny
    model's answer_tail preset: tests/test_warmstart_formats.py)."""
    cfg = compose_config(f"experiment={preset}", f"variant={variant}", "reward.judge.url=http://judge:8000/v1"
                         if preset.endswith("_http") else "seed=0")
    validate(cfg, machine=False)
    assert cfg.algo.min_lr_rate == 0.1 and cfg.train.max_prompt_tokens == 1024


def _readme_paper_commands() -> list[list[str]]:
    """The `python run.py ... experiment=...` lines of the README's code blocks, as run.py arguments (a -m sweep
    expanded into its runs; launcher settings dropped)."""
    commands = []
    for line in (ROOT / "README.md").read_text().splitlines():
        words = shlex.split(line.split(" #")[0]) if "experiment=paper" in line else []
        if "run.py" not in words:
            continue
        if "--cfg" in words:  # `--cfg job`: print instead of run
            del words[words.index("--cfg"):words.index("--cfg") + 2]
        args = [w for w in words[words.index("run.py") + 1:] if not w.startswith(("hydra/", "hydra.", "-"))]
        choices = [[f"{w.split('=', 1)[0]}={v}" for v in w.split("=", 1)[1].split(",")] if "=" in w else [w]
                   for w in args]
        commands += [list(c) for c in itertools.product(*choices)]
    return commands


def test_readme_paper_commands_compose_and_validate():
    commands = _readme_paper_commands()
    assert len(commands) >= 4, commands
    for args in commands:
        assert "..." not in args, args
        validate(compose_config(*args), machine=False)


@pytest.mark.parametrize("name", [n for n in spec_names()])
def test_every_spec_paper_scale_uses_the_preset_and_validates(name, tmp_path):
    runs = plan_runs(load_spec(name), "paper", seeds=[0])
    for run, cfg in zip(runs, compose_runs(runs, tmp_path, check_values=False)):  # validate(machine=False)
        assert any(o.startswith("experiment=paper") for o in run.overrides), run.overrides
        _assert_values(cfg, {k: v for k, v in PAPER_RECIPE.items() if k in (
            "algo.min_lr_rate", "train.max_prompt_tokens", "train.gradient_accumulation_steps", "generation.name")})


def test_table3_paper_dry_run_shows_a_real_judge(tmp_path):
    """Acceptance 7: `python -m experiments run table3 --scale paper --dry-run`, as a user types it."""
    import subprocess
    import sys

    from tests.helpers import subprocess_env

    proc = subprocess.run([sys.executable, "-m", "experiments", "run", "table3", "--scale", "paper", "--dry-run",
                           "--out", str(tmp_path / "out")], cwd=ROOT, env=subprocess_env(), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    runs = [line for line in proc.stdout.splitlines() if line.startswith("run #")]
    judge = [line for line in runs if "/ judge seed" in line]
    assert len(runs) == 2 and len(judge) == 1, runs
    assert "reward/judge=hf" in judge[0] and "experiment=paper_judge" in judge[0]
    cfgs = compose_runs(plan_runs(load_spec("table3"), "paper", seeds=[0]), tmp_path, check_values=False)
    by_reward = {cfg.reward.name: cfg for cfg in cfgs}
    assert by_reward["judge"].reward.judge.backend == "hf" and by_reward["judge"].reward.judge.template == "paper"
    assert by_reward["judge"].variant.name == by_reward["binary"].variant.name == "igrpo"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A directory holding a model (a real model as far as validation can tell without loading it)."""
    path = tmp_path_factory.mktemp("real_model")
    (path / "config.json").write_text('{"model_type": "llama"}')
    # what validation asks for: a config, weights (a safetensors header, here with no tensors), a tokenizer
    (path / "model.safetensors").write_bytes(struct.pack("<Q", 2) + b"{}")
    (path / "tokenizer.json").write_text("{}")
    return path


@pytest.mark.parametrize("args, expected", [
    ("variant=igrpo", r"^error: variant.template=tiny is the embedded tiny model's refinement format, not valid with "
                      r"a real model .*; use experiment=paper"),
    ("variant=igrpo variant.template=paper generation.max_completion_length=512 variant.max_draft_tokens=16",
     r"^error: variant.max_draft_tokens=16 is the embedded tiny model's draft cap .* use experiment=paper or set "
     r"variant.max_draft_tokens >= 256"),
    ("variant=critique_grpo", r"^error: variant.template=tiny is the embedded tiny model's critique-refinement format, "
                              r"not valid with a real model .*; set variant.template=paper"),
    ("variant=self_verify", r"^error: variant.layout=tiny is the embedded tiny model's verify prompt, not valid with a "
                            r"real model .*; set variant.layout=turns"),
    ("variant=grpo reward=judge task=math eval=paper",
     r"^error: reward.judge.backend=tiny is the embedded judge of the arithmetic task .* not valid with task=math; "
     r"use experiment=paper_judge"),
])
def test_tiny_settings_on_a_real_model_are_refused_in_one_line(args, expected, model_dir, tmp_path):
    """Acceptance 6, through the real CLI: exit 2, one line naming the preset, no traceback, no MLflow store."""
    db = tmp_path / "mlflow.db"
    proc = run_cli(["model=hf", f"model.path={model_dir}", *args.split(), f"tracking.uri=sqlite:///{db}"], cwd=tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert re.match(expected, lines[0]), lines[0]
    assert "Traceback" not in proc.stderr and not db.exists()


def test_draft_cap_that_cuts_nothing_is_not_refused(compose, model_dir):
    """A cap at or above the completion cap never cuts a draft (a tiny test model with 16-token completions)."""
    validate(compose("model=hf", f"model.path={model_dir}", "variant=igrpo", "variant.template=paper",
                     "generation.max_completion_length=16", "variant.max_draft_tokens=16"))


def _schedule(args, steps: int) -> tuple[list[float], float]:
    """The LR each of ``steps`` optimizer steps trains at under ``args`` (a GRPOConfig), by transformers' own
    scheduler, and the LR after the last scheduler step."""
    import torch
    from transformers import get_scheduler

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=args.learning_rate)
    scheduler = get_scheduler(args.lr_scheduler_type, optimizer, num_warmup_steps=args.get_warmup_steps(steps),
                              num_training_steps=steps, scheduler_specific_kwargs=args.lr_scheduler_kwargs)
    used = []
    for _ in range(steps):
        used.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return used, scheduler.get_last_lr()[0]


def test_cosine_with_min_lr_rate_is_logged_and_ends_at_the_floor(compose, tmp_path):
    """Acceptance 4: a real run's logged LR per step is the cosine schedule with the 10% floor (where it ends),
    never below it; the LR a run logs is the one its step trained at, so its last step trains just above the floor."""
    from igrpo.job.runner import run
    from igrpo.job.factory import build_grpo_args

    cosine = ("variant=grpo", "train.steps=4", "algo.lr_scheduler_type=cosine", "algo.warmup_ratio=0.25",
              "algo.learning_rate=1e-4")
    cfg = compose(*cosine, "algo.min_lr_rate=0.1")
    result = run(cfg)
    history = MlflowClient(cfg.tracking.uri).get_metric_history(result.run_id, "train/learning_rate")
    logged = [m.value for m in sorted(history, key=lambda m: m.step)]
    used, final = _schedule(build_grpo_args(cfg, tmp_path), 4)
    print("logged LR per step:", logged, "after the last step:", final)
    assert logged == pytest.approx(used, rel=1e-9) and max(logged) == pytest.approx(1e-4)
    assert final == pytest.approx(1e-5, rel=1e-9)  # 10% of the peak, not 0
    assert min(logged[1:]) > 1e-5  # warmup starts at 0; after it, never below the floor
    unfloored, end = _schedule(build_grpo_args(compose(*cosine, "algo.min_lr_rate=0"), tmp_path), 4)
    assert end == pytest.approx(0.0, abs=1e-12) and unfloored[-1] < used[-1]


def test_paper_schedule_trains_its_last_step_at_ten_percent(tmp_path):
    """The preset's 58 steps (warmup 0.1): the last step trains at ~10% of the peak (the floor), where a plain
    cosine would train at ~0.1%."""
    from igrpo.job.factory import build_grpo_args

    cfg = compose_config("experiment=paper", "generation=hf", "device=cpu", "model.dtype=float32")
    args = build_grpo_args(cfg, tmp_path)
    assert (args.lr_scheduler_type, args.lr_scheduler_kwargs) == ("cosine_with_min_lr", {"min_lr_rate": 0.1})
    used, final = _schedule(args, cfg.train.steps)
    print(f"paper schedule: peak {max(used):.3g}, last step {used[-1]:.4g} ({used[-1] / 1e-6:.2%}), end {final:.3g}")
    assert max(used) == pytest.approx(1e-6) and final == pytest.approx(1e-7)
    assert 0.1 <= used[-1] / 1e-6 < 0.102
