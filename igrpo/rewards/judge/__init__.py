"""Generative judges: a score in [0, 1] for (problem, reference answer, candidate solution).

``build_judge(reward_cfg.judge, task_cfg, device)`` returns a backend with ``score(prompts, keys) ->
list[Verdict]`` (``igrpo.rewards.judge.protocol``): the embedded tiny judge (built once and cached), any local or
hub HF causal LM, or an OpenAI-compatible HTTP endpoint. ``igrpo.rewards.JudgeReward`` turns verdicts
into rewards.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from igrpo.errors import ConfigError, choice_error
from igrpo.rewards.judge.protocol import VERDICT_MODES

BACKENDS = ("tiny", "hf", "http")


@dataclass
class JudgeHandle:
    backend: object
    build_info: object | None = None  # igrpo.rewards.judge.tiny.JudgeBuildInfo when the embedded judge was resolved


def build_judge(judge_cfg, task_cfg, device: str, cache_root: Path, progress=None) -> JudgeHandle:
    if judge_cfg.backend not in BACKENDS:
        raise choice_error("reward.judge.backend", judge_cfg.backend, BACKENDS)
    if judge_cfg.verdict not in VERDICT_MODES:
        raise choice_error("reward.judge.verdict", judge_cfg.verdict, VERDICT_MODES)
    if judge_cfg.backend == "tiny" and judge_cfg.model is None and judge_cfg.verdict != "answer":
        raise ConfigError("the embedded tiny judge judges in reward.judge.verdict=answer mode (it restates the "
                          "answer it reads); use verdict=answer, or backend=hf/http for a verdict-word judge")
    if judge_cfg.backend == "http":
        from igrpo.rewards.judge.http import HTTPJudge

        if not judge_cfg.url:
            raise ConfigError("reward.judge.url is required for reward.judge.backend=http "
                              "(e.g. reward.judge.url=http://127.0.0.1:8000/v1)")
        return JudgeHandle(HTTPJudge(judge_cfg.url, judge_cfg.api_model, judge_cfg.correct, judge_cfg.incorrect,
                                     mode=judge_cfg.verdict, concurrency=judge_cfg.concurrency, timeout_s=judge_cfg.timeout_s,
                                     max_retries=judge_cfg.max_retries, backoff_s=judge_cfg.backoff_s,
                                     cache_size=judge_cfg.cache_size))
    from igrpo.rewards.judge.hf import HFJudge
    from igrpo.models.loading import load_policy

    info = None
    path = judge_cfg.model
    if judge_cfg.backend == "tiny" and path is None:
        from igrpo.rewards.judge.tiny import build_tiny_judge

        info = build_tiny_judge(judge_cfg, task_cfg, cache_root, progress=progress)
        path = info.path
    elif path is None:
        raise ConfigError("reward.judge.model is required for reward.judge.backend=hf (a hub id or a directory)")
    from igrpo.models.packaged import local_model

    model, tokenizer = load_policy(local_model(os.path.expanduser(path), cache_root, "reward.judge.model"), "float32",
                                   device)
    return JudgeHandle(HFJudge(model, tokenizer, judge_cfg.correct, judge_cfg.incorrect, judge_cfg.batch_size,
                               mode=judge_cfg.verdict,
                               max_candidate_tokens=judge_cfg.get("max_candidate_tokens") or 0), info)
