"""Rollouts stop at the stop tokens passed to generation explicitly: the tokenizer's EOS and pad, every EOS of the
model's generation config, and the chat template's end-of-turn token. TRL's vLLM engine reads the model's files, not
the generation config pinned in memory, so the trainer hands the set to TRL's ``generation_kwargs`` (transformers'
EOS and pad ids; vLLM's ``stop_token_ids``). Real TRL trainer, tiny models; vLLM itself is not installed here, so its
kwargs are checked as built, not as vLLM reads them."""

from __future__ import annotations

import pytest

from igrpo.tasks import load_task
from igrpo.training.generation import chat_end_of_turn_id, rollout_stop_kwargs, stop_token_ids

QWEN_LIKE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
             "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
PLAIN_FRAME = ("{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
               "{% if add_generation_prompt %}<|assistant|>{% endif %}")


@pytest.fixture
def chat_model():
    """A tiny Llama whose tokenizer has a Qwen-style template: ``<|im_end|>`` ends a turn but is not its EOS."""
    from igrpo.models.tiny import build_char_tokenizer, build_tiny_model

    tok = build_char_tokenizer()
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tok.chat_template = QWEN_LIKE
    model = build_tiny_model(tok, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
                             max_positions=256, seed=0)
    return model, tok


def _trainer(compose, model, tokenizer, tmp_path):
    from igrpo.job.factory import make_trainer

    cfg = compose("variant=grpo")
    task = load_task(cfg.task, cfg.seed, model_cfg=cfg.model, eval_cfg=cfg.eval)
    trainer, _ = make_trainer(cfg, model, tokenizer, task, tmp_path / "out")
    return trainer


def test_the_trainer_hands_generation_the_eos_and_pad_tokens(compose, smoke_model_dir, tmp_path):
    from igrpo.models.loading import load_policy

    model, tok = load_policy(str(smoke_model_dir))
    trainer = _trainer(compose, model, tok, tmp_path)
    stops = stop_token_ids(model, tok)
    assert stops == [tok.eos_token_id]  # the tiny model: no chat template, one EOS
    assert trainer.args.generation_kwargs == {"eos_token_id": stops, "pad_token_id": tok.pad_token_id}
    assert trainer.generation_kwargs["eos_token_id"] == stops  # what TRL's generate() runs with
    assert trainer.generation_kwargs["pad_token_id"] == tok.pad_token_id


def test_the_chat_templates_end_of_turn_token_stops_rollouts(compose, chat_model, tmp_path):
    model, tok = chat_model
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert chat_end_of_turn_id(tok) == im_end and tok.eos_token_id != im_end
    trainer = _trainer(compose, model, tok, tmp_path)
    assert trainer.args.generation_kwargs["eos_token_id"] == [tok.eos_token_id, im_end]
    assert trainer.generation_config.eos_token_id == [tok.eos_token_id, im_end]
    assert im_end in trainer.eos_token_ids  # TRL masks a completion after it, too


def test_vllm_gets_the_stop_tokens_as_sampling_params():
    assert rollout_stop_kwargs("vllm", [2, 7], 0) == {"stop_token_ids": [2, 7]}  # SamplingParams' field
    assert rollout_stop_kwargs("hf", [2, 7], 0) == {"eos_token_id": [2, 7], "pad_token_id": 0}


@pytest.mark.parametrize("template", [None, PLAIN_FRAME, "{{ raise_exception('system turn required') }}"])
def test_templates_without_an_end_of_turn_token_add_none(template):
    from igrpo.models.tiny import build_char_tokenizer

    tok = build_char_tokenizer()
    tok.chat_template = template
    assert chat_end_of_turn_id(tok) is None
