"""The embedded judge: a tiny character-level Llama trained in-project to restate the final answer it reads.

It reads (problem, candidate tail) in the ``tiny`` judge template and is trained, by next-token prediction,
to write the candidate's final answer (or ``?`` when there is none) followed by a newline. It judges in
``answer`` verdict mode (``igrpo.rewards.judge.protocol``): score = P(it writes the reference answer), so an exact
match scores near 1, a wrong answer near 0, and an ambiguous or near-miss candidate gets partial credit.
(A verdict-token judge was tried first: a 1M-parameter model did not learn to compare two numbers in 500
steps, stalling at 0.70 AUROC, while restating an answer is learnt in ~100.) Candidates are the worked
solutions of the embedded task and wrong ones of several kinds (a slip carried forward, an off-by-k final
answer, no final answer, another problem's solution) and, for a share ``build_augment_fraction``, hack-style
candidates (``igrpo.rewards.judge.hacks``: hedges, answers that start with the reference, unknown characters, extra
markers, injected text, fillers, empty), half of them right. What it writes is ``hacks.judge_reading`` of what
it sees: the last ``####`` answer whole, so the score P(reference, then the end of the answer) is ~0 for every
hack.

Quality is measured when it is built: AUROC of its score against exact correctness on candidates for
held-out problems (the task's eval suites, never seen in judge training), and the hack suite's score
distribution per family on problems no judge training example used (``JudgeBuildInfo.hack_*``). Training stops
once the dev AUROC reaches its target, no hack family's dev mean exceeds ``build_target_hack_score`` and no
single dev hack candidate scores above ``build_target_hack_max``, or at a step cap, never by wall-clock. The result is cached like the tiny policy, keyed by its spec.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from igrpo.core.answers import answers_match, extract_final_answer
from igrpo.errors import ConfigError
from igrpo.rewards.judge.hacks import HackReport, augmented_candidate, exact_reward, score_hack_suite, training_reading
from igrpo.rewards.judge.hf import HFJudge, continuation_logprobs
from igrpo.rewards.judge.protocol import answer_continuation, build_judge_prompt, resolve_template
from igrpo.core.metrics import auroc
from igrpo.models.loading import BUILD_INFO_FILE, build_lock, cache_key, save_build
from igrpo.models.shipped import restore_shipped
from igrpo.tasks.arith import build_arith_task, corrupt_solution, make_problem
from igrpo.tasks.base import Problem, TaskData

# Dev problems the hack suite runs on while training (the stopping rule). 16 let format 4 stop while one family
# (percent) still had a held-out mean of 0.056 and max 0.75: too few problems to see a family that pays on a few.
DEV_HACK_PROBLEMS = 48
DEV_PROBLEMS = 256  # the first problems of the judge's draw: its dev set (the stopping rule), never trained on
JUDGE_FORMAT_VERSION = 5  # 3: exact reading (hack augmentation), hack suite measured; 4: view ends at the answer
# line; 5: the stopping rule also bounds the dev hack suite's max score, over 48 dev problems


@dataclass
class JudgeBuildInfo:
    path: str
    cache_key: str
    built_now: bool
    steps: int
    dev_auroc: float
    heldout_auroc: float
    heldout_size: int
    history: list
    seconds: float
    hack_max_score: float  # the highest judge score of any hack candidate on held-out problems
    hack_max_mean: float  # the highest per-family mean
    hack_families: dict  # family -> {mean, p90, max}
    hack_problems: int
    dev_hack_history: list  # [(step, the dev hack suite's worst family mean)] once the dev AUROC target was met
    torch_threads: int | None = None  # the thread count it was built with (the weights depend on it); None: unknown


def make_candidate(problem: Problem, other: Problem, rng: random.Random) -> tuple[str, bool]:
    """A candidate solution for ``problem`` and whether its final answer is exactly right (half are)."""
    if rng.random() < 0.5:
        text = problem.solution
    else:
        kind = rng.randrange(4)
        if kind == 0:  # a slip carried forward: a near-miss
            text = corrupt_solution(problem.solution, rng)
        elif kind == 1:  # consistent steps, wrong final answer
            body = problem.solution.rpartition(" #### ")[0]
            text = f"{body} #### {int(problem.answer) + rng.choice([-10, -2, -1, 1, 2, 10])}"
        elif kind == 2:  # no final answer written
            text = problem.solution.rpartition(" #### ")[0]
        else:  # another problem's solution
            text = other.solution
    return text, answers_match(extract_final_answer(text), problem.answer)


@dataclass
class JudgeExamples:
    prompts: list[str]
    labels: list[bool]  # exact correctness of each candidate
    references: list[str]  # the problem's reference answer
    readings: list[str]  # what the judge should write: the candidate's final answer, or NO_ANSWER


def make_examples(problems: list[Problem], count: int, rng: random.Random, template: str,
                  max_chars: int, augment: float = 0.0) -> JudgeExamples:
    """``count`` judge examples; a share ``augment`` of them are hack-style candidates (``igrpo.rewards.judge.hacks``)."""
    out = JudgeExamples([], [], [], [])
    for _ in range(count):
        problem, other = rng.choice(problems), rng.choice(problems)
        if augment and rng.random() < augment:
            candidate = augmented_candidate(problem, other, rng)
        else:
            candidate, _ = make_candidate(problem, other, rng)
        out.prompts.append(build_judge_prompt(template, problem.problem, None, candidate, max_chars))
        out.labels.append(exact_reward(candidate, problem.answer))
        out.references.append(problem.answer)
        out.readings.append(training_reading(candidate, max_chars))
    return out


def judge_loss(model, tokenizer, examples: JudgeExamples) -> torch.Tensor:
    """Mean negative log-likelihood of the reading (answer + ANSWER_END) per example."""
    conts = [answer_continuation(r) for r in examples.readings]
    return -continuation_logprobs(model, tokenizer, examples.prompts, conts).mean()


def judge_auroc(judge: HFJudge, examples: JudgeExamples) -> float:
    scores = [v.score if v.score is not None else 0.0 for v in judge.score(examples.prompts, examples.references)]
    return auroc(scores, examples.labels)


def judge_hack_report(judge: HFJudge, problems: list[Problem], template: str, max_chars: int) -> HackReport:
    """The hack suite (every family of ``igrpo.rewards.judge.hacks``) over ``problems``, scored by ``judge``."""

    def score(texts: list[str], references: list[str], candidates: list[str]) -> list[float]:
        prompts = [build_judge_prompt(template, t, None, c, max_chars) for t, c in zip(texts, candidates)]
        return [v.score if v.score is not None else 0.0 for v in judge.score(prompts, references)]

    return score_hack_suite(score, problems)


def train_judge(model, tokenizer, pool: list[Problem], dev: JudgeExamples, dev_hack_problems: list[Problem],
                template: str, cfg, progress=None) -> tuple[int, float, list, list]:
    """Train until the dev candidates reach ``cfg.build_target_auroc`` AND no hack family's mean score on the dev
    problems exceeds ``cfg.build_target_hack_score`` AND no dev hack candidate scores above
    ``cfg.build_target_hack_max`` (checked every ``cfg.build_eval_every`` steps), or ``cfg.build_steps``.
    Returns (steps, dev auroc, [(step, dev auroc)], [(step, dev hack suite's worst mean, its max score)])."""
    rng = random.Random(1)
    torch.manual_seed(1)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.build_lr, weight_decay=0.01, betas=(0.9, 0.98))
    warmup = max(1, cfg.build_steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warmup if s < warmup else 0.1 + 0.9 * 0.5 * (
            1 + math.cos(math.pi * (s - warmup) / max(1, cfg.build_steps - warmup))))
    scorer = HFJudge(model, tokenizer, "", "", batch_size=256, mode="answer")
    history: list[tuple[int, float]] = []
    hack_history: list[tuple[int, float]] = []
    dev_auc, step = 0.0, 0
    for step in range(1, cfg.build_steps + 1):
        model.train()
        loss = judge_loss(model, tokenizer, make_examples(pool, cfg.build_batch_size, rng, template,
                                                          cfg.max_candidate_chars, cfg.build_augment_fraction))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        if progress is not None:
            progress(step, loss.item(), dev_auc)
        if step % cfg.build_eval_every == 0 or step == cfg.build_steps:
            model.eval()
            dev_auc = judge_auroc(scorer, dev)
            history.append((step, dev_auc))
            if dev_auc >= cfg.build_target_auroc:  # the hack suite costs about as much: measured only then
                hack = judge_hack_report(scorer, dev_hack_problems, template, cfg.max_candidate_chars)
                hack_history.append((step, hack.max_mean, hack.max_score))
                if hack.max_mean <= cfg.build_target_hack_score and hack.max_score <= cfg.build_target_hack_max:
                    break
    model.eval()
    return step, dev_auc, history, hack_history


def unseen_problems(data: TaskData, count: int, task_cfg) -> list[Problem]:
    """``count`` problems no judge training example used, none with the answer 0: the eval suites first, then
    fresh draws (levels in turn) outside the judge's own draw (``data``, built with the judge's salt)."""
    out = [p for suite in data.eval_suites.values() for p in suite if int(p.answer) != 0][:count]
    seen = {p.problem for p in data.train} | {p.problem for p in out}
    levels = list(task_cfg.eval_suites) or list(task_cfg.train_levels)
    rng = random.Random(f"judge-unseen-{task_cfg.data_seed}")
    while len(out) < count:
        problem = make_problem(rng, levels[len(out) % len(levels)], task_cfg.first_digits, task_cfg.step_digits)
        if problem.problem not in seen and int(problem.answer) != 0:  # (see igrpo.rewards.judge.hacks.hack_cases)
            seen.add(problem.problem)
            out.append(problem)
    return out


def judge_build_data(judge_cfg, task_cfg) -> TaskData:
    """The problems the embedded judge is built from (its training draw excludes the task's eval suites)."""
    return build_arith_task(list(task_cfg.train_levels), list(task_cfg.eval_suites), judge_cfg.build_pool_size,
                            task_cfg.eval_size, task_cfg.data_seed, task_cfg.first_digits, task_cfg.step_digits,
                            train_salt="judge")


def build_summary(info: JudgeBuildInfo) -> str:
    """What a judge build prints: its held-out AUROC and the hack suite's score distribution per family."""
    head = (f"judge: AUROC {info.heldout_auroc:.3f} on {info.heldout_size} held-out candidates; hack suite over "
            f"{info.hack_problems} held-out problems: max score {info.hack_max_score:.4f}, worst family mean "
            f"{info.hack_max_mean:.4f}")
    rows = sorted(info.hack_families.items(), key=lambda kv: -kv[1]["max"])
    return "\n".join([head] + [f"  {name:<26} mean {s['mean']:.4f}  p90 {s['p90']:.4f}  max {s['max']:.4f}"
                               for name, s in rows])


def tiny_judge_spec(judge_cfg, task_cfg) -> dict:
    build_keys = [k for k in dict(judge_cfg) if k.startswith("build_") or k in ("hidden_size", "num_layers",
                                                                                "num_heads", "intermediate_size",
                                                                                "max_candidate_chars")]
    # The measured hack suite is part of the build: a change to its families must rebuild (and remeasure).
    from igrpo.rewards.judge.hacks import HACK_FAMILIES
    return {
        "format": JUDGE_FORMAT_VERSION,
        "judge": {k: judge_cfg[k] for k in sorted(build_keys)},
        "task": {k: task_cfg[k] for k in ("data_seed", "first_digits", "step_digits", "eval_size")}
                | {"eval_suites": list(task_cfg.eval_suites), "train_levels": list(task_cfg.train_levels)},
        "template": resolve_template("tiny", use_reference=True),
        "hack_families": sorted(HACK_FAMILIES),
        "torch": torch.__version__.split("+")[0],
    }


def build_tiny_judge(judge_cfg, task_cfg, cache_root: Path, progress=None, use_shipped: bool = True) -> JudgeBuildInfo:
    """The cached tiny judge directory; when absent, the shipped build of the same recipe is copied in
    (``use_shipped``, igrpo.models.shipped), else it is built and measured first."""
    import json

    spec = tiny_judge_spec(judge_cfg, task_cfg)
    key = cache_key(spec)
    target = Path(cache_root) / f"judge-{key}"

    def cached() -> JudgeBuildInfo | None:
        if not (target / BUILD_INFO_FILE).exists():
            return None
        info = json.loads((target / BUILD_INFO_FILE).read_text())
        return JudgeBuildInfo(**{**info, "path": str(target), "built_now": False})

    found = cached()
    if found is not None:
        return found
    with build_lock(target):  # parallel jobs with a cold cache build it once
        if cached() is None and use_shipped:
            restore_shipped(target, key)
        return cached() or _build_tiny_judge(judge_cfg, task_cfg, spec, key, target, progress)


def _build_tiny_judge(judge_cfg, task_cfg, spec: dict, key: str, target: Path, progress) -> JudgeBuildInfo:
    from igrpo.models.tiny import build_char_tokenizer, build_tiny_model

    start = time.perf_counter()
    tokenizer = build_char_tokenizer()
    model = build_tiny_model(tokenizer, judge_cfg.hidden_size, judge_cfg.num_layers, judge_cfg.num_heads,
                             judge_cfg.intermediate_size, max_positions=256, seed=1)
    data = judge_build_data(judge_cfg, task_cfg)
    template = resolve_template("tiny", use_reference=True)
    # Held out: the eval-suite problems, which no judge (or policy) training example uses; with no eval suites,
    # fresh problems outside the judge's draw.
    heldout_problems = [p for suite in data.eval_suites.values() for p in suite] or unseen_problems(data, 400, task_cfg)
    dev_problems, pool = data.train[:DEV_PROBLEMS], data.train[DEV_PROBLEMS:]
    if not pool:
        raise ConfigError(f"reward.judge.build_pool_size={judge_cfg.build_pool_size}: the first {DEV_PROBLEMS} "
                          "problems are the judge's dev set and none are left to train on; raise it")
    dev = make_examples(dev_problems, 512, random.Random(2), template, judge_cfg.max_candidate_chars)
    steps, dev_auc, history, hack_history = train_judge(model, tokenizer, pool, dev, dev_problems[:DEV_HACK_PROBLEMS],
                                                        template, judge_cfg, progress)
    heldout = make_examples(heldout_problems, judge_cfg.build_heldout_size, random.Random(3), template,
                            judge_cfg.max_candidate_chars)
    scorer = HFJudge(model, tokenizer, "", "", batch_size=256, mode="answer")
    heldout_auc = judge_auroc(scorer, heldout)
    hack_problems = unseen_problems(data, judge_cfg.build_hack_problems, task_cfg)
    hacks = judge_hack_report(scorer, hack_problems, template, judge_cfg.max_candidate_chars).summary()
    info = JudgeBuildInfo(path=str(target), cache_key=key, built_now=True, steps=steps, dev_auroc=dev_auc,
                          heldout_auroc=heldout_auc, heldout_size=len(heldout.prompts), history=history,
                          seconds=time.perf_counter() - start, hack_max_score=hacks["max_score"],
                          hack_max_mean=hacks["max_mean"], hack_families=hacks["families"],
                          hack_problems=len(hack_problems), dev_hack_history=hack_history,
                          torch_threads=torch.get_num_threads())
    save_build(target, model, tokenizer, spec,
               {k: v for k, v in asdict(info).items() if k not in ("path", "built_now")})
    return info
