"""Training's evaluations through the evaluation job (``eval.mode=job``, igrpo/job/eval_phase.py): the base model at
step 0 and the final policy both go through the job's store and backend, in a process of their own when asked, with
the same numbers as the in-process evaluation; a later run on the same base reuses the step-0 samples; an
``eval.max_new_tokens`` beyond the model's context is refused before anything loads; HF generate refuses a paper-scale
evaluation on a GPU it cannot serve. Real CLI, real tiny model, real MLflow store."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from igrpo.errors import ConfigError
from tests.helpers import compose_config, run_cli, tiny_overrides

H100 = 79.6 * 1024**3


def _history(client: MlflowClient, run_id: str) -> dict[str, dict[int, float]]:
    run = client.get_run(run_id)
    return {key: {m.step: m.value for m in client.get_metric_history(run_id, key)}
            for key in run.data.metrics if key.startswith("eval/")}


def _only_run(db: Path) -> str:
    client = MlflowClient(f"sqlite:///{db}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 1
    return runs[0].info.run_id


def test_step_zero_and_final_evaluations_run_through_the_job_in_their_own_process(tmp_path, model_cache):
    common = [*tiny_overrides(model_cache), "variant=grpo", "seed=5"]
    inline = run_cli([*common, f"tracking.uri=sqlite:///{tmp_path / 'inline.db'}", "eval.mode=inline",
                      f"output_dir={tmp_path / 'inline'}"], cwd=tmp_path)
    assert inline.returncode == 0, inline.stderr[-3000:]
    store = tmp_path / "eval_store"
    # eval.process=own: each evaluation in a process of its own (what CUDA and vLLM runs get by default)
    job = [*common, f"tracking.uri=sqlite:///{tmp_path / 'job.db'}", "eval.mode=job", "eval.process=own",
           f"eval.store_root={store}"]
    first = run_cli([*job, f"output_dir={tmp_path / 'job1'}"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    expected = _history(MlflowClient(f"sqlite:///{tmp_path / 'inline.db'}"), _only_run(tmp_path / "inline.db"))
    got = _history(MlflowClient(f"sqlite:///{tmp_path / 'job.db'}"), _only_run(tmp_path / "job.db"))
    steps = {0, 2}
    for key, values in expected.items():
        if key.startswith("eval/") and set(values) == steps:
            assert got[key] == values, key  # same chunks, same seeds, same fp32 weights: the same numbers
    assert "eval/mean/avg_at_k" in got
    # the base model's samples are kept under a key of what fixes them; the final policy's under the run
    stores = sorted(p.name for p in store.iterdir())
    assert len(stores) == 2 and any(name.startswith("run-") for name in stores)
    lines = [line for line in first.stdout.splitlines() if line.startswith("eval job:")]
    assert len(lines) == 2 and all("0 problems already graded (reused)" in line for line in lines)
    # a second run on the same base model and evaluation reuses the step-0 samples (a sweep evaluates its base once)
    second = run_cli([*(o for o in job if not o.startswith("tracking.uri=")), f"output_dir={tmp_path / 'job2'}",
                      "variant=igrpo", "eval.process=same", f"tracking.uri=sqlite:///{tmp_path / 'igrpo.db'}"],
                     cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]  # in the training process: it never changes the store key
    lines = [line for line in second.stdout.splitlines() if line.startswith("eval job:")]
    assert " 0 generated" in lines[0] and "(reused), 0 generated" in lines[0]
    assert " 0 generated" not in lines[1]
    # iGRPO's draft-conditioned diagnostic runs beside the job at step 0 and at the end, as in eval.mode=inline
    refine = _history(MlflowClient(f"sqlite:///{tmp_path / 'igrpo.db'}"), _only_run(tmp_path / "igrpo.db"))
    assert set(refine["eval/mean/refine_avg_at_k"]) == steps, refine.get("eval/mean/refine_avg_at_k")


@pytest.mark.parametrize("entry", ["run", "eval"])
def test_max_new_tokens_beyond_the_models_context_is_refused_before_anything_loads(tmp_path, model_cache, entry):
    import subprocess
    import sys

    from tests.helpers import subprocess_env

    args = [*tiny_overrides(model_cache), "eval.max_new_tokens=300", f"tracking.uri=sqlite:///{tmp_path / 'm.db'}",
            f"eval.store_root={tmp_path / 'store'}"]
    if entry == "run":
        done = run_cli(args, cwd=tmp_path)
    else:
        done = subprocess.run([sys.executable, "-m", "igrpo.eval", *args], cwd=tmp_path, env=subprocess_env(),
                              capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: eval.max_new_tokens=300 exceeds the context of the model") and \
        "(256 tokens)" in last and "eval.max_new_tokens=256 or less" in last, last
    assert not (tmp_path / "m.db").exists() and not (tmp_path / "store").exists()  # nothing written


def test_hf_generate_refuses_a_paper_scale_evaluation_it_cannot_serve():
    from igrpo.plan.setup import check_eval_fits

    with pytest.raises(ConfigError, match=r"^eval.max_new_tokens=65000 cannot be served by HF generate: .*64 "
                                          r"sequences x 66,024 tokens x 56 KiB.*need 240 GiB.*eval.mode=job "
                                          r"generation=vllm") as err:
        check_eval_fits(compose_config("experiment=paper", "eval.mode=inline"), H100)
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="cannot be served by HF generate"):
        check_eval_fits(compose_config("experiment=paper", "generation=hf"), H100)
    check_eval_fits(compose_config("experiment=paper"), H100)  # the preset: the job, through vLLM
    check_eval_fits(compose_config("experiment=paper", "eval.mode=inline", "eval.max_new_tokens=4096",
                                   "eval.batch_size=16"), H100)  # a size HF can serve


def test_where_the_evaluation_runs_and_who_takes_part():
    from igrpo.job.eval_phase import _child_env, evaluating_processes, in_own_process

    assert not in_own_process(compose_config())  # CPU, HF: in the training process
    assert in_own_process(compose_config("eval.process=own"))
    assert in_own_process(compose_config("experiment=paper"))  # CUDA and vLLM
    assert not in_own_process(compose_config("experiment=paper", "eval.process=same"))
    assert evaluating_processes(compose_config("experiment=paper"), 8) == 8
    assert evaluating_processes(compose_config("experiment=paper", "generation.tensor_parallel_size=2"), 8) == 1
    cfg = compose_config("experiment=paper")
    import os

    saved = dict(os.environ)
    try:
        os.environ.update({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "3", "MASTER_PORT": "1",
                           "ACCELERATE_USE_DEEPSPEED": "true", "CUDA_VISIBLE_DEVICES": "4,5,6,7"})
        env = _child_env(cfg, 3, 4)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert env["CUDA_VISIBLE_DEVICES"] == "7"  # that rank's GPU only
    assert not {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT", "ACCELERATE_USE_DEEPSPEED"} & set(env)
