"""DAPO's overlong reward shaping as a reward function (``algo.overlong_shaping``): the penalty of
``igrpo.core.dapo.overlong_penalty`` on each completion's length in tokens, added to the training reward with weight
1 (its size is ``algo.overlong_penalty``). TRL hands reward functions the sampled ``completion_ids`` (the end token
included, as DAPO counts); a caller that scores texts without their ids (the baselines' own scoring) gets them
re-tokenized. It sits beside ``algo.mask_truncated_completions``, which takes truncated completions out of the loss
instead."""

from __future__ import annotations

from collections.abc import Sequence

from igrpo.core.dapo import overlong_penalty
from igrpo.rewards import completion_text


class OverlongPenalty:
    """0 up to ``max_length - buffer`` tokens, then linear down to ``-factor`` at ``max_length``."""

    __name__ = "overlong"

    def __init__(self, max_length: int, buffer: int, factor: float, tokenizer=None) -> None:
        self.max_length, self.buffer, self.factor, self.tokenizer = max_length, buffer, factor, tokenizer

    def _length(self, completion) -> int:
        if self.tokenizer is None:
            raise ValueError("the overlong penalty needs completion_ids or a tokenizer")
        return len(self.tokenizer(text=completion_text(completion), add_special_tokens=False)["input_ids"])

    def __call__(self, prompts: Sequence[str], completions: Sequence, completion_ids=None, **_) -> list[float]:
        lengths = ([len(ids) for ids in completion_ids] if completion_ids is not None
                   else [self._length(c) for c in completions])
        return [overlong_penalty(n, self.max_length, self.buffer, self.factor) for n in lengths]
