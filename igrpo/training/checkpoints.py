"""Checkpoints and resume (``train.save_every > 0``): a run killed at any moment, SIGKILL included, starts
again from its newest complete checkpoint, into the same MLflow run, and every step's metrics end up in
MLflow exactly once.

One directory per configured run, ``<train.checkpoint_root>/<config_hash>-<destination>`` (destination: a
short hash of where the run is logged: tracking URI, experiment, run name, tags), so the same command finds
it again although Hydra gives every launch a new output dir::

    .lock                  held (flock) by the process running this config; released by the kernel on death
    mlflow_run.json        {"run_id", "tracking_uri"}, written as soon as the MLflow run exists
    checkpoint-<k>/        transformers' checkpoint (weights, optimizer, scheduler, RNG, trainer state) ...
        igrpo_state.json   ... and, written last, ours: the step metrics committed with it + trainer state
        igrpo_rank<r>.json rank r's trainer state (multi-process runs; rank 0's is in igrpo_state.json)

Exactly once: per-step metrics are held in memory and committed at each checkpoint, first into its
``igrpo_state.json``, then to MLflow (``MlflowMetricsCallback``). A checkpoint is *complete* once it has
``igrpo_state.json``. On restart the newest complete checkpoint K is the resume point: metrics of steps <= K
are in MLflow or in K's state file (and logged from there if the kill came in between), steps > K were never
logged, so re-running them logs them once. transformers deletes old checkpoints only after writing a new
one, which is incomplete until its state is written, so at least 2 are kept. A FINISHED run's checkpoints
are deleted (a later launch of the same command is a new run).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from transformers import TrainerCallback

from igrpo.training.distributed import gather_objects, process_index
from igrpo.errors import ConfigError
from igrpo.tracking.resume import run_contents
from igrpo.tracking.runs import FINISHED, KILLED, RUNNING, RunLog, RunState, run_state, set_status

STATE_FILE = "igrpo_state.json"
RUN_FILE = "mlflow_run.json"
LOCK_FILE = ".lock"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def run_checkpoint_dir(cfg, chash: str, tracking_uri: str, run_name: str) -> Path | None:
    """This run's checkpoint dir, or None when checkpoints are off."""
    if cfg.train.save_every <= 0:
        return None
    tags = {str(k): str(v) for k, v in (cfg.tracking.tags or {}).items()}
    destination = json.dumps([tracking_uri, cfg.tracking.experiment, run_name, tags], sort_keys=True)
    suffix = hashlib.sha256(destination.encode()).hexdigest()[:8]
    return Path(cfg.train.checkpoint_root).resolve() / f"{chash}-{suffix}"


