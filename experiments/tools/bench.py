"""Benchmark GRPO vs iGRPO at a matched rollout budget on the default config, or runs sharing the CPU.

    python -m experiments.tools.bench                 # 12 steps each on the embedded default
    python -m experiments.tools.bench --steps 20 train.prompts_per_step=16
    python -m experiments.tools.bench --concurrent 2 --steps 10              # one run alone, then 2 at once
    python -m experiments.tools.bench --concurrent 2 --steps 10 --unshared   # ... and 2 at once with torch's default threads

Each run trains in its own subprocess (so peak RSS is its own), without MLflow, from the same
cached base model. The default mode prints a table and a JSON line with median step time, rollout
tokens/s (every generated token: drafts and dynamic sampling's resamples included), peak RSS, and the iGRPO / GRPO
ratios.

``--concurrent N`` trains the same short run (the default variant) once alone, then N copies at once, each
told that N jobs share the machine (``IGRPO_CONCURRENT_JOBS=N``, so each takes its share of the cores: see
igrpo/job/threads.py). It prints each process's wall time (start to exit, imports included) and training time,
and the ratio: wall time until all N finished / wall time of the one alone. ``--unshared`` also runs the N
copies with torch's default threads (one per core each), for the before/after.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _compose(overrides: list[str]):
    from hydra import compose, initialize_config_dir

    from igrpo.config import register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=overrides)


def worker(overrides: list[str], steps: int, share_threads: bool = True) -> dict:
    """Train ``steps`` steps of one variant; return timings from TRL's own per-step log. With ``share_threads``
    torch takes this process's share of the cores (igrpo/job/threads.py), else torch's default."""
    import tempfile

    import torch

    from igrpo.job.cli import quiet_third_party_logs
    from igrpo.job.threads import apply_cpu_threads

    quiet_third_party_logs()
    from igrpo.job.builds import resolve_policy_path
    from igrpo.models.loading import load_policy
    from igrpo.job.runner import seed_everything
    from igrpo.tasks import load_task
    from igrpo.job.factory import make_trainer
    from igrpo.config.validate import validate

    with tempfile.TemporaryDirectory() as scratch:
        cfg = _compose([*overrides, f"train.steps={steps}", "quiet=true", f"output_dir={scratch}"])
        if share_threads:
            apply_cpu_threads(cfg)
        validate(cfg)
        seed_everything(cfg.seed)
        path, _ = resolve_policy_path(cfg, quiet=True)
        model, tokenizer = load_policy(path, cfg.model.dtype, cfg.device, cfg.model.get("attn_implementation"))
        task = load_task(cfg.task, cfg.seed, model_cfg=cfg.model, eval_cfg=cfg.eval, model_dir=path)
        trainer, _ = make_trainer(cfg, model, tokenizer, task, Path(scratch))
        started = time.perf_counter()
        trainer.train()
        train_seconds = time.perf_counter() - started
    logs = [entry for entry in trainer.state.log_history if "step_time" in entry]
    timed = logs[1:] if len(logs) > 1 else logs  # the first step pays one-off warm-up costs
    prompts = cfg.train.prompts_per_step
    tokens = []
    for entry in timed:
        # every token generated for the step's batch (drafts, critiques and dynamic sampling's resamples included),
        # counted where generation happens (TrackedGRPOTrainer: rollouts/generated_tokens)
        step_tokens = entry.get("rollouts/generated_tokens")
        if step_tokens is None:  # a trainer that does not count: the trained completions and iGRPO's drafts
            step_tokens = prompts * trainer.num_generations * entry["completions/mean_length"]
            if "draft/mean_length" in entry:
                step_tokens += prompts * cfg.variant.num_drafts * entry["draft/mean_length"]
        tokens.append(step_tokens / entry["step_time"])
    return {
        "variant": cfg.variant.name,
        "steps_timed": len(timed),
        "median_step_seconds": statistics.median(e["step_time"] for e in timed),
        "rollout_tokens_per_second": statistics.median(tokens),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rollouts_per_prompt": statistics.median(e.get("rollouts/generated_per_prompt", cfg.rollout_budget)
                                                 for e in timed),  # dynamic sampling's resamples included
        "train_seconds": train_seconds,
        "torch_threads": torch.get_num_threads(),
    }


def worker_env(jobs: int, share_threads: bool) -> dict:
    """A benchmark worker's environment: ``jobs`` runs share the machine; no inherited thread settings (the
    bench decides them: the share of the cores, or with ``share_threads=False`` torch's default)."""
    from igrpo.job.threads import CHILD_ENV, CONCURRENT_JOBS_ENV, RESOLVED_ENV

    env = {k: v for k, v in os.environ.items() if k not in (*CHILD_ENV, RESOLVED_ENV, CONCURRENT_JOBS_ENV)}
    if share_threads:
        env[CONCURRENT_JOBS_ENV] = str(jobs)
    return env


