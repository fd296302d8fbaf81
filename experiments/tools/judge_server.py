"""A minimal OpenAI-compatible completions server for a local HF causal LM (the embedded judge by default).

    python -m experiments.tools.judge_server --model <dir or hub id> --host 127.0.0.1 --port 8011

It answers ``POST /v1/completions`` (prompt: a string or a list; max_tokens, 0 with echo = score the prompt
only; temperature 0 = greedy; logprobs: how many top log-probs per token; echo: the prompt's own tokens and
log-probs first, from this server's tokenization with offsets into the exact text) and ``GET /v1/models``,
which is what the HTTP judge backend (and most OpenAI clients) use, so the same client code talks to
``vllm serve`` on a GPU machine. Every malformed request (bad JSON, a bad field value, a missing, negative or
oversized Content-Length, a body that stops arriving) is answered 400 with a JSON error; reads are bounded in
size and time, so no handler thread waits forever. Requests are served by threads; the model runs one request
at a time under a lock. Loopback by default.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch


MAX_BODY_BYTES = 1 << 20  # a request body larger than this is refused (400) without being read
MAX_PROMPTS = 64  # prompts per request
MAX_TOKENS_CAP = 512  # max_tokens above this is refused
MAX_TOP_LOGPROBS = 20  # as OpenAI's completions API
READ_TIMEOUT_S = 10.0  # a client that stops sending mid-request releases its handler thread after this


class BadRequest(ValueError):
    """A malformed request: answered 400 with this message."""


class CompletionModel:
    def __init__(self, model_path: str, device: str = "cpu"):
        from igrpo.models.loading import load_policy

        self.model, self.tokenizer = load_policy(model_path, "float32", device)
        self.model.eval()
        self.name = model_path
        self.lock = threading.Lock()
        self.max_positions = getattr(self.model.config, "max_position_embeddings", None)

    @torch.no_grad()
    def complete(self, prompt: str, max_tokens: int, temperature: float, top_logprobs: int,
                 echo: bool = False) -> dict:
        tok = self.tokenizer
        enc = tok(prompt, return_offsets_mapping=True, return_special_tokens_mask=True)
        if self.max_positions and len(enc["input_ids"]) + max_tokens > self.max_positions:
            raise BadRequest(f"prompt of {len(enc['input_ids'])} tokens + max_tokens={max_tokens} exceeds the "
                             f"model's {self.max_positions} positions")
        ids = torch.tensor([enc["input_ids"]], device=self.model.device)
        tokens, token_logprobs, tops, finish = [], [], [], "length"
        offsets: list[int] = []
        with self.lock:
            if echo:  # the prompt's own tokens and their log-probs first, as OpenAI's echo does
                tokens, token_logprobs, tops, offsets = self._prompt_logprobs(ids, enc, prompt, top_logprobs)
            echoed = len(tokens)
            text_len = len(prompt) if echo else 0
            for _ in range(max_tokens):
                logprobs = torch.log_softmax(self.model(input_ids=ids).logits[0, -1].float(), -1)
                if temperature > 0:
                    next_id = int(torch.multinomial(torch.softmax(logprobs / temperature, -1), 1))
                else:
                    next_id = int(logprobs.argmax())
                if next_id == tok.eos_token_id:
                    finish = "stop"
                    break
                values, indices = logprobs.topk(min(top_logprobs, logprobs.numel())) if top_logprobs else ([], [])
                tops.append({tok.decode([int(i)]): float(v) for v, i in zip(values, indices)})
                piece = tok.decode([next_id])
                offsets.append(text_len)
                text_len += len(piece)
                tokens.append(piece)
                token_logprobs.append(float(logprobs[next_id]))
                ids = torch.cat([ids, torch.tensor([[next_id]], device=ids.device)], dim=1)
        generated = "".join(tokens[echoed:])
        return {"text": (prompt if echo else "") + generated, "finish_reason": finish,
                "logprobs": {"tokens": tokens, "token_logprobs": token_logprobs, "top_logprobs": tops,
                             "text_offset": offsets} if top_logprobs else None}

    def _prompt_logprobs(self, ids: torch.Tensor, enc, prompt: str, top_logprobs: int):
        """(tokens, log-probs, top log-probs, text offsets) of the prompt itself, every token of the text
        included (unknown characters too: their token is the text they stand for); the first has no log-prob.
        Special tokens the tokenizer adds (BOS) are not part of the text and are left out."""
        tok = self.tokenizer
        logprobs = torch.log_softmax(self.model(input_ids=ids).logits[0].float(), -1)
        tokens, values, tops, offsets = [], [], [], []
        for pos, (token_id, added, (start, end)) in enumerate(zip(enc["input_ids"], enc["special_tokens_mask"],
                                                                   enc["offset_mapping"])):
            if added:
                continue
            tokens.append(prompt[start:end])
            offsets.append(start)
            if pos == 0:
                values.append(None)
                tops.append(None)
                continue
            values.append(float(logprobs[pos - 1, token_id]))
            top_v, top_i = logprobs[pos - 1].topk(max(1, top_logprobs))
            tops.append({tok.decode([int(i)]): float(v) for v, i in zip(top_v, top_i)})
        return tokens, values, tops, offsets


def _integer(request: dict, key: str, default: int, low: int, high: int) -> int:
    value = request.get(key, default)
    if value is None:
        value = default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(f"{key}={value!r}: expected an integer in [{low}, {high}]")
    return value


def parse_request(raw: bytes) -> tuple[list[str], int, float, int, bool]:
    """(prompts, max_tokens, temperature, logprobs, echo) of a completions request body, or BadRequest."""
    try:
        request = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as err:
        raise BadRequest(f"body is not JSON: {err}") from None
    if not isinstance(request, dict):
        raise BadRequest(f"body must be a JSON object, got {type(request).__name__}")
    prompt = request.get("prompt")
    prompts = prompt if isinstance(prompt, list) else [prompt]
    if not prompts or len(prompts) > MAX_PROMPTS or not all(isinstance(p, str) for p in prompts):
        raise BadRequest(f"prompt must be a string or a list of 1-{MAX_PROMPTS} strings (token ids are not supported)")
    temperature = request.get("temperature", 1.0)
    if temperature is None:
        temperature = 1.0
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature <= 100:
        raise BadRequest(f"temperature={temperature!r}: expected a number in [0, 100]")
    echo = request.get("echo", False)
    if not isinstance(echo, bool):
        raise BadRequest(f"echo={echo!r}: expected true or false")
    return (prompts, _integer(request, "max_tokens", 16, 0, MAX_TOKENS_CAP), float(temperature),
            _integer(request, "logprobs", 0, 0, MAX_TOP_LOGPROBS), echo)


def make_handler(engine: CompletionModel, read_timeout_s: float = READ_TIMEOUT_S):
    class Handler(BaseHTTPRequestHandler):
        timeout = read_timeout_s  # socket timeout: a stalled client cannot hold a handler thread forever

        def log_message(self, *args):  # quiet: one line per request would flood test output
            pass

        def _send(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status >= 400:  # the rest of a refused body may be unread: do not reuse the connection
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str) -> None:
            self._send(status, {"error": {"message": message, "code": status,
                                          "type": "invalid_request_error" if status < 500 else "server_error"}})

        def do_GET(self):
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": engine.name, "object": "model"}]})
            else:
                self._error(404, f"no route {self.path}")

        def _read_body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                raise BadRequest("chunked request bodies are not supported; send Content-Length")
            length = self.headers.get("Content-Length")
            if length is None:
                raise BadRequest("Content-Length is required")
            try:
                size = int(length)
            except ValueError:
                raise BadRequest(f"Content-Length={length!r} is not an integer") from None
            if not 0 <= size <= MAX_BODY_BYTES:
                raise BadRequest(f"Content-Length={size}: expected 0..{MAX_BODY_BYTES} bytes")
            body = self.rfile.read(size)
            if len(body) != size:
                raise BadRequest(f"body ended after {len(body)} of {size} bytes")
            return body

        def do_POST(self):
            if self.path.rstrip("/") != "/v1/completions":
                return self._error(404, f"no route {self.path}")
            try:
                prompts, max_tokens, temperature, top, echo = parse_request(self._read_body())
                choices = [{"index": index, **engine.complete(prompt, max_tokens, temperature, top, echo=echo)}
                           for index, prompt in enumerate(prompts)]
            except BadRequest as err:
                return self._error(400, f"bad request: {err}")
            except TimeoutError:
                return self._error(400, f"bad request: body not received within {read_timeout_s:g} s")
            except Exception as err:  # noqa: BLE001 - answered as a JSON 500, never a dropped connection
                return self._error(500, f"{type(err).__name__}: {err}")
            self._send(200, {"id": f"cmpl-{time.time_ns()}", "object": "text_completion", "created": int(time.time()),
                             "model": engine.name, "choices": choices})

    return Handler


def serve(model_path: str, host: str = "127.0.0.1", port: int = 0, device: str = "cpu",
          read_timeout_s: float = READ_TIMEOUT_S) -> ThreadingHTTPServer:
    """Start serving in a daemon thread and return the server (``server.server_address`` has the port)."""
    server = ThreadingHTTPServer((host, port), make_handler(CompletionModel(model_path, device), read_timeout_s))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model directory or hub id")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--read-timeout", type=float, default=READ_TIMEOUT_S,
                        help="seconds a client may take to send a request before it is answered 400")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads; 0 = this process's share of the cores (set IGRPO_CONCURRENT_JOBS=2 "
                             "when it shares the machine with a training run; see igrpo/job/threads.py)")
    args = parser.parse_args()
    from igrpo.job.threads import apply as apply_threads

    apply_threads(args.threads)
    server = ThreadingHTTPServer((args.host, args.port),
                                 make_handler(CompletionModel(args.model, args.device), args.read_timeout))
    print(f"serving {args.model} on http://{args.host}:{server.server_address[1]}/v1", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
