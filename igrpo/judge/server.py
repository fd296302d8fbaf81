"""A minimal OpenAI-compatible completions server for a local HF causal LM (the embedded judge by default).

    python -m igrpo.judge.server --model <dir or hub id> --host 127.0.0.1 --port 8011

It answers ``POST /v1/completions`` (prompt: a string or a list; max_tokens; temperature 0 = greedy;
logprobs: how many top log-probs per generated token) and ``GET /v1/models``, which is what the HTTP judge
backend (and most OpenAI clients) use, so the same client code talks to ``vllm serve`` on a GPU machine.
Requests are served by threads; the model runs one request at a time under a lock. Loopback by default.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch


class CompletionModel:
    def __init__(self, model_path: str, device: str = "cpu"):
        from igrpo.models.loading import load_policy

        self.model, self.tokenizer = load_policy(model_path, "float32", device)
        self.model.eval()
        self.name = model_path
        self.lock = threading.Lock()

    @torch.no_grad()
    def complete(self, prompt: str, max_tokens: int, temperature: float, top_logprobs: int,
                 echo: bool = False) -> dict:
        tok = self.tokenizer
        ids = torch.tensor([tok(prompt)["input_ids"]], device=self.model.device)
        tokens, token_logprobs, tops, finish = [], [], [], "length"
        offsets: list[int] = []
        with self.lock:
            if echo:  # the prompt's own tokens and their log-probs first, as OpenAI's echo does
                tokens, token_logprobs, tops, offsets = self._prompt_logprobs(ids, top_logprobs)
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
                offsets.append(sum(len(t) for t in tokens))
                tokens.append(tok.decode([next_id]))
                token_logprobs.append(float(logprobs[next_id]))
                ids = torch.cat([ids, torch.tensor([[next_id]], device=ids.device)], dim=1)
        choice = {"text": "".join(tokens), "finish_reason": finish,
                  "logprobs": {"tokens": tokens, "token_logprobs": token_logprobs, "top_logprobs": tops,
                               "text_offset": offsets} if top_logprobs else None}
        return choice

    def _prompt_logprobs(self, ids: torch.Tensor, top_logprobs: int):
        """(tokens, log-probs, top log-probs, text offsets) of the prompt itself; the first token has none.
        Special tokens (BOS) are not part of the text."""
        tok = self.tokenizer
        logprobs = torch.log_softmax(self.model(input_ids=ids).logits[0].float(), -1)
        tokens, values, tops, offsets, text_len = [], [], [], [], 0
        special = set(tok.all_special_ids)
        for pos, token_id in enumerate(ids[0].tolist()):
            if token_id in special:
                continue
            piece = tok.decode([token_id])
            tokens.append(piece)
            offsets.append(text_len)
            text_len += len(piece)
            if pos == 0:
                values.append(None)
                tops.append(None)
                continue
            values.append(float(logprobs[pos - 1, token_id]))
            top_v, top_i = logprobs[pos - 1].topk(max(1, top_logprobs))
            tops.append({tok.decode([int(i)]): float(v) for v, i in zip(top_v, top_i)})
        return tokens, values, tops, offsets


def make_handler(engine: CompletionModel):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet: one line per request would flood test output
            pass

        def _send(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": engine.name, "object": "model"}]})
            else:
                self._send(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self):
            if self.path.rstrip("/") != "/v1/completions":
                return self._send(404, {"error": {"message": f"no route {self.path}"}})
            try:
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                prompts = request["prompt"] if isinstance(request["prompt"], list) else [request["prompt"]]
                max_tokens = int(request.get("max_tokens", 16))
                temperature = float(request.get("temperature", 1.0))
                top = int(request.get("logprobs") or 0)
                echo = bool(request.get("echo", False))
            except (KeyError, TypeError, ValueError) as err:
                return self._send(400, {"error": {"message": f"bad request: {err}"}})
            choices = []
            for index, prompt in enumerate(prompts):
                choice = engine.complete(str(prompt), max_tokens, temperature, top, echo=echo)
                if echo:
                    choice["text"] = str(prompt) + choice["text"]
                choices.append({"index": index, **choice})
            self._send(200, {"id": f"cmpl-{time.time_ns()}", "object": "text_completion", "created": int(time.time()),
                             "model": engine.name, "choices": choices})

    return Handler


def serve(model_path: str, host: str = "127.0.0.1", port: int = 0, device: str = "cpu") -> ThreadingHTTPServer:
    """Start serving in a daemon thread and return the server (``server.server_address`` has the port)."""
    server = ThreadingHTTPServer((host, port), make_handler(CompletionModel(model_path, device)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model directory or hub id")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads; 0 = this process's share of the cores (set IGRPO_CONCURRENT_JOBS=2 "
                             "when it shares the machine with a training run; see igrpo/threads.py)")
    args = parser.parse_args()
    from igrpo.threads import apply as apply_threads

    apply_threads(args.threads)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(CompletionModel(args.model, args.device)))
    print(f"serving {args.model} on http://{args.host}:{server.server_address[1]}/v1", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
