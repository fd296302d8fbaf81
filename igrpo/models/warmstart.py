"""Supervised warm start of the tiny policy, so RL starts from a partially correct base.

Examples are (prompt -> worked solution + EOS) with the loss on the solution only. A configurable
share carries a draft in the refinement template: a correct draft, or a corrupted one (a wrong partial
result carried forward), always followed by the *correct* solution. This makes iGRPO's Stage-2 prompt
format in-distribution for the tiny model, as it is for an instruction-tuned LLM.

Stopping is by step count or by reaching a greedy dev accuracy, never by wall-clock, so a build is
reproducible on any machine.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import torch

from igrpo.answers import answers_match, extract_final_answer
from igrpo.drafts import build_refinement_prompt, truncate_draft
from igrpo.generation import generate_texts
from igrpo.tasks.arith import corrupt_solution
from igrpo.tasks.base import Problem


@dataclass
class WarmStartResult:
    steps: int
    dev_accuracy: float
    history: list[tuple[int, float]]  # (step, dev accuracy) at each check
    final_loss: float


def make_example(problem: Problem, prompt_template: str, refine_template: str, rng: random.Random,
                 with_draft: bool, corrupt_fraction: float, max_draft_chars: int | None = None,
                 draft_truncation: str = "tail") -> tuple[str, str]:
    """(prompt, target) for one warm-start example. Drafts are cut exactly as iGRPO will cut them
    (one character = one token for the tiny model), so Stage-2 prompts are in-distribution."""
    if with_draft:
        draft = corrupt_solution(problem.solution, rng) if rng.random() < corrupt_fraction else problem.solution
        if max_draft_chars is not None:
            draft = "".join(truncate_draft(list(draft), max_draft_chars, draft_truncation)[0])
        prompt = build_refinement_prompt(refine_template, problem.problem, draft)
    else:
        prompt = prompt_template.format(problem=problem.problem)
    return prompt, problem.solution


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
               lr: float, draft_fraction: float, corrupt_fraction: float, seed: int, max_new_tokens: int,
               first_check: int = 0, max_draft_chars: int | None = None, draft_truncation: str = "tail",
               progress=None) -> WarmStartResult:
    """Train in place until ``target_accuracy`` greedy dev accuracy (checked every ``eval_every`` steps
    from ``first_check`` on) or ``max_steps``.

    Each batch is either all plain or all draft-conditioned examples (a ``draft_fraction`` share of
    batches): plain batches are about half as long, so this costs ~25% less compute than mixing."""
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
        with_draft = rng.random() < draft_fraction
        batch = [make_example(rng.choice(pool), prompt_template, refine_template, rng, with_draft, corrupt_fraction,
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
