"""The R1-Distill-Qwen look-alike built on the machine (igrpo/models/synthetic.py) that the GPU smoke check trains:
a byte-level tokenizer with R1's special tokens and chat template, and a Qwen2 config the memory plan reads."""

from __future__ import annotations

import pytest

from igrpo.models.synthetic import ASSISTANT, BOS, EOS, THINK_TAGS, build_r1_tokenizer, qwen2_config, save_r1_like

CORPUS = [f"What is {a} + {b}? {a} + {b} = {a + b}, so the answer is \\boxed{{{a + b}}}." for a in range(20)
          for b in range(20)]


@pytest.fixture(scope="module")
def tok():
    return build_r1_tokenizer(CORPUS, vocab_size=300)


def test_bytes_round_trip_and_r1_tokens_stay_whole(tok):
    text = "Größe ∑ 12 + 7 <think>so 19</think> \\boxed{19}\n"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text and tok.unk_token_id is None
    assert all(len(tok(t, add_special_tokens=False)["input_ids"]) == 1 for t in [BOS, EOS, ASSISTANT, *THINK_TAGS])
    assert tok.convert_ids_to_tokens(tok("2 + 2")["input_ids"])[0] == BOS  # BOS on every encode, as R1's tokenizer


def test_the_chat_frame_opens_think_and_a_rendered_prompt_keeps_one_bos(tok):
    from igrpo.tasks.prompts import chat_frame

    rendered = tok.apply_chat_template([{"role": "user", "content": "Q?"}], tokenize=False, add_generation_prompt=True)
    assert rendered == f"{BOS}<｜User｜>Q?{ASSISTANT}<think>\n"
    prefix, suffix = chat_frame(tok)  # the template's BOS is dropped: the tokenizer adds its own
    ids = tok(prefix + "Q?" + suffix)["input_ids"]
    assert ids.count(tok.bos_token_id) == 1 and suffix == f"{ASSISTANT}<think>\n"


def test_the_memory_plan_reads_a_7b_wide_config_without_weights(tmp_path, tok):
    from igrpo.plan.arch import from_config
    import json

    config = qwen2_config(tok, 3584, 2, 28, 4, 18944, vocab_size=152064)
    assert config.vocab_size == 152064 and not config.tie_word_embeddings
    save_r1_like(tmp_path, CORPUS, 3584, 2, 28, 4, 18944, vocab_size=152064, tokenizer_vocab=300, weights=False)
    assert not list(tmp_path.glob("*.safetensors"))
    arch = from_config(json.loads((tmp_path / "config.json").read_text()), "synthetic")
    # two untied 152,064 x 3,584 embeddings + 2 layers of Qwen2-7B's (233,057,792 each, biases on q/k/v)
    assert arch.parameters() == 2 * 152064 * 3584 + 2 * 233_057_792 + 3584
