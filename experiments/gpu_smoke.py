"""The checks of ``experiments/gpu_smoke.sh`` (which installs what a bare GPU image lacks, then runs this module):

    python -m experiments.gpu_smoke OUT_DIR DEVICE DTYPE HIDDEN [WIDE_LAYERS]

1. An R1-Distill-Qwen look-alike built here (igrpo/models/synthetic.py: Qwen2, byte-level BPE, Qwen's and R1's
   special tokens, ``<think>`` tags, the R1 chat template): its tokenizer round-trips bytes and keeps every special
   token whole, and a chat prompt starts with one BOS, as the trainer builds it.
2. GRPO and iGRPO on that model under the paper preset scaled down (bf16 compute on fp32 master weights, sdpa,
   gradient checkpointing, accumulation 2 with generation once per optimizer step, the prompt cap, stop tokens from
   the tokenizer), at the paper's learning rate 1e-6: the optimizer's steps must move the weights.
3. ``run.py experiment=paper model=hf ...`` end to end on that model, its step-0 and final evaluations through the
   evaluation job (needs MLflow: ``gpu_smoke.sh fetch`` carries it).
4. The memory plan (``python -m igrpo.plan``) beside the measured peak of one GRPO step at real 7B width
   (R1-Distill-Qwen-7B's hidden size, heads, MLP and vocabulary, ``WIDE_LAYERS`` layers): within 25%. CUDA only;
   on a CPU it prints the plan's figure and counts no check.

One line per check, then ``gpu_smoke: N/M checks ok``; exit status 1 if any failed. Budget: under 8 minutes on one
H100/H200. The reward is replaced in checks 2 and 4 by one that varies within every group (a random model never
answers right, so the exact-answer reward would give no advantage and no step to check)."""

from __future__ import annotations

import importlib.util
import json
import math
import pathlib
import subprocess
import sys
import time

from igrpo.models.synthetic import ASSISTANT, BOS, EOS, SPECIAL_TOKENS, THINK_TAGS, save_r1_like

QWEN7_WIDTH = {"hidden_size": 3584, "num_heads": 28, "num_kv_heads": 4, "intermediate_size": 18944,
               "vocab_size": 152064}  # DeepSeek-R1-Distill-Qwen-7B's config.json
PLAN_TOLERANCE = 0.25
results: list[bool] = []


def check(name, ok, detail="") -> None:
    results.append(bool(ok))
    print(f"check {name}: {'ok' if ok else 'FAILED'}{' (' + str(detail) + ')' if detail != '' else ''}", flush=True)


def write_data(out: pathlib.Path) -> list[str]:
    """A MATH-format train file and one eval suite; returns the corpus the tokenizer learns from."""
    train = [{"problem": f"What is {a} + {b}?", "solution": f"{a} + {b} = {a + b}, so $\\boxed{{{a + b}}}$."}
             for a in range(2, 12) for b in range(3, 9)]
    (out / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train))
    (out / "eval.jsonl").write_text("".join(json.dumps({"problem": f"Compute {a} * 4.", "answer": str(4 * a)}) + "\n"
                                            for a in range(2, 6)))
    instruction = "Please reason step by step, and put your final answer within \\boxed{}."
    return [f"{r['problem']}\n{instruction}\n{r['solution']}" for r in train]


def check_tokenizer(model_dir: pathlib.Path) -> None:
    from transformers import AutoTokenizer

    from igrpo.tasks.prompts import chat_frame

    tok = AutoTokenizer.from_pretrained(model_dir)
    text = "Größe ∑ 3 + 4 = 7 <think>hmm</think> \\boxed{7}\n\t"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    check("byte-level BPE round-trips any text", tok.decode(ids) == text, f"{len(ids)} tokens")
    whole = {t: tok(t, add_special_tokens=False)["input_ids"] for t in SPECIAL_TOKENS + THINK_TAGS}
    check("special tokens and think tags are single tokens", all(len(v) == 1 for v in whole.values()),
          {t: v for t, v in whole.items() if len(v) != 1})
    prefix, suffix = chat_frame(tok)
    prompt_ids = tok(prefix + "What is 2 + 3?" + suffix)["input_ids"]
    check("a chat prompt starts with one BOS and opens <think>",
          prompt_ids[:2] != [tok.bos_token_id] * 2 and prompt_ids[0] == tok.bos_token_id
          and suffix == f"{ASSISTANT}<think>\n" and tok.eos_token == EOS and tok.bos_token == BOS,
          tok.convert_ids_to_tokens(prompt_ids[:3]))


