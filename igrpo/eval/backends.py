"""Generation backends of an evaluation: HF ``generate`` (CPU, tests, any model) and vLLM offline (GPUs).

Both take a chunk's prompts and return k samples per prompt (``sample``) or one greedy completion per prompt
(``greedy``), stopping at ``igrpo.training.generation.stop_token_ids`` (the tokens training stops at) and at
``eval.max_new_tokens``.

The vLLM path (``generation=vllm``) is one engine with ``n=k`` samples per prompt and tensor parallelism over
``generation.tensor_parallel_size`` GPUs. It is a thin wrapper that has NOT been run here (no vLLM, no GPU
on the development machines). vLLM's sampler differs
from HF's, so its numbers are not bit-identical to an HF evaluation of the same weights.
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


class VLLMBackend:  # pragma: no cover  (needs vLLM and a GPU; unverified on the development machines)
    """vLLM offline engine over a model directory or hub id."""

    def __init__(self, model_path: str, tokenizer, generation_cfg, dtype: str, max_model_len: int | None = None):
        try:
            from vllm import LLM
        except ImportError as err:
            from igrpo.errors import ConfigError

            raise ConfigError("generation=vllm needs the vllm package (pip install vllm, on a GPU machine); "
                              "use generation=hf here") from err
        self.tokenizer = tokenizer
        self.stops = None
        # the eval job has the GPUs to itself (training is over), so vLLM takes the paper's 0.85 of each
        self.llm = LLM(model=model_path, tensor_parallel_size=int(generation_cfg.tensor_parallel_size),
                       gpu_memory_utilization=max(0.85, float(generation_cfg.gpu_memory_utilization)),
                       dtype=dtype, max_model_len=max_model_len, seed=0)

    def _params(self, eval_cfg, n: int, seed: int | None, greedy: bool):
        from vllm import SamplingParams

        if self.stops is None:
            from transformers import GenerationConfig

            class _Model:  # stop_token_ids reads the generation config's EOS ids, as for HF models
                generation_config = None

            model = _Model()
            try:
                model.generation_config = GenerationConfig.from_pretrained(self.llm.llm_engine.model_config.model)
            except OSError:
                pass
            self.stops = stop_token_ids(model, self.tokenizer)
        return SamplingParams(n=n, temperature=0.0 if greedy else float(eval_cfg.temperature),
                              top_p=1.0 if greedy else float(eval_cfg.top_p), seed=seed,
                              max_tokens=int(eval_cfg.max_new_tokens), stop_token_ids=self.stops)

    def sample(self, prompts: list[str], k: int, eval_cfg, seed: int) -> list[list[str]]:
        outputs = self.llm.generate(prompts, self._params(eval_cfg, k, seed, greedy=False), use_tqdm=False)
        return [[c.text for c in out.outputs] for out in outputs]

    def greedy(self, prompts: list[str], eval_cfg) -> list[str]:
        outputs = self.llm.generate(prompts, self._params(eval_cfg, 1, None, greedy=True), use_tqdm=False)
        return [out.outputs[0].text for out in outputs]

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
