"""Base success under training sampling, per task level: the measurement that chooses a task's default level.

``python -m igrpo.tasks probe [--problems N] <overrides>`` samples, for the first N problems of every level of the
task, as many completions as the variant's trained group (G) at the training temperature, top-p and completion cap,
grades them as the evaluation does, and prints per level the success rate, the share of groups with mixed outcomes
(some right, some wrong: the groups that give GRPO a gradient), the same share where a format reward is added
(``reward.format_weight`` > 0: a sample's reward then also says whether it has a readable final answer, so a group
varies when either differs) and the share of completions with a readable final answer. Nothing is trained or logged.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LevelProbe:
    level: str
    problems: int
    group: int
    success: float  # share of all samples graded right
    mixed: float  # share of problems whose G samples are neither all right nor all wrong
    mixed_with_format: float  # share whose (right, answered) pairs are not all the same: rewards vary with a format term
    answered: float  # share of samples with a final answer the grader could read


def summarise(level: str, records: list[dict], group: int) -> LevelProbe:
    """A level's probe from its graded records (``igrpo.eval.suites.grade_chunk``: one per problem)."""
    correct = [r["correct"] for r in records]
    samples = sum(len(c) for c in correct)
    pairs = [set(zip(r["correct"], (a is not None for a in r["answers"]))) for r in records]
    return LevelProbe(level=level, problems=len(records), group=group,
                      success=sum(map(sum, correct)) / samples,
                      mixed=sum(0 < sum(c) < len(c) for c in correct) / len(records),
                      mixed_with_format=sum(len(p) > 1 for p in pairs) / len(records),
                      answered=sum(a is not None for r in records for a in r["answers"]) / samples)


def probe_config(cfg, levels: list[str], problems: int):
    """The run config with its evaluation turned into the probe: the task's own suites = ``levels`` (``problems``
    each), sampled like training (temperature, top-p, completion cap, G samples per problem), no greedy pass."""
    from omegaconf import OmegaConf, open_dict

    from igrpo.variants import variant_of

    probe = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    with open_dict(probe):
        probe.task.eval_suites = list(levels)
        probe.task.eval_size = int(problems)
        probe.eval.suites = {}
        probe.eval.samples_per_problem = int(variant_of(cfg).group_size(cfg))
        probe.eval.temperature = float(cfg.generation.temperature)
        probe.eval.top_p = float(cfg.generation.top_p)
        probe.eval.max_new_tokens = int(cfg.generation.max_completion_length)
        probe.eval.greedy = False
    return probe


def probe_levels(cfg, levels: list[str], problems: int) -> list[LevelProbe]:
    """Load the run's base policy and probe every level (see the module docstring)."""
    from igrpo.eval.suites import run_chunks
    from igrpo.job.builds import resolve_model_dir, resolve_policy_path
    from igrpo.job.eval_job import make_backend
    from igrpo.tasks import load_task

    probe = probe_config(cfg, levels, problems)
    task = load_task(probe.task, probe.seed, model_cfg=probe.model, model_dir=resolve_model_dir(probe, True))
    model_dir, _ = resolve_policy_path(probe, quiet=True)
    outcome = run_chunks(make_backend(probe, model_dir), task, probe.eval, int(probe.seed))
    group = int(probe.eval.samples_per_problem)
    return [summarise(level, outcome.records[level], group) for level in levels]


def probe_lines(results: list[LevelProbe]) -> list[str]:
    lines = ["level      problems  G  success  mixed groups  mixed with a format reward  answered"]
    lines += [f"{r.level:<10} {r.problems:>8} {r.group:>2}  {r.success:7.3f}  {r.mixed:12.3f}  "
              f"{r.mixed_with_format:26.3f}  {r.answered:8.3f}" for r in results]
    return lines
