"""Evaluation stops at the same tokens as training (issue #12 acceptance 4): with a generation config that lists
two EOS ids, generation stops at whichever comes first, and TRL's rollouts use exactly the helper's set."""

from __future__ import annotations

import pytest
import torch

from igrpo.training.generation import generate_texts, pin_stop_tokens, stop_token_ids


@pytest.fixture(scope="module")
def tiny():
    from igrpo.models.tiny import build_char_tokenizer, build_tiny_model

    tok = build_char_tokenizer()
    model = build_tiny_model(tok, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
                             max_positions=256, seed=0)
    return model, tok


PROMPT = "Q:1+2\nA:"


def sampled_text(model, tok, stops: list[int]) -> str:
    """One seeded sample of up to 24 new tokens through the eval path, with these generation-config EOS ids."""
    model.generation_config.eos_token_id = stops
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return generate_texts(model, tok, [PROMPT], max_new_tokens=24, do_sample=True)[0]


def sampled_ids(model, tok) -> list[int]:
    """The same sample's token ids with no stop at all (``generate`` directly, same seed and settings)."""
    enc = tok([PROMPT], return_tensors="pt")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        out = model.generate(**enc, max_new_tokens=24, do_sample=True, temperature=1.0, top_p=1.0, top_k=None,
                             eos_token_id=[], pad_token_id=tok.pad_token_id)
    return out[0, enc["input_ids"].shape[1]:].tolist()


def first_new_token_after(ids: list[int], position: int) -> tuple[int, int]:
    """A token that appears first at or after ``position`` (so stopping there cuts the text at its first use)."""
    for i in range(position, len(ids)):
        if ids[i] not in ids[:i]:
            return i, ids[i]
    raise AssertionError(f"no fresh token in {ids}")


def test_generation_stops_at_either_of_two_eos_ids(tiny):
    model, tok = tiny
    free = sampled_ids(model, tok)
    assert len(free) == 24 and tok.eos_token_id not in free  # this seed never samples the tokenizer's EOS
    assert sampled_text(model, tok, [tok.eos_token_id]) == tok.decode(free, skip_special_tokens=True)
    early_at, early = first_new_token_after(free, 3)
    late_at, late = first_new_token_after(free, early_at + 3)
    unused = next(i for i in range(4, len(tok)) if i not in free)
    # the first listed extra EOS ends it where it is first sampled ...
    assert sampled_text(model, tok, [tok.eos_token_id, early, unused]) == tok.decode(free[:early_at + 1],
                                                                                    skip_special_tokens=True)
    # ... and so does the second one
    assert sampled_text(model, tok, [tok.eos_token_id, unused, late]) == tok.decode(free[:late_at + 1],
                                                                                   skip_special_tokens=True)
    assert stop_token_ids(model, tok) == [tok.eos_token_id, unused, late]


def test_stop_token_ids_put_the_tokenizers_eos_first_without_repeats(tiny):
    model, tok = tiny
    model.generation_config.eos_token_id = [7, tok.eos_token_id, 7]
    assert stop_token_ids(model, tok) == [tok.eos_token_id, 7]
    model.generation_config.eos_token_id = None
    assert stop_token_ids(model, tok) == [tok.eos_token_id]
    model.generation_config.eos_token_id = 9
    assert pin_stop_tokens(model, tok) == [tok.eos_token_id, 9]
    assert model.generation_config.eos_token_id == [tok.eos_token_id, 9]


def test_training_rollouts_stop_at_the_same_tokens(tiny, compose):
    from igrpo.tasks import load_task
    from igrpo.job.factory import make_trainer

    model, tok = tiny
    model.generation_config.eos_token_id = [11, 12]
    cfg = compose("variant=grpo")
    trainer, _ = make_trainer(cfg, model, tok, load_task(cfg.task, cfg.seed), cfg.output_dir)
    assert trainer.eos_token_ids == stop_token_ids(model, tok) == [tok.eos_token_id, 11, 12]
