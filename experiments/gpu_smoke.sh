#!/usr/bin/env bash
# GPU smoke test of the paper-scale training path: a few steps of GRPO and of iGRPO on one GPU with a small Llama
# built on the spot, under the paper preset (experiment=paper) scaled down: bf16, sdpa attention, gradient
# checkpointing, gradient accumulation 2 (generation once per optimizer step), the prompt cap, fp32 master weights
# under bf16 autocast (the optimizer's steps must move them). One line per check,
# then `gpu_smoke: N/M checks ok`; exit 1 if any failed. Budget: well under 8 minutes on one H100/H200.
#
#   bash experiments/gpu_smoke.sh fetch    # on a machine with PyPI: the wheels a bare GPU image lacks, into .whl/
#   bash experiments/gpu_smoke.sh          # on the GPU machine (installs .whl/ into /tmp/site when trl is missing)
#   bash experiments/gpu_smoke.sh --cpu-rehearsal    # the same checks on a CPU machine (DEVICE=cpu DTYPE=float32 HIDDEN=64;
#                                                    # tests/test_gpu_smoke_rehearsal.py runs it)
#
# The GPU image (DESIGN.md "The GPU machine") has torch, transformers 5.17, accelerate, pandas, pyarrow, sympy but no
# trl, datasets, hydra-core, omegaconf, mlflow, math-verify or vllm, and no network. The check drives the project's
# own pieces in-process (Hydra composition, igrpo.config.validate, load_task, build_training, TRL's trainer), so
# it needs neither MLflow nor math-verify (the reward is replaced by one that varies within a group, see below). vLLM cannot travel (336 MB):
# generation=hf here; the vLLM path stays unchecked by this script.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
WHEELS=.whl

if [ "${1:-}" = "--cpu-rehearsal" ]; then
  export DEVICE=${DEVICE:-cpu} DTYPE=${DTYPE:-float32} HIDDEN=${HIDDEN:-64}
  shift
fi

if [ "${1:-}" = "fetch" ]; then
  # Pure-Python wheels for the GPU image's Python 3.12, versions as the project pins or uses them.
  grep -qx "/$WHEELS/" .git/info/exclude 2>/dev/null || echo "/$WHEELS/" >> .git/info/exclude
  mkdir -p "$WHEELS"
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$WHEELS" \
    trl==1.16.0 transformers==5.24.0 datasets==5.2.0 hydra-core==1.3.8 omegaconf==2.3.1 dill==0.4.1 \
    multiprocess==0.70.19 || exit 1
  # antlr4-python3-runtime 4.9.3 (hydra's pin) is published as a source archive only: build its wheel here
  "$PY" -m pip wheel -q --no-deps -w "$WHEELS" antlr4-python3-runtime==4.9.3 || exit 1
  ls -la "$WHEELS"; du -sh "$WHEELS"
  echo "carry $WHEELS with the working tree (device tool: carry=[\"$WHEELS\"]), then run: bash experiments/gpu_smoke.sh"
  exit 0
fi

if ! "$PY" -c "import trl, hydra, omegaconf, datasets" 2>/dev/null; then
  [ -d "$WHEELS" ] || { echo "check wheels: FAILED (trl/hydra/datasets missing and no $WHEELS/; run: bash experiments/gpu_smoke.sh fetch)"; exit 1; }
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl \
    || { echo "check wheels: FAILED (pip install from $WHEELS/)"; exit 1; }
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
  echo "check wheels: ok (installed $(ls "$WHEELS" | wc -l) wheels into /tmp/site)"
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "nvidia-smi: none"
exec "$PY" - "${OUT_DIR:-gpu_smoke}" "${DEVICE:-cuda}" "${DTYPE:-bfloat16}" "${HIDDEN:-512}" <<'PY'
import json, math, pathlib, sys, time
start = time.perf_counter()
out, device, dtype, hidden = pathlib.Path(sys.argv[1]).resolve(), sys.argv[2], sys.argv[3], int(sys.argv[4])
out.mkdir(parents=True, exist_ok=True)
results = []

def check(name, ok, detail=""):
    results.append(bool(ok))
    print(f"check {name}: {'ok' if ok else 'FAILED'}{' (' + str(detail) + ')' if detail != '' else ''}", flush=True)

import importlib.metadata as md
import torch
versions = {p: md.version(p) for p in ("torch", "transformers", "trl", "accelerate", "datasets", "hydra-core")}
print("versions:", " ".join(f"{k}={v}" for k, v in versions.items()))
on_gpu = device == "cuda"
check("device", torch.cuda.is_available() if on_gpu else True,
      torch.cuda.get_device_name(0) if on_gpu and torch.cuda.is_available() else device)
if on_gpu and not torch.cuda.is_available():
    print("gpu_smoke: no CUDA device visible"); sys.exit(1)

# A MATH-format train file and one eval suite (not run here; the task holds its problems out of training)
train = [{"problem": f"What is {a} + {b}?", "solution": f"{a} + {b} = {a + b}, so $\\boxed{{{a + b}}}$."}
         for a in range(2, 12) for b in range(3, 9)]
(out / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train))
(out / "eval.jsonl").write_text(json.dumps({"problem": "Compute 3 * 4.", "answer": "12"}) + "\n")

# A small Llama built here (character tokenizer; hidden 512: ~13M parameters): no hub access needed
from igrpo.models.tiny import build_char_tokenizer, build_tiny_model
model_dir = out / "small-llama"
tok = build_char_tokenizer()
build_tiny_model(tok, hidden_size=hidden, num_layers=4, num_heads=8, intermediate_size=3 * hidden, max_positions=2048,
                 seed=0).save_pretrained(model_dir)
