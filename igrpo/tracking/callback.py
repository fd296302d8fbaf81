"""``MlflowMetricsCallback``: every TRL log record to the MLflow run under our metric names."""

from __future__ import annotations

import time
from pathlib import Path

from transformers import TrainerCallback

from igrpo.tracking.names import metric_name
from igrpo.tracking.runs import RunLog


class MlflowMetricsCallback(TrainerCallback):
    """Sends every TRL log record to the MLflow run under our metric names, at the global step.

    With ``on_checkpoint`` set (``train.save_every > 0``) records are held back and committed with each
    checkpoint: ``on_checkpoint(checkpoint_folder, pending)`` saves them into the checkpoint (transformers calls
    ``on_save`` once the folder is written), then they go to MLflow; what is left when training ends goes then.
    So a killed run never has a step in MLflow that its newest complete checkpoint does not cover.
    ``skip``: (name, step) pairs the run already holds (a resumed run); they are not logged again."""

    def __init__(self, run: RunLog, extra_metrics=None, on_checkpoint=None, skip: frozenset = frozenset()):
        self.run = run
        self.extra_metrics = extra_metrics  # callable(step) -> dict of metrics to add to each record
        self.on_checkpoint = on_checkpoint
        self.skip = skip
        self.pending: dict[int, dict] = {}  # step -> {"timestamp": ms, "metrics": {name: value}}

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        step = state.global_step
        if "train_runtime" in logs:  # the end-of-training summary repeats the last step's epoch: once is enough
            logs = {k: v for k, v in logs.items() if k != "epoch"}
        values = {metric_name(k): float(v) for k, v in logs.items() if isinstance(v, (int, float)) and v == v}
        if self.extra_metrics is not None:
            values.update(self.extra_metrics(step))
        record = self.pending.setdefault(step, {"timestamp": int(time.time() * 1000), "metrics": {}})
        record["metrics"].update({k: v for k, v in values.items() if (k, step) not in self.skip})
        if self.on_checkpoint is None:
            self._commit()

    def on_save(self, args, state, control, **kwargs):
        if self.on_checkpoint is not None and state.is_world_process_zero:
            self.on_checkpoint(Path(args.output_dir) / f"checkpoint-{state.global_step}", self.pending)
            self._commit()

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self._commit()

    def _commit(self) -> None:
        self.run.records(self.pending)
        self.pending = {}
