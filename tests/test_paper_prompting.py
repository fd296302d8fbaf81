"""How a real model's drafts enter the Stage-2 prompt under the paper preset (``experiment=paper``'s iGRPO settings:
``template=paper``, ``draft_content=answer_section``, the 1,024-token prompt cap scaled down), checked on a CPU run
of a tiny HF-format model whose chat template opens a ``<think>`` block the way DeepSeek-R1's does; and the
refinement prompt of a base model without a chat template (Nemotron-H) ending with its own completion cue."""

from __future__ import annotations

import json

import pytest
from mlflow.tracking import MlflowClient

from igrpo.core.drafts import TEMPLATES, build_refinement_prompt
from igrpo.tasks.base import Problem, TaskData
from igrpo.tasks.prompts import refinement_template

# DeepSeek-R1's layout in ASCII: the user turn, then the assistant turn opened with <think>
R1_LIKE_TEMPLATE = ("{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}<|User|>{{ m['content'] }}"
                    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|Assistant|><think>\n{% endif %}")
ASSISTANT = "<|Assistant|>"
PROBLEMS = [f"Tom has {a} red and {b} blue marbles; how many marbles has he in all?" for a in range(2, 7)
            for b in range(3, 6)]
ROOM_FOR_DRAFTS = 24  # tokens the prompt cap leaves for a draft after the longest problem and the template


@pytest.fixture(scope="module")
def think_model(tmp_path_factory):
    """A tiny Llama with a character tokenizer plus one token each for <think> and </think>, the R1-like chat
    template, and an output layer of zeros: it samples every token uniformly, so its drafts contain </think> now
    and then (about one draft in three), at random places, as a reasoning model's cut-off drafts may."""
    import torch

    from igrpo.models.tiny import build_char_tokenizer, build_tiny_model

    root = tmp_path_factory.mktemp("think_model")
    tok = build_char_tokenizer()
    tok.add_tokens(["<think>", "</think>"])
    tok.chat_template = R1_LIKE_TEMPLATE
    model = build_tiny_model(tok, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
                             max_positions=1024, seed=0)
    with torch.no_grad():
        model.lm_head.weight.zero_()  # tied to the embeddings: every logit 0, every token equally likely
    model.save_pretrained(root / "model")
    tok.save_pretrained(root / "model")
    train = root / "train.jsonl"
    train.write_text("".join(json.dumps({"problem": p, "solution": "\\boxed{1}"}) + "\n" for p in PROBLEMS))
    suite = root / "suite.jsonl"
    suite.write_text(json.dumps({"problem": "Find 2 plus 2.", "answer": "4"}) + "\n")
    return {"model": root / "model", "train": train, "suite": suite, "tokenizer": tok}


def _prompt_cap(cfg) -> int:
    """The longest draft-free Stage-2 prompt of the train set (as the trainer counts it) + ROOM_FOR_DRAFTS."""
    from igrpo.tasks import load_task

    task = load_task(cfg.task, cfg.seed, model_cfg=cfg.model, eval_cfg=cfg.eval)
    tok = _tokenizer(cfg)
    template = refinement_template(task, cfg.variant.template)
    return ROOM_FOR_DRAFTS + max(len(tok(text=build_refinement_prompt(template, p.problem, "", prompt=task.prompt(p)))
                                     ["input_ids"]) for p in task.train)


def _tokenizer(cfg):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(cfg.model.path)


def test_stage2_prompts_of_a_think_model_under_the_paper_preset(think_model, compose, tmp_path):
    """Acceptance 2: 2 iGRPO steps on CPU (float32, short lengths, the preset's prompting, its 8 micro-batches and
    gradient checkpointing): in the rollout table every Stage-2 prompt holds its whole problem, has no </think> in
    its user turn, and is within the token cap; the cap did cut drafts, and drafts did carry </think>."""
    from igrpo.job.runner import run
    from tests.helpers import eval_node

    args = ["experiment=paper", "model=hf", f"model.path={think_model['model']}", "model.chat_template=true",
            "model.dtype=float32", "device=cpu", "generation=hf", "generation.max_completion_length=48",
            "task=math", f"task.path={think_model['train']}", "train.steps=2", "train.prompts_per_step=2",
            "tracking.rollout_log_every=1"]
    cfg = compose(*args)
    from omegaconf import open_dict

    with open_dict(cfg):
        cfg.eval = eval_node(s={"path": str(think_model["suite"]), "samples": 1, "answer_field": "answer"})
        cfg.eval.max_new_tokens = 8
    cap = _prompt_cap(cfg)
    cfg.train.max_prompt_tokens = cap
    assert (cfg.variant.template, cfg.variant.draft_content, cfg.train.gradient_accumulation_steps,
            cfg.train.gradient_checkpointing) == ("paper", "answer_section", 8, True)  # the preset's, unchanged

    result = run(cfg)
    client = MlflowClient(cfg.tracking.uri)
    data = json.loads(open(client.download_artifacts(result.run_id, "rollouts.json", str(tmp_path))).read())
    rows = [dict(zip(data["columns"], row)) for row in data["data"]]
    refinements = [r for r in rows if r["stage"] == "refinement"]
    drafts = [r for r in rows if r["stage"] == "draft"]
    assert len(refinements) == len(drafts) == 2 * 2 * 4  # 2 steps x 2 prompts x 4
    tok = think_model["tokenizer"]
    for row in refinements:
        prompt = row["prompt"]
        user_turn, found, _ = prompt.partition(ASSISTANT)
        assert found and "</think>" not in user_turn and "<think>" not in user_turn, prompt
        assert any(p in user_turn for p in PROBLEMS), prompt  # the whole problem
        assert "<draft>" in user_turn and len(tok(text=prompt)["input_ids"]) <= cap, prompt
    assert any("</think>" in r["completion"] for r in drafts)  # the tags were there to strip
    metric = {k: [m.value for m in client.get_metric_history(result.run_id, k)]
              for k in ("draft/truncated_frac", "draft/prompt_tokens_max", "draft/answer_section_fallback_frac")}
    print(f"cap {cap} tokens; logged {metric}")
    assert max(metric["draft/truncated_frac"]) > 0 and max(metric["draft/prompt_tokens_max"]) <= cap
    assert len(metric["draft/answer_section_fallback_frac"]) == 2


def test_base_model_refinement_prompt_ends_with_its_completion_cue():
    """Nemotron-H base (no chat template): its own prompt around the problem and draft, ending with `Solution:`
    (not `</draft>`), as its plain prompt does; the tiny model's `...A:` template is used as it is."""
    nemotron = TaskData(train=[], eval_suites={}, prompt_template=(
        "Problem: {problem}\nPlease reason step by step, and put your final answer within \\boxed{}.\nSolution:"))
    problem = Problem(id="p0", problem="What is $1+1$?", answer="2")
    filled = build_refinement_prompt(refinement_template(nemotron, "paper"), problem.problem, "1+1=2, \\boxed{2}",
                                     prompt=nemotron.prompt(problem))
    assert filled.startswith("Problem: What is $1+1$?\n") and filled.endswith("\\boxed{}.\nSolution:"), filled
    assert "<draft>\n1+1=2, \\boxed{2}\n</draft>" in filled and "\\boxed{}" in filled
    tiny = TaskData(train=[], eval_suites={}, prompt_template="Q:{problem}\nA:")  # the arithmetic task's
    assert refinement_template(tiny, "tiny") == TEMPLATES["tiny"] == "Q:{problem}\nDraft:{draft}\nA:"


def test_problems_whose_plain_prompt_is_over_the_cap_are_left_out_not_cut():
    """The plain prompt is never cut: a problem whose prompt alone is over train.max_prompt_tokens is left out of
    training (for every variant alike), counted; a cap under every prompt is a one-line error."""
    from igrpo.errors import ConfigError
    from igrpo.models.tiny import build_char_tokenizer
    from igrpo.job.factory import build_dataset

    tok = build_char_tokenizer()  # one token per character, plus <bos>
    task = TaskData(train=[Problem(id=f"p{n}", problem="x" * n, answer="1") for n in (5, 10, 20)], eval_suites={},
                    prompt_template="Q:{problem}\nA:")  # 5 characters around the problem
    dataset, over = build_dataset(task, tok, max_prompt_tokens=16)  # <bos> + 5 + n <= 16: n <= 10
    assert over == 1 and dataset["prompt_id"] == ["p5", "p10"] and dataset["prompt"][1] == "Q:" + "x" * 10 + "\nA:"
    assert build_dataset(task)[1] == 0 and len(build_dataset(task)[0]) == 3  # no cap: every problem
    with pytest.raises(ConfigError, match=r"^train.max_prompt_tokens=8 is under every training prompt"):
        build_dataset(task, tok, max_prompt_tokens=8)
