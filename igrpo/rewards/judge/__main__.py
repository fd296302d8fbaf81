"""Probe the configured judge without training.

    python -m igrpo.rewards.judge score [overrides ...] < cases.jsonl > scores.jsonl

Reads JSON lines ``{"problem": str, "reference": str, "candidate": str}`` on stdin and writes one JSON line per
input line, in order: ``{"score": float, "source": str, "exact_match": bool}``, where ``score`` is the reward
the judge gives in training (in [0, 1]; ``reward.judge.fallback_score`` when the judge's answer could not be
read), ``source`` says how it was read (``logprobs`` | ``text`` | ``unparsed`` | ``request_failed``), and
``exact_match`` is the binary reward's exact rule (extracted final answer == reference). Overrides are the
training command's (``reward=judge`` is implied): ``reward/judge=http reward.judge.url=http://127.0.0.1:8011/v1``.
Every input line is checked before anything is scored: a bad line or a bad override is one ``error: ...`` line
on stderr and exit status 2, with nothing on stdout. Fields added later will be new keys; these stay.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from igrpo.errors import ConfigError

FIELDS = ("problem", "reference", "candidate")
CHUNK = 256  # lines scored per backend call
USAGE = "usage: python -m igrpo.rewards.judge score [overrides ...] < cases.jsonl   (JSON lines: problem, reference, candidate)"


def read_cases(lines) -> list[dict]:
    """The input cases, every line checked first (ConfigError naming the line)."""
    from igrpo.core.answers import is_gradeable

    cases = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            case = json.loads(line)
        except ValueError as err:
            raise ConfigError(f"stdin line {number}: not JSON ({err})") from None
        if not isinstance(case, dict):
            raise ConfigError(f"stdin line {number}: expected an object with {', '.join(FIELDS)}")
        for key in FIELDS:
            if not isinstance(case.get(key), str):
                raise ConfigError(f"stdin line {number}: {key!r} must be a string, got {case.get(key)!r:.60}")
        if not is_gradeable(case["reference"]):
            raise ConfigError(f"stdin line {number}: reference {case['reference']!r:.60} is empty")
        cases.append(case)
    return cases


def compose(overrides: list[str]):
    from igrpo.config.compose import compose_for_command

    cfg = compose_for_command(overrides, fixed=("reward=judge",))
    if cfg.reward.name != "judge":
        raise ConfigError(f"reward={cfg.reward.name}: the score command probes a judge; use reward=judge")
    return cfg


def score_cases(judge_cfg, backend, cases: list[dict]) -> list[dict]:
    """The training reward's judge score for each case (the prompt built as ``igrpo.rewards.JudgeReward`` does)."""
    from igrpo.rewards.judge.hacks import exact_reward
    from igrpo.rewards.judge.protocol import build_judge_prompt, resolve_template

    word = judge_cfg.verdict == "word"
    template = resolve_template(judge_cfg.template, judge_cfg.use_reference and word)
    out = []
    for start in range(0, len(cases), CHUNK):
        chunk = cases[start : start + CHUNK]
        refs = [c["reference"] for c in chunk]
        prompts = [build_judge_prompt(template, c["problem"], r, c["candidate"], judge_cfg.max_candidate_chars)
                   for c, r in zip(chunk, refs)]
        keys = [(c["problem"], r, c["candidate"]) for c, r in zip(chunk, refs)]
        for case, verdict in zip(chunk, backend.score(prompts, refs, keys)):
            score = judge_cfg.fallback_score if verdict.score is None else min(1.0, max(0.0, float(verdict.score)))
            out.append({"score": score, "source": verdict.source,
                        "exact_match": exact_reward(case["candidate"], case["reference"])})
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] != "score":
        print(USAGE, file=sys.stderr)
        return 2
    from igrpo.job.cli import quiet_third_party_logs

    quiet_third_party_logs()
    try:
        cfg = compose(argv[1:])
        from igrpo.config.checks import check_hub_reachable
        from igrpo.config.model import model_hub_needs
        from igrpo.config.reward import check_judge_here, judge_model_ref

        check_judge_here(cfg)  # a usable judge model, before reading stdin or loading anything
        check_hub_reachable(model_hub_needs("reward.judge.model", judge_model_ref(cfg)))
        cases = read_cases(sys.stdin)
        from igrpo.rewards.judge import build_judge
        from igrpo.models.loading import default_cache_root

        cache_root = Path(cfg.model.cache_dir) if cfg.model.cache_dir else default_cache_root()
        handle = build_judge(cfg.reward.judge, cfg.task, cfg.device, cache_root)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    info = handle.build_info
    if info is not None and info.built_now:
        from igrpo.rewards.judge.tiny import build_summary

        print(build_summary(info), file=sys.stderr)
    try:
        for row in score_cases(cfg.reward.judge, handle.backend, cases):
            sys.stdout.write(json.dumps(row) + "\n")
    finally:
        handle.backend.close()
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
