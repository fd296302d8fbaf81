"""A local Hugging Face causal LM as the judge: one forward pass per batch of judge prompts, score =
P(correct verdict) / (P(correct) + P(incorrect)) at the first generated position. No sampling and no
text parsing, so the score is deterministic and graded (a judge unsure about a near-miss gives partial
credit). The embedded tiny judge and any HF model by id or path use this same code, and the tiny
judge is trained through ``verdict_logits`` too, so training and scoring cannot drift apart."""

from __future__ import annotations

import math

import torch

from igrpo.rewards.judge.protocol import Verdict, answer_continuation, cap_candidate_tokens


def verdict_token_ids(tokenizer, word: str) -> list[int]:
    """First token of the verdict word as the judge would write it, bare and after a space."""
    ids = set()
    for variant in (word, " " + word):
        tokens = tokenizer(variant, add_special_tokens=False)["input_ids"]
        # A tokenizer that splits off the space (character-level) gives a bare space first: not a verdict.
        if tokens and tokenizer.decode(tokens[:1]).strip():
            ids.add(tokens[0])
    if not ids:
        raise ValueError(f"verdict word {word!r} encodes to no tokens")
    return sorted(ids)


def verdict_logits(model, tokenizer, prompts: list[str]) -> torch.Tensor:
    """Next-token logits after each prompt (batch x vocab). Left padding with explicit position ids, so a
    padded prompt scores exactly as it would alone."""
    device = next(model.parameters()).device
    tokenizer.padding_side = "left"
    enc = tokenizer(prompts, return_tensors="pt", padding=True).to(device)
    mask = enc["attention_mask"]
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=enc["input_ids"], attention_mask=mask, position_ids=positions)
    return out.logits[:, -1, :]


def continuation_logprobs(model, tokenizer, prompts: list[str], continuations: list[str]) -> torch.Tensor:
    """Sum of log-probabilities of each continuation's tokens after its prompt (batch,). Left padding with
    explicit position ids, as in ``verdict_logits``; shared by scoring and the tiny judge's training loss."""
    device = next(model.parameters()).device
    prompt_ids = [tokenizer(p)["input_ids"] for p in prompts]
    cont_ids = [tokenizer(c, add_special_tokens=False)["input_ids"] for c in continuations]
    rows = [p + c for p, c in zip(prompt_ids, cont_ids)]
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id
    ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=device)
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=device)
    labels = torch.tensor([[-100] * (width - len(c)) + c for c in cont_ids], device=device)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0)).logits
    logprobs = torch.log_softmax(logits[:, :-1].float(), -1)
    targets = labels[:, 1:]
    picked = logprobs.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * (targets != -100)).sum(-1)


class HFJudge:
    """Scores judge prompts with a local causal LM, in ``word`` or ``answer`` verdict mode (see protocol)."""

    def __init__(self, model, tokenizer, correct: str, incorrect: str, batch_size: int = 64, mode: str = "word",
                 max_candidate_tokens: int = 0):
        self.model = model.eval()
        self.max_candidate_tokens = max_candidate_tokens  # 0 = no token cap (the character cap still applies)
        self.tokenizer = tokenizer
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.mode = mode
        self.batch_size = batch_size
        if mode == "word":
            self.yes_ids = verdict_token_ids(tokenizer, correct)
            self.no_ids = verdict_token_ids(tokenizer, incorrect)
            if set(self.yes_ids) & set(self.no_ids):
                raise ValueError(f"verdict words {correct!r} and {incorrect!r} start with the same token; "
                                 "choose words whose first tokens differ")

    @torch.no_grad()
    def score(self, prompts: list[str], references: list[str | None], keys=None) -> list[Verdict]:
        if self.max_candidate_tokens > 0:
            prompts = [cap_candidate_tokens(p, self.tokenizer, self.max_candidate_tokens) for p in prompts]
        if self.mode == "answer":
            return self._score_answers(prompts, references)
        verdicts: list[Verdict] = []
        for start in range(0, len(prompts), self.batch_size):
            logprobs = torch.log_softmax(verdict_logits(self.model, self.tokenizer,
                                                        prompts[start : start + self.batch_size]).float(), -1)
            yes = torch.logsumexp(logprobs[:, self.yes_ids], -1)
            no = torch.logsumexp(logprobs[:, self.no_ids], -1)
            for p in torch.sigmoid(yes - no).tolist():
                verdicts.append(Verdict(p, "logprobs") if math.isfinite(p) else Verdict(None, "unparsed"))
        return verdicts

    def _score_answers(self, prompts: list[str], references: list[str | None]) -> list[Verdict]:
        """P(the judge writes the reference as the candidate's final answer)."""
        verdicts: list[Verdict] = []
        for start in range(0, len(prompts), self.batch_size):
            chunk = slice(start, start + self.batch_size)
            conts = [answer_continuation(r or "") for r in references[chunk]]
            for lp in continuation_logprobs(self.model, self.tokenizer, prompts[chunk], conts).tolist():
                p = math.exp(lp)
                verdicts.append(Verdict(p, "logprobs") if math.isfinite(p) else Verdict(None, "unparsed"))
        return verdicts

    def close(self) -> None:
        pass