tok.save_pretrained(model_dir)

from hydra import compose, initialize_config_dir
from igrpo.config import register_configs
from igrpo.tasks import load_task
from igrpo.job.factory import build_training
from igrpo.config.validate import validate

register_configs()
suites = [f"eval.suites.aime24.path={out / 'eval.jsonl'}", *(f"~eval.suites.{s}" for s in ("aime25", "math500", "amc23", "gsm8k", "minerva"))]

def config(variant):
    overrides = ["experiment=paper", "model=hf", f"model.path={model_dir}", f"model.dtype={dtype}", "model.chat_template=false",
                 "model.attn_implementation=sdpa", f"device={device}", "generation=hf", "generation.max_completion_length=96",
                 f"task.path={out / 'train.jsonl'}", *suites, "train.steps=3", "train.prompts_per_step=4",
                 "train.gradient_accumulation_steps=2", "train.max_prompt_tokens=640", "reward.verifier=exact",
                 "algo.learning_rate=1e-5", f"variant={variant}", f"output_dir={out / 'runs'}"]
    if variant == "igrpo":
        overrides += ["variant.max_draft_tokens=256"]  # the preset's 640 > completion cap: any draft fits
    with initialize_config_dir(config_dir=str(pathlib.Path("conf").resolve()), version_base="1.3"):
        return compose("config", overrides=overrides)

# A model built on the spot never answers right, so the exact-answer reward would be 0 everywhere: no advantage, no
# gradient, no step to check. The reward here is a completion's share of digits plus a length term, which varies within
# every group.
import igrpo.job.factory as factory

def varied_reward(prompts, completions, **_):
    return [sum(c.isdigit() for c in text) / max(len(text), 1) + 0.01 * len(text) for text in completions]

factory.build_reward_funcs = lambda reward, judge=None: ([varied_reward], [1.0])

for variant in ("grpo", "igrpo"):
    t0 = time.perf_counter()
    cfg = config(variant)
    validate(cfg)
    task = load_task(cfg.task, cfg.seed, model_cfg=cfg.model, eval_cfg=cfg.eval)
    # the runner's build: the training arguments, then the policy (fp32 master weights on one GPU), then the trainer
    trainer, _, model, tokenizer = build_training(cfg, str(model_dir), task, out / "runs" / variant)
    a = trainer.args
    check(f"{variant} fp32 master weights, {dtype} compute", next(model.parameters()).dtype == torch.float32
          and a.bf16 == (dtype == "bfloat16"), (next(model.parameters()).dtype, a.bf16))
    check(f"{variant} attention sdpa", model.config._attn_implementation == "sdpa", model.config._attn_implementation)
    check(f"{variant} stop tokens passed to generation", a.generation_kwargs.get("eos_token_id") == [tokenizer.eos_token_id],
          a.generation_kwargs)
    check(f"{variant} accumulation 2, generation once per optimizer step",
          (a.gradient_accumulation_steps, a.steps_per_generation) == (2, 2), (a.gradient_accumulation_steps, a.steps_per_generation))
    check(f"{variant} gradient checkpointing", a.gradient_checkpointing)
    # the seam's public hook: TRL's rollouts and iGRPO's drafts both go through it (TRL's private name only sees the former)
    calls, generate = [], trainer.generate_single_turn

    def counted(prompt_ids, *args, **kwargs):
        calls.append(trainer.state.global_step)
        return generate(prompt_ids, *args, **kwargs)

    trainer.generate_single_turn = counted
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    trainer.train()
    after = model.state_dict()
    moved = sum((before[k] != after[k]).sum().item() for k in before) / sum(v.numel() for v in before.values())
    check(f"{variant} the optimizer steps move the weights", moved > 0.5, f"{moved:.1%} of entries moved")
    del before, after
    logs = [h for h in trainer.state.log_history if "loss" in h]
    check(f"{variant} {cfg.train.steps} optimizer steps, finite loss",
          trainer.state.global_step == cfg.train.steps and len(logs) == cfg.train.steps
          and all(math.isfinite(h["loss"]) for h in logs), [round(h["loss"], 4) for h in logs])
    check(f"{variant} gradient checkpointing active", getattr(model, "is_gradient_checkpointing", False))
    per_step = 2 if variant == "igrpo" else 1  # iGRPO: drafts, then refinements; GRPO: the group
    check(f"{variant} generate calls per optimizer step = {per_step}",
          calls == [s for s in range(cfg.train.steps) for _ in range(per_step)], calls)
    if variant == "igrpo":
        caps = [h["draft/prompt_tokens_max"] for h in logs if "draft/prompt_tokens_max" in h]
        check("igrpo Stage-2 prompts within train.max_prompt_tokens", caps and max(caps) <= cfg.train.max_prompt_tokens, caps)
    memory = f", peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB" if on_gpu else ""
    print(f"{variant}: {time.perf_counter() - t0:.1f} s{memory}", flush=True)
    del trainer, model
    if on_gpu:
        torch.cuda.empty_cache()

elapsed = time.perf_counter() - start
check("under 8 minutes", elapsed < 480, f"{elapsed:.0f} s")
print(f"gpu_smoke: {sum(results)}/{len(results)} checks ok")
sys.exit(0 if all(results) else 1)
PY
