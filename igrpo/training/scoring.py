"""Glue shared by the trainers: scoring completions with the training reward outside TRL's logging path,
and the per-row view of a step's globally gathered rewards."""

from __future__ import annotations

from collections.abc import Sequence

from igrpo.core.metrics import combine_scores


def completion_text(completion) -> str:
    return completion if isinstance(completion, str) else completion[-1]["content"]


def local_rows(gathered, process_index: int, count: int):
    """This process's rows of TRL's gathered reward tensor (gathered in process order)."""
    return gathered[process_index * count:(process_index + 1) * count]


def reward_columns(trainer, rows: Sequence[dict], prompts: Sequence[str], texts: Sequence[str],
                   completion_ids: Sequence[Sequence[int]] | None = None) -> list[list]:
    """Each reward function's scores of ``texts`` answering ``rows``, calling the callables directly (TRL's
    ``_calculate_rewards`` would log them as trained completions). Dataset columns go to them as keyword arguments,
    and the sampled ``completion_ids`` when given (as TRL passes them: the overlong penalty counts them)."""
    columns = {key: [row[key] for row in rows] for key in rows[0] if key != "prompt"}
    if completion_ids is not None:
        columns["completion_ids"] = [list(ids) for ids in completion_ids]
    return [func(prompts=list(prompts), completions=list(texts), trainer_state=trainer.state, **columns)
            for func in trainer.reward_funcs]


def score(trainer, rows: Sequence[dict], prompts: Sequence[str], texts: Sequence[str]
          ) -> tuple[list[float | None], list[bool | None]]:
    """(combined training reward, correct) of ``texts`` answering ``rows``, calling the reward callables directly
    (TRL's ``_calculate_rewards`` would log them as trained completions). ``correct``: the accuracy reward is 1
    (None when ungradeable); without an accuracy reward, a positive combined reward."""
    if not rows:
        return [], []
    return combined_and_correct(trainer, reward_columns(trainer, rows, prompts, texts))


def global_rewards(trainer, rewards_per_func) -> tuple[list[float | None], list[bool | None]]:
    """(combined reward, correct) per row of TRL's gathered ``rewards_per_func`` (rows of every process in process
    order); NaN entries are functions that declined to score a row."""
    per_func = [[None if v != v else float(v) for v in col] for col in rewards_per_func.T.tolist()]
    return combined_and_correct(trainer, per_func)


def mean(values: Sequence[float | None]) -> float | None:
    scored = [v for v in values if v is not None]
    return sum(scored) / len(scored) if scored else None


def combined_and_correct(trainer, per_func: list[list[float | None]]) -> tuple[list[float | None], list[bool | None]]:
    """(combined training reward, correct) from each reward function's scores: correct means the accuracy reward is
    1 (None when ungradeable); without an accuracy reward, a positive combined reward."""
    combined = combine_scores(per_func, trainer.reward_weights.tolist())
    names = list(trainer.reward_func_names)
    if "accuracy" in names:
        correct = [None if v is None else v >= 1.0 for v in per_func[names.index("accuracy")]]
    else:
        correct = [None if v is None else v > 0 for v in combined]
    return combined, correct


def rewards_unrecorded(trainer, calculate, *args):
    """TRL's ``_calculate_rewards`` (``calculate``) with the rollout recorder off: the baseline trainers record each
    stage's rows themselves."""
    recorder, trainer.rollout_recorder = trainer.rollout_recorder, None
    try:
        return calculate(*args)
    finally:
        trainer.rollout_recorder = recorder
