"""Config -> the baseline variants' trainers (``igrpo.training.factory`` dispatches here for their names)."""

from __future__ import annotations

from igrpo.variants.critique_grpo.rules import resolve_refine_template, self_critique_template
from igrpo.variants.self_verify.rules import plain_verify_prompt, resolve_instruction, tiny_verify_prompt, verify_messages
from igrpo.tasks.base import TaskData


def frame(task: TaskData, template: str) -> str:
    """A user-message template framed by the task's chat template (unchanged for plain prompts)."""
    return task.chat_prefix + template + task.chat_suffix


def make_baseline_trainer(cfg, task: TaskData, tokenizer, common: dict):
    """The ``critique_grpo`` or ``self_verify`` trainer; ``common``: the keyword arguments every trainer gets."""
    v = cfg.variant
    if v.name == "critique_grpo":
        from igrpo.variants.critique_grpo.trainer import CritiqueGRPOTrainer

        return CritiqueGRPOTrainer(variant=v, refine_template=frame(task, resolve_refine_template(v.template)),
                                   critique_template=frame(task, self_critique_template(v.template)),
                                   selection_seed=cfg.seed, **common)
    from igrpo.variants.self_verify.trainer import SelfVerifyTrainer, wrap_rewards

    funcs, weights = wrap_rewards(common["reward_funcs"], list(common["args"].reward_weights), v.unparseable_reward)
    common["args"].reward_weights = weights
    return SelfVerifyTrainer(variant=v, verify_prompt=verify_prompt_builder(cfg, task, tokenizer),
                             selection_seed=cfg.seed, **{**common, "reward_funcs": funcs})


def verify_prompt_builder(cfg, task: TaskData, tokenizer):
    """``build(problem, solution) -> prompt``: with ``variant.layout=turns`` the three verification turns, through the
    model's chat template when its prompts use one (``model.chat_template``), else as labelled plain text; with
    ``layout=tiny`` the embedded model's compact layout. The solution is cut to its last ``variant.max_solution_tokens``
    tokens."""
    v = cfg.variant
    chat = bool(task.chat_prefix or task.chat_suffix)
    system = cfg.model.get("system_prompt") if chat else None
    instruction = resolve_instruction(v.instruction)
    special = set(tokenizer.all_special_ids)
    adds_bos = tokenizer.bos_token_id is not None and tokenizer("a")["input_ids"][:1] == [tokenizer.bos_token_id]

    def build(problem: str, solution: str) -> str:
        ids = [t for t in tokenizer(solution, add_special_tokens=False)["input_ids"] if t not in special]
        cut = tokenizer.decode(ids[-v.max_solution_tokens:], skip_special_tokens=True)
        if v.layout == "tiny":
            return tiny_verify_prompt(problem, cut)
        user = task.prompt_template.replace("{problem}", problem)
        if not chat:
            return plain_verify_prompt(user, cut, instruction)
        text = tokenizer.apply_chat_template(verify_messages(user, cut, instruction, system), tokenize=False,
                                             add_generation_prompt=True)
        bos = tokenizer.bos_token
        # TRL tokenizes string prompts with the tokenizer's own BOS: one rendered by the template would double it
        return text[len(bos):] if adds_bos and bos and text.startswith(bos) else text

    return build
