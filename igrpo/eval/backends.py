"""Generation backends of an evaluation: HF ``generate`` (CPU, tests, any model) and vLLM offline.

Both stop at ``igrpo.training.generation.stop_token_ids`` (the tokens training stops at) and at
``eval.max_new_tokens``, and both see the same prompt token ids (the tokenizer's own encoding, special tokens
included) and drop special tokens from what they return.

* ``HFBackend`` (``calls = "chunk"``): one ``generate`` per chunk of problems, k samples per prompt, one seed per
  chunk.
* ``VLLMBackend`` (``calls = "suite"``): one engine; ``sample_seeded`` hands it a whole suite's pending samples in
  one ``generate`` call, each sample a request with its own seed, so vLLM schedules the suite (continuous batching)
  instead of waiting for each chunk's longest sample. Its ``max_model_len`` is what the suite needs (longest prompt
  + ``eval.max_new_tokens``), refused in one line where the model's context is shorter
  (``igrpo.eval.context``). Engine settings, including what vLLM's CPU build needs, come from
  ``igrpo.training.vllm_engine``. vLLM's sampler differs from HF's, so its numbers are not bit-identical to an
  HF evaluation of the same weights.
"""

from __future__ import annotations

import torch

from igrpo.training.generation import generate_texts, stop_token_ids


class HFBackend:
    """A loaded HF causal LM and its tokenizer."""

    def __init__(self, model, tokenizer):
        self.model, self.tokenizer = model, tokenizer

    def sample(self, prompts: list[str], k: int, eval_cfg, seed: int) -> list[list[str]]:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            texts = generate_texts(self.model, self.tokenizer, prompts, max_new_tokens=eval_cfg.max_new_tokens,
                                   do_sample=True, temperature=eval_cfg.temperature, top_p=eval_cfg.top_p,
                                   num_return_sequences=k, batch_size=eval_cfg.batch_size)
        return [texts[i * k:(i + 1) * k] for i in range(len(prompts))]

    def greedy(self, prompts: list[str], eval_cfg) -> list[str]:
        return generate_texts(self.model, self.tokenizer, prompts, max_new_tokens=eval_cfg.max_new_tokens,
                              do_sample=False, batch_size=eval_cfg.batch_size)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])


class VLLMBackend:
    """vLLM offline engine over a model directory (the evaluation job: training is over, or it runs in a process of
    its own)."""

    calls = "suite"

    def __init__(self, model_path: str, tokenizer, generation_cfg, dtype: str, device: str, max_model_len: int):
        from igrpo.training.vllm_engine import offline_engine

        self.tokenizer = tokenizer
        self.max_model_len = int(max_model_len)
        self.llm = offline_engine(model_path, generation_cfg, dtype, device, self.max_model_len)
        self.stops = _saved_stop_tokens(model_path, tokenizer)
        self.generate_calls = 0  # what the job's tests count: one per suite (or shard)

    def _params(self, eval_cfg, seed: int | None, greedy: bool):
        from vllm import SamplingParams

        return SamplingParams(n=1, temperature=0.0 if greedy else float(eval_cfg.temperature),
                              top_p=1.0 if greedy else float(eval_cfg.top_p), seed=seed,
                              max_tokens=int(eval_cfg.max_new_tokens), stop_token_ids=self.stops,
                              skip_special_tokens=True)

    def _generate(self, prompts: list[str], params: list) -> list[str]:
        self.generate_calls += 1
        requests = [{"prompt_token_ids": ids} for ids in self.tokenizer(prompts)["input_ids"]]
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        special = set(self.tokenizer.all_special_ids)
        return [self.tokenizer.decode([t for t in out.outputs[0].token_ids if t not in special])
                for out in outputs]

    def sample_seeded(self, prompts: list[str], seeds: list[list[int]], eval_cfg) -> list[list[str]]:
        """``seeds[i]``: one seed per sample of prompt i; all of them in one ``generate`` call."""
        flat = [prompt for prompt, own in zip(prompts, seeds) for _ in own]
        texts = self._generate(flat, [self._params(eval_cfg, s, greedy=False) for own in seeds for s in own])
        out, start = [], 0
        for own in seeds:
            out.append(texts[start:start + len(own)])
            start += len(own)
        return out

    def greedy(self, prompts: list[str], eval_cfg) -> list[str]:
        return self._generate(prompts, [self._params(eval_cfg, None, greedy=True)] * len(prompts))

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])


def _saved_stop_tokens(model_path: str, tokenizer) -> list[int]:
    """``stop_token_ids`` for a model on disk: its tokenizer's EOS, its generation config's EOS ids, its chat
    template's end of turn (training's set), passed to every request rather than left to the engine's reading of
    the model's files."""
    from transformers import GenerationConfig

    class _Saved:
        generation_config = None

    saved = _Saved()
    try:
        saved.generation_config = GenerationConfig.from_pretrained(model_path)
    except OSError:
        pass
    return stop_token_ids(saved, tokenizer)