def _run_together(count: int, steps: int, overrides: list[str], share_threads: bool) -> list[dict]:
    """Start ``count`` workers at once; each one's wall time (from the common start to its exit) and report."""
    cmd = [sys.executable, "-m", "experiments.tools.bench", "--worker", "--steps", str(steps), *overrides]
    if not share_threads:
        cmd.append("--default-threads")
    env = worker_env(count, share_threads)
    results: list[dict] = [{} for _ in range(count)]
    start = time.perf_counter()

    def one(i: int) -> None:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            results[i] = {"error": proc.stderr[-2000:]}
            return
        results[i] = {"wall_seconds": wall, **json.loads(proc.stdout.strip().splitlines()[-1])}

    workers = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    for r in results:
        if "error" in r:
            sys.exit(f"error: a benchmark worker failed:\n{r['error']}")
    return results


def concurrent(count: int, steps: int, overrides: list[str], unshared: bool) -> dict:
    """One run alone, then ``count`` at once sharing the cores (and, with ``unshared``, at once without)."""
    from igrpo.job.threads import available_cores

    def summary(runs: list[dict]) -> dict:
        return {"wall_seconds": [r["wall_seconds"] for r in runs], "train_seconds": [r["train_seconds"] for r in runs],
                "torch_threads": [r["torch_threads"] for r in runs],
                "all_done_seconds": max(r["wall_seconds"] for r in runs)}

    report = {"concurrent": count, "steps": steps, "overrides": overrides, "cores": available_cores(),
              "load_average_before": list(os.getloadavg())}
    alone = summary(_run_together(1, steps, overrides, share_threads=True))
    report["alone"] = alone
    modes = [("shared", True)] + ([("unshared", False)] if unshared else [])
    for name, share in modes:
        report[name] = summary(_run_together(count, steps, overrides, share_threads=share))
        report[f"ratio_{name}"] = report[name]["all_done_seconds"] / alone["all_done_seconds"]
    report["load_average_after"] = list(os.getloadavg())
    line = f"alone: {alone['all_done_seconds']:.1f} s ({alone['torch_threads'][0]} threads)"
    for name, _ in modes:
        r = report[name]
        walls = ", ".join(f"{w:.1f}" for w in r["wall_seconds"])
        line += (f"; {count} at once {name} ({'/'.join(map(str, r['torch_threads']))} threads): {walls} s"
                 f" -> ratio {report[f'ratio_{name}']:.2f}")
    print(line)
    print(json.dumps(report))
    return report


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--concurrent", type=int, default=0, metavar="N",
                        help="time one run alone, then N copies at once, each with its share of the cores")
    parser.add_argument("--unshared", action="store_true",
                        help="with --concurrent: also run the N copies with torch's default threads")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--default-threads", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides applied to every run")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.overrides, args.steps, share_threads=not args.default_threads)))
        return {}
    if args.concurrent < 0 or (args.unshared and not args.concurrent):
        parser.error("--concurrent N needs N >= 1; --unshared goes with --concurrent")

    # Build (or find) the cached base model once, before timing anything.
    build = subprocess.run([sys.executable, "-m", "experiments.tools.bench", "--worker", "--steps", "1", *args.overrides,
                            *([] if args.concurrent else ["variant=grpo"])], capture_output=True, text=True,
                           check=False)
    if build.returncode != 0:
        sys.exit(f"error: building the base model failed:\n{build.stderr[-2000:]}")
    if args.concurrent:
        return concurrent(args.concurrent, args.steps, args.overrides, args.unshared)
    results = {}
    for variant in ("grpo", "igrpo"):
        proc = subprocess.run([sys.executable, "-m", "experiments.tools.bench", "--worker", "--steps", str(args.steps),
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
