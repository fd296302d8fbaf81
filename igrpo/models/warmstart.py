"""Supervised warm start of the tiny policy, so RL starts from a partially correct base.

Examples are (prompt -> target) with the loss on the target only. Half the batches (``format_fraction`` of them
are not) are plain: the problem -> its worked solution + EOS. The others are split equally among the auxiliary
prompt formats the variants use (``FORMATS``), so that every method's own prompt is in-distribution for the tiny
model, as it is for an instruction-tuned LLM, and every variant starts from the **same** base:

* ``refine`` (iGRPO's Stage 2): a draft in the refinement template -> the correct solution;
* ``critique`` (Critique-GRPO): a previous answer and its rule-based critique (``indicative_gt``, the variant's
  default, which names the ground truth) in Critique-GRPO's tiny template -> the correct solution;
* ``verify`` (Self-Verification): a solution in the tiny verify layout -> the verdict line with the true label.

Each auxiliary format is taught its method's own target with the correct answer, the same way: the shown draft or
answer is corrupted (a wrong partial result carried forward) with probability ``corrupt_fraction`` and cut to its
last ``max_draft_chars`` characters, as the variants cut them; the graded solution of a verify example is wrong
half the time and shown whole (the verify prompt keeps 640 tokens, more than a tiny solution has).

Stopping is by step count or by reaching a greedy dev accuracy on plain prompts, never by wall-clock, so a build
is reproducible on any machine.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import torch

from igrpo.core.answers import answers_match, extract_final_answer
from igrpo.core.critique import REFINE_TEMPLATES as CRITIQUE_TEMPLATES
from igrpo.core.critique import critique_text, fill
from igrpo.core.self_verify import tiny_verify_prompt, verdict_line
from igrpo.core.drafts import build_refinement_prompt, truncate_draft
from igrpo.training.generation import generate_texts
from igrpo.tasks.arith import corrupt_solution
from igrpo.errors import ConfigError
from igrpo.tasks.base import Problem

FORMATS = ("refine", "critique", "verify")
CRITIQUE_TEMPLATE = CRITIQUE_TEMPLATES["tiny"]


@dataclass
class WarmStartResult:
    steps: int
    dev_accuracy: float
    history: list[tuple[int, float]]  # (step, dev accuracy) at each check
    final_loss: float


def check_formats(formats) -> list[str]:
    """The configured auxiliary formats, each one of ``FORMATS`` and none twice (one-line error otherwise)."""
    formats = list(formats)
    for name in formats:
        if name not in FORMATS:
            raise ConfigError(f"model.warmstart_formats: {name!r} is not valid; choose from: {', '.join(FORMATS)}")
    if len(set(formats)) != len(formats):
        raise ConfigError(f"model.warmstart_formats={formats} names a format twice")
    return formats


def _shown(solution: str, rng: random.Random, corrupt_fraction: float, max_chars: int | None,
           truncation: str) -> str:
    """A solution as a variant shows it: corrupted with probability ``corrupt_fraction``, then cut."""
    text = corrupt_solution(solution, rng) if rng.random() < corrupt_fraction else solution
    if max_chars is not None:
        text = "".join(truncate_draft(list(text), max_chars, truncation)[0])
    return text


def make_example(problem: Problem, prompt_template: str, refine_template: str, rng: random.Random,
                 fmt: str, corrupt_fraction: float, max_draft_chars: int | None = None,
                 draft_truncation: str = "tail") -> tuple[str, str]:
    """(prompt, target) for one warm-start example in format ``fmt`` (``plain`` or one of ``FORMATS``). Drafts are
    cut exactly as the variants cut them (one character = one token for the tiny model)."""
    if fmt == "plain":
        return prompt_template.format(problem=problem.problem), problem.solution
    if fmt == "refine":
        draft = _shown(problem.solution, rng, corrupt_fraction, max_draft_chars, draft_truncation)
        return build_refinement_prompt(refine_template, problem.problem, draft), problem.solution
    if fmt == "critique":
        full = corrupt_solution(problem.solution, rng) if rng.random() < corrupt_fraction else problem.solution
        correct = answers_match(extract_final_answer(full), problem.answer)
        shown = "".join(truncate_draft(list(full), max_draft_chars, "tail")[0]) if max_draft_chars else full
        critique = critique_text("indicative_gt", correct, problem.answer)
        return fill(CRITIQUE_TEMPLATE, problem.problem, shown, critique), problem.solution
    if fmt == "verify":
        graded = corrupt_solution(problem.solution, rng) if rng.random() < 0.5 else problem.solution
        correct = answers_match(extract_final_answer(graded), problem.answer)
        return tiny_verify_prompt(problem.problem, graded), verdict_line(correct)
    raise ConfigError(f"warm-start format {fmt!r} is not valid; choose from: plain, {', '.join(FORMATS)}")


def batch_format(rng: random.Random, format_fraction: float, formats: list[str]) -> str:
    """The format of the next batch: an auxiliary one (equally likely) with probability ``format_fraction``."""
    if formats and rng.random() < format_fraction:
        # one format draws nothing more: a refine-only build is the same stream as before formats existed
        return formats[0] if len(formats) == 1 else formats[rng.randrange(len(formats))]
    return "plain"


def _collate(tokenizer, pairs: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
    rows, labels = [], []
    for prompt, target in pairs:
        p_ids = tokenizer(prompt)["input_ids"]
        t_ids = tokenizer(target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        rows.append(p_ids + t_ids)
        labels.append([-100] * len(p_ids) + t_ids)
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    label_ids = torch.tensor([lab + [-100] * (width - len(lab)) for lab in labels])
    attention = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    return {"input_ids": input_ids, "attention_mask": attention, "labels": label_ids}


def greedy_accuracy(model, tokenizer, problems: list[Problem], prompt_template: str, max_new_tokens: int) -> float:
    prompts = [prompt_template.format(problem=p.problem) for p in problems]
    outs = generate_texts(model, tokenizer, prompts, max_new_tokens=max_new_tokens, do_sample=False)
    return sum(answers_match(extract_final_answer(o), p.answer) for o, p in zip(outs, problems)) / len(problems)


def warm_start(model, tokenizer, pool: list[Problem], dev: list[Problem], prompt_template: str,
               refine_template: str, max_steps: int, target_accuracy: float, eval_every: int, batch_size: int,
               lr: float, format_fraction: float, corrupt_fraction: float, seed: int, max_new_tokens: int,
               first_check: int = 0, max_draft_chars: int | None = None, draft_truncation: str = "tail",
               formats: tuple[str, ...] = FORMATS, progress=None) -> WarmStartResult:
    """Train in place until ``target_accuracy`` greedy dev accuracy (checked every ``eval_every`` steps
    from ``first_check`` on) or ``max_steps``.

    Each batch is all plain or all in one auxiliary format (a ``format_fraction`` share of batches, split equally
    among ``formats``): plain batches are about half as long, so this costs less compute than mixing."""
    formats = check_formats(formats)
    rng = random.Random(seed)
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    warmup = max(1, max_steps // 20)

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, max_steps - warmup)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    history: list[tuple[int, float]] = []
    accuracy, loss_value, step = 0.0, float("nan"), 0
    model.train()
    for step in range(1, max_steps + 1):
        fmt = batch_format(rng, format_fraction, formats)
        batch = [make_example(rng.choice(pool), prompt_template, refine_template, rng, fmt, corrupt_fraction,
                              max_draft_chars, draft_truncation) for _ in range(batch_size)]
        out = model(**_collate(tokenizer, batch))
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        loss_value = out.loss.item()
        if progress is not None:
            progress(step, loss_value, accuracy)
        if (step >= first_check and step % eval_every == 0) or step == max_steps:
            accuracy = greedy_accuracy(model, tokenizer, dev, prompt_template, max_new_tokens)
            history.append((step, accuracy))
            model.train()
            if accuracy >= target_accuracy:
                break
    model.eval()
    return WarmStartResult(steps=step, dev_accuracy=accuracy, history=history, final_loss=loss_value)
