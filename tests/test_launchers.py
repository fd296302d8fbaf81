"""Cluster and parallel sweeps through Hydra launchers: joblib runs jobs in parallel processes for real; the
SLURM (submitit) config composes with every setting a cluster user needs (no SLURM here to submit to)."""

from __future__ import annotations

import mlflow
from tests.helpers import run_cli, tiny_overrides


def test_joblib_launcher_runs_a_parallel_sweep_under_one_parent(tmp_path, model_cache, smoke_model_dir):
    db = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # smoke_model_dir: the tiny model is built first, so the two parallel jobs do not both build it
    proc = run_cli(["-m", "hydra/launcher=local_parallel", "hydra.launcher.n_jobs=2", "variant=grpo,igrpo",
                    *tiny_overrides(model_cache), f"tracking.uri={db}", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Joblib.Parallel(n_jobs=2" in proc.stdout + proc.stderr
    client = mlflow.MlflowClient(db)
    experiments = [e.experiment_id for e in client.search_experiments()]
    (parent,) = client.search_runs(experiments, "tags.phase = 'sweep'")
    children = client.search_runs(experiments, f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert sorted(r.data.tags["variant"] for r in children) == ["grpo", "igrpo"]
    assert all(r.info.status == "FINISHED" for r in [parent, *children])
    pids = {r.data.params.get("variant.name") for r in children}
    assert pids == {"grpo", "igrpo"}


def test_slurm_launcher_config_composes(tmp_path):
    proc = run_cli(["hydra/launcher=slurm", "hydra.launcher.partition=gpu", "hydra.launcher.nodes=2", "--cfg", "hydra",
                    "--package", "hydra.launcher"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher" in out
    for line in ("partition: gpu", "nodes: 2", "gpus_per_node: 8", "max_num_timeout: 3"):
        assert line in out, line