def _write_json(path: Path, data) -> None:
    """Write-then-rename: a reader (or a restart after a kill) sees the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _step_of(path: Path) -> int | None:
    match = _CHECKPOINT.match(path.name)
    return int(match.group(1)) if match and path.is_dir() else None


# --- trainer state beyond transformers' checkpoint ---------------------------------------------------------------


def trainer_snapshot(trainer, recorder) -> dict:
    """What a restarted trainer needs besides transformers' checkpoint: the trainer's own extra state (entropy
    schedule, last observed entropy, iGRPO's draft-selection RNG) and the rollout table so far."""
    return {**trainer.extra_state(), "rollout_rows": list(recorder.rows) if recorder is not None else []}


def restore_trainer(trainer, recorder, snap: dict, rows: bool = True) -> None:
    trainer.load_extra_state({k: v for k, v in snap.items() if k != "rollout_rows"})
    if rows and recorder is not None:
        recorder.rows[:] = snap.get("rollout_rows", [])


def state_writer(trainer, recorder):
    """``MlflowMetricsCallback.on_checkpoint`` for the main process: completes a checkpoint."""

    def write(folder: Path, pending: dict[int, dict]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        _write_json(folder / STATE_FILE, {"metrics": {str(step): rec for step, rec in pending.items()},
                                          "trainer": trainer_snapshot(trainer, recorder)})

    return write


class RankStateCallback(TrainerCallback):
    """A non-main process's own trainer state, saved with every checkpoint."""

    def __init__(self, trainer, recorder):
        self.trainer, self.recorder = trainer, recorder

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        folder.mkdir(parents=True, exist_ok=True)
        _write_json(folder / f"igrpo_rank{process_index()}.json", trainer_snapshot(self.trainer, self.recorder))


def share_with_workers(plan: dict | None) -> dict:
    """The main process's {"dir", "resume_from", "final_store"} on every rank (a collective: every rank calls it
    once). ``final_store``: where ``eval.mode=job`` keeps the final evaluation's samples (keyed by the MLflow run,
    which only the main process knows)."""
    return gather_objects(plan)[0] or {"dir": None, "resume_from": None, "final_store": None}


def train_from(trainer, resume_from: str | None) -> None:
    """``trainer.train()``, continuing from checkpoint ``resume_from`` if given. A checkpoint of the last step
    (the kill came after training) only has its weights loaded: transformers would run one step past
    ``max_steps`` when resuming from it."""
    if resume_from is not None and _step_of(Path(resume_from)) >= trainer.args.max_steps:
        trainer.load_checkpoint_weights(resume_from)
        return
    trainer.train(resume_from_checkpoint=resume_from)


def restore_worker(trainer, recorder, resume_from: str | None) -> None:
    """A non-main process resuming: its own saved state when present, else the main one's (without rows)."""
    if resume_from is None:
        return
    own = Path(resume_from) / f"igrpo_rank{process_index()}.json"
    if own.exists():
        restore_trainer(trainer, recorder, json.loads(own.read_text()))
    else:
        main_state = json.loads((Path(resume_from) / STATE_FILE).read_text())
        restore_trainer(trainer, recorder, main_state["trainer"], rows=False)


# --- the main process's view: which run to continue, from where ----------------------------------------------------


@dataclass
class Resume:
    """Where a reopened MLflow run continues: ``checkpoint`` (None: killed before the first one; train from
    step 0), its ``step``, its saved state, and what the run already holds."""

    run_id: str
    checkpoint: Path | None
    step: int
    state: dict
    history: dict[str, dict[int, float]]  # every metric in the run: name -> {step: value}
    params: dict[str, str] = field(default_factory=dict)
    artifacts: set[str] = field(default_factory=set)

    def base_metrics(self) -> dict[str, float]:
        """The base model's evaluation (step 0), as logged before the kill; empty if it never was."""
        return {k: steps[0] for k, steps in self.history.items() if k.startswith("eval/") and 0 in steps}

    def logged_after(self) -> frozenset[tuple[str, int]]:
        """(name, step) pairs past the checkpoint already in MLflow: the end-of-training records and final
        evaluation when the kill came after them. Not logged again."""
        return frozenset((k, s) for k, steps in self.history.items() for s in steps if s > self.step)

    def restore(self, trainer, recorder) -> str | None:
        """Restore our trainer state; the path to pass to ``trainer.train(resume_from_checkpoint=...)``."""
        if self.checkpoint is None:
            return None
        restore_trainer(trainer, recorder, self.state["trainer"])
        return str(self.checkpoint)

    def describe(self) -> str:
        where = f"checkpoint step {self.step} ({self.checkpoint})" if self.checkpoint else "step 0 (no checkpoint yet)"
        return f"resumed MLflow run {self.run_id} from {where}"


class RunCheckpoints:
    """The checkpoint dir of one configured run, locked for this process while the run lasts."""

    def __init__(self, directory: Path, tracking_uri: str):
        self.dir = directory
        self.tracking_uri = tracking_uri

    def resumable_run(self, experiment_id: str) -> str | None:
        """The id of this config's unfinished run (RUNNING after a kill, FAILED/KILLED after a signal or an
        error) in this tracking store and experiment, or None."""
        info = self._recorded_run()
        if info is None or info.status == FINISHED or info.experiment_id != experiment_id:
            return None
        return info.run_id

    def start_fresh(self) -> None:
        """Forget an earlier run of this config: its checkpoints go; left RUNNING (killed), it is marked KILLED."""
        info = self._recorded_run()
        if info is not None and info.status == RUNNING:
            set_status(self.tracking_uri, info.run_id, KILLED)
        for path in self.dir.iterdir():
            if _step_of(path) is not None:
                shutil.rmtree(path, ignore_errors=True)
        (self.dir / RUN_FILE).unlink(missing_ok=True)

    def record_run(self, run_id: str) -> None:
        _write_json(self.dir / RUN_FILE, {"run_id": run_id, "tracking_uri": self.tracking_uri})

    def resume(self, run_id: str) -> Resume:
        """Pick the newest complete checkpoint, drop the ones after it (incomplete: their metrics were never
        logged), and log the metrics saved with it that the kill kept from reaching MLflow."""
        checkpoints = sorted((s, p) for p in self.dir.iterdir() if (s := _step_of(p)) is not None)
        complete = [(s, p) for s, p in checkpoints if (p / STATE_FILE).exists()]
        step, checkpoint = complete[-1] if complete else (0, None)
        for s, path in checkpoints:
            if s > step or not (path / STATE_FILE).exists():
                shutil.rmtree(path, ignore_errors=True)
        state = json.loads((checkpoint / STATE_FILE).read_text()) if checkpoint else {}
        held = run_contents(self.tracking_uri, run_id)
        history = held.history
        missing: dict[int, dict] = {}
        for step_key, record in state.get("metrics", {}).items():
            s = int(step_key)
            values = {k: v for k, v in record["metrics"].items() if s not in history.get(k, {})}
            if values:
                missing[s] = {"timestamp": record["timestamp"], "metrics": values}
                for k, v in values.items():
                    history.setdefault(k, {})[s] = v
        RunLog(self.tracking_uri, run_id).records(missing)
        return Resume(run_id, checkpoint, step, state, history, held.params, held.artifacts)

    def remove(self) -> None:
        """The run FINISHED: its checkpoints can no longer be resumed from (a new launch is a new run)."""
        shutil.rmtree(self.dir, ignore_errors=True)

    def _recorded_run(self) -> RunState | None:
        """The run recorded in this dir, if this tracking store still holds it (not deleted)."""
        marker = self.dir / RUN_FILE
        if not marker.exists():
            return None
        recorded = json.loads(marker.read_text())
        if recorded.get("tracking_uri") != self.tracking_uri:
            return None
        return run_state(self.tracking_uri, recorded["run_id"])


@contextmanager
def open_checkpoints(directory: Path | None, tracking_uri: str):
    """The run's RunCheckpoints (None when checkpoints are off), locked against a second process running the
    same config at the same time. The lock is an flock, so a killed process leaves none behind."""
    if directory is None:
        yield None
        return
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / LOCK_FILE, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"another process is running this config now (checkpoint dir {directory} is "
                              "locked); wait for it or change the config") from None
        try:
            yield RunCheckpoints(directory, tracking_uri)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