def compose_paper(model_dir, out, device, dtype, variant, extra=()):
    from hydra import compose, initialize_config_dir

    suites = [f"eval.suites.aime24.path={out / 'eval.jsonl'}",
              *(f"~eval.suites.{s}" for s in ("aime25", "math500", "amc23", "gsm8k", "minerva"))]
    overrides = ["experiment=paper", "model=hf", f"model.path={model_dir}", f"model.dtype={dtype}",
                 "model.chat_template=true", "model.attn_implementation=sdpa", f"device={device}", "generation=hf",
                 "generation.max_completion_length=96", f"task.path={out / 'train.jsonl'}", *suites, "train.steps=3",
                 "train.prompts_per_step=4", "train.gradient_accumulation_steps=2", "train.max_prompt_tokens=640",
                 "reward.verifier=exact", "algo.learning_rate=1e-6", f"variant={variant}",
                 f"output_dir={out / 'runs'}", *extra]
    if variant == "igrpo":
        overrides += ["variant.max_draft_tokens=256"]  # the preset's 640 > completion cap: any draft fits
    with initialize_config_dir(config_dir=str(pathlib.Path("conf").resolve()), version_base="1.3"):
        return compose("config", overrides=overrides)


def varied_reward(prompts, completions, **_):
    return [sum(c.isdigit() for c in text) / max(len(text), 1) + 0.01 * len(text) for text in completions]


def train_variant(model_dir, out, device, dtype, variant) -> None:
    import torch

    from igrpo.config.validate import validate
    from igrpo.job.factory import build_training
    from igrpo.tasks import load_task

    on_gpu = device == "cuda"
    t0 = time.perf_counter()
    cfg = compose_paper(model_dir, out, device, dtype, variant)
    validate(cfg)
    task = load_task(cfg.task, cfg.seed, model_cfg=cfg.model, eval_cfg=cfg.eval)
    # the runner's build: the training arguments, then the policy (fp32 master weights on one GPU), then the trainer
    trainer, _, model, tokenizer = build_training(cfg, str(model_dir), task, out / "runs" / variant)
    a = trainer.args
    check(f"{variant} fp32 master weights, {dtype} compute", next(model.parameters()).dtype == torch.float32
          and a.bf16 == (dtype == "bfloat16"), (next(model.parameters()).dtype, a.bf16))
    check(f"{variant} Qwen2 with sdpa attention", model.config.model_type == "qwen2"
          and model.config._attn_implementation == "sdpa", (model.config.model_type, model.config._attn_implementation))
    check(f"{variant} stop tokens passed to generation",
          a.generation_kwargs.get("eos_token_id") == [tokenizer.eos_token_id], a.generation_kwargs)
    check(f"{variant} accumulation 2, generation once per optimizer step",
          (a.gradient_accumulation_steps, a.steps_per_generation) == (2, 2),
          (a.gradient_accumulation_steps, a.steps_per_generation))
    check(f"{variant} gradient checkpointing", a.gradient_checkpointing)
    # the seam's public hook: TRL's rollouts and iGRPO's drafts both go through it
    calls, generate = [], trainer.generate_single_turn

    def counted(prompt_ids, *args, **kwargs):
        calls.append(trainer.state.global_step)
        return generate(prompt_ids, *args, **kwargs)

    trainer.generate_single_turn = counted
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    trainer.train()
    after = model.state_dict()
    moved = sum((before[k] != after[k]).sum().item() for k in before) / sum(v.numel() for v in before.values())
    check(f"{variant} steps at lr 1e-6 move the weights", moved > 0.5, f"{moved:.1%} of entries moved")
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
        check("igrpo Stage-2 prompts within train.max_prompt_tokens",
              caps and max(caps) <= cfg.train.max_prompt_tokens, caps)
    memory = f", peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB" if on_gpu else ""
    print(f"{variant}: {time.perf_counter() - t0:.1f} s{memory}", flush=True)
    del trainer, model
    if on_gpu:
        torch.cuda.empty_cache()


def run_end_to_end(model_dir, out, device, dtype) -> None:
    """``run.py experiment=paper`` as a user types it, 2 iGRPO steps, evaluations through the job, MLflow in SQLite."""
    if importlib.util.find_spec("mlflow") is None:  # run.py logs to MLflow; this process never imports it
        check("run.py experiment=paper end to end", False, "mlflow is not installed: bash experiments/gpu_smoke.sh fetch")
        return
    store = out / "e2e"
    args = ["experiment=paper", "model=hf", f"model.path={model_dir}", "model.chat_template=true",
            f"model.dtype={dtype}", "model.attn_implementation=sdpa", f"device={device}",
            "generation=hf", "generation.max_completion_length=48", f"task.path={out / 'train.jsonl'}",
            f"eval.suites.aime24.path={out / 'eval.jsonl'}", "eval.suites.aime24.samples=4",
            *(f"~eval.suites.{s}" for s in ("aime25", "math500", "amc23", "gsm8k", "minerva")),
            "eval.max_new_tokens=48", "eval.mode=job", f"eval.store_root={store / 'eval_store'}", "eval.refine=false",
            "reward.verifier=exact", "eval.verifier=exact", "train.steps=2", "train.prompts_per_step=2",
            "train.gradient_accumulation_steps=2", "train.max_prompt_tokens=512", "train.save_every=0",
            "variant.max_draft_tokens=128", f"tracking.uri=sqlite:///{store / 'mlflow.db'}", "quiet=true",
            f"hydra.run.dir={store / 'hydra'}", f"train.checkpoint_root={store / 'checkpoints'}"]
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "run.py", *args], capture_output=True, text=True, timeout=420)
    jobs = [line for line in done.stdout.splitlines() if line.startswith("eval job:")]
    detail = f"{time.perf_counter() - t0:.0f} s; " + ("; ".join(jobs) if done.returncode == 0
                                                       else done.stderr.strip().splitlines()[-1:])
    check("run.py experiment=paper end to end, step 0 and final evaluations through the job",
          done.returncode == 0 and len(jobs) == 2 and "eval/aime24/avg_at_4" in done.stdout, detail)


