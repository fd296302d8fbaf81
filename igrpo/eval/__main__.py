"""``python -m igrpo.eval [overrides...]``: the evaluation job (``igrpo.job.eval_job``), a Hydra app over ``conf/``.

    python -m igrpo.eval eval.run_id=<training run id>            # its saved model, logged into it
    python -m igrpo.eval model=r1_distill_qwen_7b eval=paper generation=vllm    # a hub model, a new phase=eval run
    python -m igrpo.eval eval.checkpoint=outputs/.../final eval=paper

The same command after a kill resumes: graded problems are not generated again. Mistakes end with one
``error: ...`` line and exit status 2.
"""

import sys

from igrpo.job.cli import check_group_choices, job_errors, quiet_third_party_logs, run_hydra_app

check_group_choices(sys.argv[1:])
quiet_third_party_logs()

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from igrpo.config import register_configs  # noqa: E402

register_configs()


@hydra.main(version_base="1.3", config_path="../../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    import signal

    # a terminated job unwinds like an error, so its own MLflow run is closed (FAILED), not left RUNNING
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    with job_errors():
        from igrpo.config.validate import validate_for_eval

        from igrpo.training.vllm_engine import keep_vllm_out_unless_used

        keep_vllm_out_unless_used(cfg)  # generation=hf: TRL does not import vLLM (faster start)
        validate_for_eval(cfg)  # before importing torch and the eval stack: a mistake costs a second or two
        from igrpo.job.threads import apply_cpu_threads

        apply_cpu_threads(cfg)
        from igrpo.job.eval_job import run_eval_job

        metrics = run_eval_job(cfg)
    for key in sorted(metrics):
        print(f"  {key:28s} {metrics[key]:.4f}")
    return float(metrics.get("eval/mean/avg_at_k", float("nan")))


if __name__ == "__main__":
    run_hydra_app(main, sys.argv[1:])  # Hydra's own errors as one line, exit 2
