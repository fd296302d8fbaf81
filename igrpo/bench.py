"""Benchmark GRPO vs iGRPO at a matched rollout budget on the default config.

    python -m igrpo.bench                 # 12 steps each on the embedded default
    python -m igrpo.bench --steps 20 train.prompts_per_step=16

Each variant trains in its own subprocess (so peak RSS is its own), without MLflow, from the same
cached base model. Prints a table and a JSON line with median step time, rollout tokens/s (drafts
included), peak RSS, and the iGRPO / GRPO ratios.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _compose(overrides: list[str]):
    from hydra import compose, initialize_config_dir

    from igrpo.config import register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=overrides)


def worker(overrides: list[str], steps: int) -> dict:
    """Train ``steps`` steps of one variant; return timings from TRL's own per-step log."""
    import tempfile

    from igrpo.cli import quiet_third_party_logs

    quiet_third_party_logs()
    from igrpo.models.loading import load_policy
    from igrpo.builds import resolve_policy_path
    from igrpo.runner import seed_everything
    from igrpo.tasks import load_task
    from igrpo.trainer_factory import make_trainer
    from igrpo.validate import validate

    with tempfile.TemporaryDirectory() as scratch:
        cfg = _compose([*overrides, f"train.steps={steps}", "quiet=true", f"output_dir={scratch}"])
        validate(cfg)
        seed_everything(cfg.seed)
        path, _ = resolve_policy_path(cfg, quiet=True)
        model, tokenizer = load_policy(path, cfg.model.dtype, cfg.device)
        task = load_task(cfg.task, cfg.seed, model_cfg=cfg.model, eval_cfg=cfg.eval)
        trainer, _ = make_trainer(cfg, model, tokenizer, task, Path(scratch))
        trainer.train()
    logs = [entry for entry in trainer.state.log_history if "step_time" in entry]
    timed = logs[1:] if len(logs) > 1 else logs  # the first step pays one-off warm-up costs
    prompts = cfg.train.prompts_per_step
    tokens = []
    for entry in timed:
        n_completions = prompts * trainer.num_generations
        step_tokens = n_completions * entry["completions/mean_length"]
        if "draft/mean_length" in entry:
            step_tokens += prompts * cfg.variant.num_drafts * entry["draft/mean_length"]
        tokens.append(step_tokens / entry["step_time"])
    return {
        "variant": cfg.variant.name,
        "steps_timed": len(timed),
        "median_step_seconds": statistics.median(e["step_time"] for e in timed),
        "rollout_tokens_per_second": statistics.median(tokens),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rollouts_per_prompt": cfg.rollout_budget,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides applied to both variants")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.overrides, args.steps)))
        return {}

    # Build (or find) the cached base model once, before timing anything.
    subprocess.run([sys.executable, "-m", "igrpo.bench", "--worker", "--steps", "1", *args.overrides,
                    "variant=grpo"], check=True, capture_output=True, text=True)
    results = {}
    for variant in ("grpo", "igrpo"):
        proc = subprocess.run([sys.executable, "-m", "igrpo.bench", "--worker", "--steps", str(args.steps),
                               *args.overrides, f"variant={variant}"], capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"error: benchmark worker for variant={variant} failed:\n{proc.stderr[-2000:]}")
        results[variant] = json.loads(proc.stdout.strip().splitlines()[-1])
    g, i = results["grpo"], results["igrpo"]
    ratios = {
        "step_time_igrpo_over_grpo": i["median_step_seconds"] / g["median_step_seconds"],
        "tokens_per_second_igrpo_over_grpo": i["rollout_tokens_per_second"] / g["rollout_tokens_per_second"],
        "peak_rss_igrpo_over_grpo": i["peak_rss_mb"] / g["peak_rss_mb"],
    }
    print(f"{'variant':8s} {'median step s':>14s} {'rollout tok/s':>14s} {'peak RSS MB':>12s}")
    for name, r in results.items():
        print(f"{name:8s} {r['median_step_seconds']:14.3f} {r['rollout_tokens_per_second']:14.1f} "
              f"{r['peak_rss_mb']:12.1f}")
    for key, value in ratios.items():
        print(f"{key}: {value:.3f}")
    report = {"results": results, "ratios": ratios, "overrides": args.overrides, "steps": args.steps}
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