def plan_against_peak(out, device, layers: int) -> None:
    """One GRPO step at 7B width: the plan's per-GPU peak (less its runtime allowance, which allocator statistics do
    not see) beside torch's peak allocation."""
    import torch

    from igrpo.config.validate import validate
    from igrpo.job.factory import build_training
    from igrpo.plan import memory as mem
    from igrpo.plan.budget import make_plan
    from igrpo.plan.setup import plan_inputs
    from igrpo.tasks import load_task

    wide = out / "qwen2-7b-width"
    corpus = write_data(out)
    # a CPU plans from config.json alone: 1.6B parameters in fp32 are no rehearsal
    save_r1_like(wide, corpus, num_layers=layers, max_positions=4096, weights=device == "cuda", **QWEN7_WIDTH)
    prompt_cap = 32  # the longest chat prompt of the train file is 30 tokens; the plan sizes sequences by the caps
    cfg = compose_paper(wide, out, device, "bfloat16" if device == "cuda" else "float32", "grpo",
                        extra=["train.steps=1", f"train.max_prompt_tokens={prompt_cap}",
                               "generation.max_completion_length=256"])
    validate(cfg, machine=device == "cuda")  # the plan's own check: weights on disk are not needed to plan
    gpu_memory = float(torch.cuda.get_device_properties(0).total_memory) if device == "cuda" else 80 * mem.GIB
    plan = make_plan(plan_inputs(cfg, 1, gpu_memory, mem.NO_SHARDING))
    predicted = max(plan.totals[p] for p in ("generate", "train")) - mem.RUNTIME_BYTES
    if device != "cuda":
        print(f"plan at 7B width, {layers} layers: {predicted / 2**30:.2f} GiB predicted (measured on CUDA only)")
        return
    task = load_task(cfg.task, cfg.seed, model_cfg=cfg.model, eval_cfg=cfg.eval)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    trainer, _, model, _ = build_training(cfg, str(wide), task, out / "runs" / "wide")
    trainer.train()
    measured = torch.cuda.max_memory_allocated()
    ratio = predicted / measured
    check(f"memory plan within {PLAN_TOLERANCE:.0%} of the measured peak at 7B width, {layers} layers",
          abs(ratio - 1) <= PLAN_TOLERANCE, f"plan {predicted / 2**30:.2f} GiB, measured {measured / 2**30:.2f} GiB, "
          f"ratio {ratio:.2f}")
    del trainer, model
    torch.cuda.empty_cache()


def main(argv: list[str]) -> int:
    start = time.perf_counter()
    out, device, dtype, hidden = pathlib.Path(argv[0]).resolve(), argv[1], argv[2], int(argv[3])
    layers = int(argv[4]) if len(argv) > 4 else 2
    out.mkdir(parents=True, exist_ok=True)

    import importlib.metadata as md

    import torch

    versions = {p: md.version(p) for p in ("torch", "transformers", "trl", "accelerate", "datasets", "hydra-core")}
    print("versions:", " ".join(f"{k}={v}" for k, v in versions.items()))
    on_gpu = device == "cuda"
    check("device", torch.cuda.is_available() if on_gpu else True,
          torch.cuda.get_device_name(0) if on_gpu and torch.cuda.is_available() else device)
    if on_gpu and not torch.cuda.is_available():
        print("gpu_smoke: no CUDA device visible")
        return 1

    corpus = write_data(out)
    model_dir = out / "r1-like-qwen2"
    save_r1_like(model_dir, corpus, hidden_size=hidden, num_layers=4, num_heads=8, num_kv_heads=2,
                 intermediate_size=3 * hidden, max_positions=2048)
    check_tokenizer(model_dir)

    from igrpo.config import register_configs

    register_configs()
    import igrpo.job.factory as factory

    real_rewards = factory.build_reward_funcs
    factory.build_reward_funcs = lambda reward, judge=None: ([varied_reward], [1.0])
    for variant in ("grpo", "igrpo"):
        train_variant(model_dir, out, device, dtype, variant)
    plan_against_peak(out, device, layers)
    factory.build_reward_funcs = real_rewards
    run_end_to_end(model_dir, out, device, dtype)

    elapsed = time.perf_counter() - start
    check("under 8 minutes", elapsed < 480, f"{elapsed:.0f} s")
    print(f"gpu_smoke: {sum(results)}/{len(results)} checks ok")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
