"""A judge behind an OpenAI-compatible HTTP endpoint (``vllm serve``, or ``python -m experiments.tools.judge_server``).

Requests go out concurrently (at most ``concurrency`` in flight) from a private asyncio loop on a daemon
thread, so the reward stays a plain synchronous callable wherever TRL calls it. Each request has a timeout;
connection errors, timeouts, 429 and 5xx answers are retried with exponential backoff; a request that
still fails, or an answer that cannot be read, yields ``Verdict(None, ...)``: the reward applies its
fallback score and counts it, and the training step goes on. Successful verdicts are cached by
(problem, reference, candidate), so a repeated draft costs nothing.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass

import aiohttp

from igrpo.rewards.judge.protocol import Verdict, answer_continuation, parse_verdict_text, score_from_logprobs

RETRY_STATUSES = {408, 429, 500, 502, 503, 504}


@dataclass
class HTTPStats:
    requests: int = 0
    retries: int = 0
    request_failures: int = 0  # gave up after retries (server down, 500s, timeouts)
    cache_hits: int = 0


class HTTPJudge:
    def __init__(self, url: str, model: str, correct: str, incorrect: str, mode: str = "word", concurrency: int = 8,
                 timeout_s: float = 10.0, max_retries: int = 3, backoff_s: float = 0.5, cache_size: int = 100_000,
                 max_tokens: int = 4, top_logprobs: int = 5):
        self.url = url.rstrip("/") + "/completions"
        self.model, self.correct, self.incorrect, self.mode = model, correct, incorrect, mode
        self.concurrency, self.timeout_s = concurrency, timeout_s
        self.max_retries, self.backoff_s = max_retries, backoff_s
        self.max_tokens, self.top_logprobs = max_tokens, top_logprobs
        self.cache: OrderedDict[tuple, Verdict] = OrderedDict()
        self.cache_size = cache_size
        self.stats = HTTPStats()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="igrpo-http-judge", daemon=True)
        self._thread.start()

    def score(self, prompts: list[str], references: list[str | None], keys: list[tuple] | None = None
              ) -> list[Verdict]:
        """One verdict per prompt; ``keys`` (e.g. (problem, reference, candidate)) index the cache."""
        keys = keys or [(p, r) for p, r in zip(prompts, references)]
        coro = self._score_all(prompts, references, keys)
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    async def _score_all(self, prompts: list[str], references: list, keys: list[tuple]) -> list[Verdict]:
        limit = asyncio.Semaphore(self.concurrency)
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            return list(await asyncio.gather(*(self._score_one(session, limit, p, r, k)
                                               for p, r, k in zip(prompts, references, keys))))

    def _payload(self, prompt: str, reference: str | None) -> dict:
        if self.mode == "answer":
            # Score the reference as a continuation, from the server's own tokenization: the prompt alone and the
            # prompt + continuation, both echoed with their token log-probs and nothing generated. The
            # continuation's tokens are those past the prompt's token count (see _read_answer).
            return {"model": self.model, "prompt": [prompt, prompt + answer_continuation(reference or "")],
                    "max_tokens": 0, "temperature": 0.0, "logprobs": 1, "echo": True}
        return {"model": self.model, "prompt": prompt, "max_tokens": self.max_tokens, "temperature": 0.0,
                "logprobs": self.top_logprobs}

    async def _score_one(self, session, limit: asyncio.Semaphore, prompt: str, reference, key: tuple) -> Verdict:
        if key in self.cache:
            self.stats.cache_hits += 1
            self.cache.move_to_end(key)
            return self.cache[key]
        async with limit:
            body = await self._request(session, self._payload(prompt, reference))
        if body is None:
            return Verdict(None, "request_failed")
        verdict = self._read_answer(body, prompt, reference or "") if self.mode == "answer" else self._read(body)
        if verdict.score is not None:
            self.cache[key] = verdict
            if len(self.cache) > self.cache_size:
                self.cache.popitem(last=False)
        return verdict

    async def _request(self, session, payload: dict):
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.stats.retries += 1
                await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
            self.stats.requests += 1
            try:
                async with session.post(self.url, json=payload) as response:
                    if response.status in RETRY_STATUSES:
                        continue
                    if response.status != 200:
                        break  # a client error will not fix itself
                    try:
                        return await response.json(content_type=None)
                    except (ValueError, aiohttp.ContentTypeError):
                        return {}  # garbage body: unparseable, not a transport failure
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                continue
        self.stats.request_failures += 1
        return None

    def _read(self, body) -> Verdict:
        """The verdict from an OpenAI completions answer: top log-probs of the first token when present,
        else the first word of the text. Any other shape is unparsed."""
        try:
            choice = body["choices"][0]
            logprobs = choice.get("logprobs") or {}
            top = (logprobs.get("top_logprobs") or [None])[0]
            if isinstance(top, dict) and top:
                verdict = score_from_logprobs(top, self.correct, self.incorrect)
                if verdict.score is not None:
                    return verdict
            text = choice.get("text")
            if isinstance(text, str):
                return parse_verdict_text(text, self.correct, self.incorrect)
        except (KeyError, IndexError, TypeError, AttributeError):
            pass
        return Verdict(None, "unparsed")

    def _read_answer(self, body, prompt: str, reference: str) -> Verdict:
        """``answer`` mode: exp(sum of the log-probs of the full text's tokens past the prompt's own token count),
        both counted by the server's tokenizer; never by character offsets, which a server may compute
        differently (unknown characters, byte-level tokens) from this client's view of the text.
        Unparsed unless both echoes are exactly the texts sent (nothing generated, nothing dropped) and the
        prompt's tokens are a prefix of the full text's (no token spanning the prompt/continuation boundary)."""
        full = prompt + answer_continuation(reference)
        try:
            choices = sorted(body["choices"], key=lambda c: c.get("index", 0))
            if len(choices) != 2 or choices[0].get("text") != prompt or choices[1].get("text") != full:
                return Verdict(None, "unparsed")
            prompt_tokens = choices[0]["logprobs"]["tokens"]
            full_tokens = choices[1]["logprobs"]["tokens"]
            values = choices[1]["logprobs"]["token_logprobs"]
            n = len(prompt_tokens)
            if not (0 < n < len(full_tokens) == len(values)) or list(full_tokens[:n]) != list(prompt_tokens):
                return Verdict(None, "unparsed")
            continuation = values[n:]
            if not all(isinstance(v, (int, float)) and math.isfinite(v) and v <= 0 for v in continuation):
                return Verdict(None, "unparsed")
            return Verdict(math.exp(sum(continuation)), "logprobs")
        except (KeyError, IndexError, TypeError, AttributeError):
            return Verdict(None, "unparsed")

    def close(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
