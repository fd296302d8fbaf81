"""Typed schemas: one per option of every config group. Types and comments live here; values live only
in the YAML files of ``conf/`` (every field below is ``MISSING`` until a YAML sets it).

Each option's YAML names its schema in its defaults list (``- /schema/variant/igrpo@_here_``), so a
node holds exactly the fields its option uses: ``variant=grpo`` has no draft fields, ``reward=binary``
no judge node, a real model no warm-start fields. Those fields never reach MLflow params or the
``config_hash``, and an unknown key or a value of the wrong type fails at composition time. Value
checks that types cannot express live in ``igrpo.validate``.

Code that serves several options reads an option's own field only where that option is selected
(``cfg.variant.num_drafts`` under ``variant.name == "igrpo"``), or through the helpers at the bottom.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

# --------------------------------------------------------------------------------------------- model


@dataclass
class ModelCommon:
    name: str = MISSING  # label used in run names and tags
    dtype: str = MISSING  # float32 | bfloat16 | float16; the half types need device=cuda
    cache_dir: Optional[str] = MISSING  # where built models (policy, tiny judge) are cached; None = .cache/igrpo


@dataclass
class ModelTiny(ModelCommon):
    """The embedded ~1M-parameter Llama with a character tokenizer, built and warm-started in-project."""

    hidden_size: int = MISSING  # width of the Llama blocks
    num_layers: int = MISSING  # transformer blocks
    num_heads: int = MISSING  # attention heads (no grouped-query attention)
    intermediate_size: int = MISSING  # MLP width
    max_positions: int = MISSING  # longest prompt + completion, in characters
    # warm start: a short supervised phase so the base is partially correct
    warmstart_steps: int = MISSING  # hard cap on supervised steps
    warmstart_target_accuracy: float = MISSING  # stop early once greedy dev accuracy reaches this
    warmstart_eval_every: int = MISSING  # steps between dev-accuracy checks
    warmstart_first_check: int = MISSING  # no dev checks before this step
    warmstart_batch_size: int = MISSING
    warmstart_lr: float = MISSING
    warmstart_draft_fraction: float = MISSING  # share of examples that carry a draft (correct or corrupted)
    warmstart_corrupt_fraction: float = MISSING  # share of those drafts that are corrupted
    warmstart_pool_size: int = MISSING  # distinct training problems drawn for the warm start
    warmstart_max_draft_tokens: int = MISSING  # drafts in warm-start prompts are cut to their last N characters


@dataclass
class ModelHF(ModelCommon):
    """Any Hugging Face causal LM by hub id or local directory (the paper's base models included)."""

    path: str = MISSING  # HF hub id or local directory
    chat_template: bool = MISSING  # wrap every prompt (plain, draft-conditioned, eval) in the tokenizer's template
    system_prompt: Optional[str] = MISSING  # system message when chat_template is true; None = no system turn
    prompt_template: Optional[str] = MISSING  # user message with {problem}; None = the task's own


# ---------------------------------------------------------------------------------------------- data


@dataclass
class DataSource:
    """Where a real dataset's rows come from and which columns hold what (training tasks and eval suites)."""

    path: Optional[str] = MISSING  # local .jsonl or .parquet file; wins over hub
    hub: Optional[str] = MISSING  # HF dataset id for datasets.load_dataset (needs network or a warm HF cache)
    hub_config: Optional[str] = MISSING  # dataset config name, if the dataset has several
    split: str = MISSING
    problem_field: str = MISSING  # column holding the problem text
    answer_field: Optional[str] = MISSING  # column holding the reference answer; None = from solution_field
    solution_field: Optional[str] = MISSING  # worked solution whose last \boxed{} is the answer
    answer_format: str = MISSING  # how answer_field holds the answer: plain | boxed | hash (after ####)


@dataclass
class TaskArith:
    """Seeded multi-step integer arithmetic (igrpo/tasks/arith.py); each level is also an eval suite."""

    name: str = MISSING
    data_seed: int = MISSING  # fixes the problems, independent of the run seed
    train_levels: List[str] = MISSING
    eval_suites: List[str] = MISSING  # the held-out suites under eval=toy
    train_size: int = MISSING
    eval_size: int = MISSING  # problems per eval suite
    first_digits: int = MISSING  # the chain starts from a number of up to this many digits
    step_digits: int = MISSING  # each step adds or subtracts a number of up to this many digits


@dataclass
class TaskDataset(DataSource):
    """A real math dataset (task=math, task=acereason): problems with reference answers, no eval suites."""

    name: str = MISSING
    data_seed: int = MISSING  # fixes the max_train_size subset
    prompt_template: Optional[str] = MISSING  # user message with {problem}; None = model's, else the task's own
    max_train_size: Optional[int] = MISSING  # seeded random subset of this many problems; None = all


@dataclass
class EvalSuite(DataSource):
    """One named held-out benchmark (eval=paper): its source and its k."""

    samples: Optional[int] = MISSING  # k of this suite's avg@k; None = eval.samples_per_problem
    max_problems: Optional[int] = MISSING  # keep only the first N problems (quick looks); None = all


@dataclass
class Eval:
    name: str = MISSING
    samples_per_problem: int = MISSING  # k of avg@k for every suite that does not set its own samples
    temperature: float = MISSING
    top_p: float = MISSING
    max_new_tokens: int = MISSING
    batch_size: int = MISSING  # sequences generated at once
    every_steps: int = MISSING  # also evaluate every k training steps (0 = only before and after)
    greedy: bool = MISSING  # also report greedy accuracy
    verifier: str = MISSING  # answer equivalence: math_verify | exact (text)
    verify_time_budget_s: float = MISSING  # math_verify: per-answer limit (killable worker process)
    suites: Dict[str, EvalSuite] = MISSING  # named benchmarks; empty = the task's own suites (eval=toy)


# ------------------------------------------------------------------------------------------- variant


@dataclass
class VariantGRPO:
    """Plain GRPO: rollout_budget completions per prompt, all trained on."""

    name: str = MISSING


@dataclass
class VariantIGRPO:
    """iGRPO: Stage 1 drafts (no gradient) -> selected draft -> Stage 2 refinements (trained)."""

    name: str = MISSING
    num_drafts: int = MISSING  # N
    num_refinements: int = MISSING  # G; N x rounds + G = rollout_budget unless allow_budget_mismatch
    rounds: int = MISSING  # draft rounds before the trained refinements (1 = the paper)
    allow_budget_mismatch: bool = MISSING  # permit N x rounds + G != rollout_budget (an unmatched comparison)
    selection: str = MISSING  # best | worst | random | first
    tie_break: str = MISSING  # first | shortest: which of equally rewarded drafts is taken
    on_all_zero: str = MISSING  # keep (append the best anyway) | plain (use the plain prompt)
    max_draft_tokens: int = MISSING  # drafts longer than this are cut before entering the prompt
    draft_truncation: str = MISSING  # tail (keep the end, where the answer is) | head
    template: str = MISSING  # named template (igrpo.drafts.TEMPLATES) or literal text with {draft}


@dataclass
class Algo:
    """The GRPO-family objective; every option uses every field (they differ in values)."""

    name: str = MISSING
    loss_type: str = MISSING  # TRL loss aggregation: grpo | dapo | dr_grpo | bnpo
    scale_rewards: str = MISSING  # advantage scaling: group | batch | none
    importance_sampling_level: str = MISSING  # token | sequence (GSPO)
    epsilon: float = MISSING  # lower clip
    epsilon_high: float = MISSING  # upper clip
    beta: float = MISSING  # KL coefficient to the reference policy (paper: 0)
    mask_truncated_completions: bool = MISSING  # drop completions that hit the length cap from the loss
    learning_rate: float = MISSING
    lr_scheduler_type: str = MISSING  # any transformers scheduler name
    warmup_ratio: float = MISSING
    weight_decay: float = MISSING
    max_grad_norm: float = MISSING
    num_iterations: int = MISSING  # policy updates per generation batch (mu)


# -------------------------------------------------------------------------------------------- reward


@dataclass
class JudgeCommon:
    """What every judge backend shares: the prompt, how its output becomes a score, the fallback."""

    backend: str = MISSING  # tiny | hf | http (the option of the reward/judge group)
    template: str = MISSING  # judge prompt: tiny | paper | literal text with {problem} {reference} {candidate}
    verdict: str = MISSING  # answer: P(judge restates the reference) | word: P(correct word)
    use_reference: bool = MISSING  # word mode: show the judge the reference
    correct: str = MISSING  # word mode: the verdict word for a correct candidate
    incorrect: str = MISSING  # word mode: the verdict word for a wrong candidate
    max_candidate_chars: int = MISSING  # the judge sees the candidate's last N characters
    fallback_score: float = MISSING  # score for unreadable judge output or failed requests (counted)


@dataclass
class JudgeTiny(JudgeCommon):
    """The embedded tiny judge, built in-project on first use (or a built directory in ``model``)."""

    model: Optional[str] = MISSING  # None = build the embedded judge; else a directory of a built one
    batch_size: int = MISSING  # prompts per forward pass
    hidden_size: int = MISSING
    num_layers: int = MISSING
    num_heads: int = MISSING
    intermediate_size: int = MISSING
    build_steps: int = MISSING  # cap on supervised steps
    build_batch_size: int = MISSING
    build_lr: float = MISSING
    build_target_auroc: float = MISSING  # stop once dev AUROC reaches this (checked every build_eval_every)
    build_eval_every: int = MISSING
    build_pool_size: int = MISSING  # distinct training problems for judge candidates
    build_heldout_size: int = MISSING  # held-out candidates (eval-suite problems) for the reported AUROC


@dataclass
class JudgeHF(JudgeCommon):
    """Any local or hub causal LM as the judge."""

    model: str = MISSING  # hub id or directory
    batch_size: int = MISSING  # prompts per forward pass


@dataclass
class JudgeHTTP(JudgeCommon):
    """An OpenAI-compatible completions endpoint (with logprobs) as the judge."""

    url: Optional[str] = MISSING  # base URL, e.g. http://127.0.0.1:8000/v1 (required)
    api_model: str = MISSING  # the model name sent with each request
    concurrency: int = MISSING  # requests in flight
    timeout_s: float = MISSING  # per request
    max_retries: int = MISSING  # retries on errors, timeouts, 429/5xx (exponential backoff)
    backoff_s: float = MISSING  # first retry delay
    cache_size: int = MISSING  # verdicts cached by (problem, reference, candidate)


@dataclass
class RewardBinary:
    """1 if the extracted final answer is equivalent to the reference, else 0 (+ optional format reward)."""

    name: str = MISSING
    format_weight: float = MISSING  # weight of an optional format reward (0 = none)
    verifier: str = MISSING  # math_verify (symbolic, time-limited) | exact (text)
    verify_time_budget_s: float = MISSING  # math_verify: per-call limit, enforced in a killable worker


@dataclass
class RewardJudge(RewardBinary):
    """A generative judge's score in [0, 1]; accuracy (the verifier) is still logged at weight 0."""

    judge: Any = MISSING  # one of JudgeTiny | JudgeHF | JudgeHTTP (the reward/judge group)


# ------------------------------------------------------------------------------------------- entropy


@dataclass
class EntropyNone:
    name: str = MISSING


@dataclass
class EntropyConstant:
    name: str = MISSING
    coef: float = MISSING  # loss = policy loss - coef * mean token entropy


@dataclass
class EntropyDelayed(EntropyConstant):
    start_step: Optional[int] = MISSING  # switch on at this step (None = never by step)
    threshold: Optional[float] = MISSING  # switch on once entropy falls below this (None = never)


@dataclass
class EntropyLinear(EntropyConstant):
    final_coef: float = MISSING  # value reached at decay_steps
    decay_steps: int = MISSING  # steps to go from coef to final_coef


@dataclass
class EntropyAdaptive(EntropyConstant):
    target: float = MISSING  # target mean token entropy (nats)
    delta: float = MISSING  # step size of the coefficient
    coef_min: float = MISSING
    coef_max: float = MISSING


# ---------------------------------------------------------------------------------------- generation


@dataclass
class GenerationHF:
    """Rollouts with transformers.generate."""

    name: str = MISSING
    temperature: float = MISSING  # training rollouts (drafts and refinements alike)
    top_p: float = MISSING
    max_completion_length: int = MISSING  # tokens (characters for the tiny model)


@dataclass
class GenerationVLLM(GenerationHF):
    """Rollouts through vLLM via TRL's use_vllm (CUDA only)."""

    vllm_mode: str = MISSING  # colocate (shares the training GPUs) | server (`trl vllm-serve` elsewhere)
    gpu_memory_utilization: float = MISSING  # colocate: share of each GPU's memory vLLM may take
    tensor_parallel_size: int = MISSING  # colocate: GPUs per vLLM engine
    max_model_len: Optional[int] = MISSING  # colocate: context length vLLM allocates for (prompt + completion)
    server_base_url: Optional[str] = MISSING  # server: e.g. http://10.0.0.5:8000 (else host/port below)
    server_host: str = MISSING
    server_port: int = MISSING
    enable_sleep_mode: bool = MISSING  # colocate: offload vLLM weights/cache during the optimizer step
    importance_sampling_correction: bool = MISSING  # correct for vLLM vs trainer logprob mismatch (TRL's TIS)


# ---------------------------------------------------------------------------------- tracking, train


@dataclass
class Tracking:
    uri: Optional[str] = MISSING  # explicit tracking URI; wins over MLFLOW_TRACKING_URI; None = local SQLite
    experiment: str = MISSING  # MLflow experiment name
    run_name: Optional[str] = MISSING  # None = <variant>-<algo>-<reward>-s<seed>
    rollout_log_every: int = MISSING  # training steps between rollout-table snapshots (first and last always)
    log_model: bool = MISSING  # save the trained policy as an artifact
    tags: Dict[str, str] = MISSING  # extra run tags (experiments add experiment/arm/scale/group)
    parent_run_id: Optional[str] = MISSING  # make this run a child of that run
    parent_key: Optional[str] = MISSING  # a multirun's parent run is found (or made) by this key; None = sweep dir
    parent_name: Optional[str] = MISSING  # name of a parent run made for parent_key


@dataclass
class Train:
    steps: int = MISSING  # optimizer steps
    prompts_per_step: int = MISSING  # distinct prompts per step (global over processes)
    logging_steps: int = MISSING
    # checkpoints and resume (igrpo/checkpoints.py); none of these enter the config hash
    save_every: int = MISSING  # checkpoint every k optimizer steps (0 = no checkpoints, no resume)
    save_total_limit: Optional[int] = MISSING  # checkpoints kept, >= 2; None = all
    resume: bool = MISSING  # a restarted run continues its unfinished MLflow run from its last checkpoint
    checkpoint_root: str = MISSING  # checkpoints go to <checkpoint_root>/<config_hash>-<destination>


@dataclass
class RunConfig:
    # Groups: typed by the schema each option's YAML names (see the module docstring).
    model: Any = MISSING
    task: Any = MISSING
    variant: Any = MISSING
    algo: Any = MISSING
    reward: Any = MISSING
    entropy: Any = MISSING
    generation: Any = MISSING
    eval: Any = MISSING
    tracking: Any = MISSING
    train: Train = field(default_factory=Train)
    seed: int = MISSING
    rollout_budget: int = MISSING  # completions per prompt per step: GRPO's group size, iGRPO's N x rounds + G
    device: str = MISSING  # cpu | cuda
    cpu_threads: int = MISSING  # torch threads on CPU; 0 = this process's share of the cores (igrpo.threads)
    output_dir: str = MISSING  # where checkpoints and scratch files go
    objective: Any = MISSING  # metric returned to sweepers: a name, or a list of names (multi-objective)
    quiet: bool = MISSING  # no progress bars


# group -> option -> schema. A YAML option names its schema as ``/schema/<group>/<option>@_here_``.
SCHEMAS: dict[str, dict[str, type]] = {
    "model": {"tiny": ModelTiny, "hf": ModelHF},
    "task": {"arith": TaskArith, "dataset": TaskDataset},
    "eval": {"eval": Eval},
    "variant": {"grpo": VariantGRPO, "igrpo": VariantIGRPO},
    "algo": {"algo": Algo},
    "reward": {"binary": RewardBinary, "judge": RewardJudge},
    "judge": {"tiny": JudgeTiny, "hf": JudgeHF, "http": JudgeHTTP},
    "entropy": {"none": EntropyNone, "constant": EntropyConstant, "delayed": EntropyDelayed,
                "linear": EntropyLinear, "adaptive": EntropyAdaptive},
    "generation": {"hf": GenerationHF, "vllm": GenerationVLLM},
    "tracking": {"tracking": Tracking},
}


def register_configs() -> None:
    """Register the schemas with Hydra's ConfigStore and our resolvers (idempotent)."""
    from omegaconf import OmegaConf

    cs = ConfigStore.instance()
    cs.store(name="run_schema", node=RunConfig)
    for group, options in SCHEMAS.items():
        for option, schema in options.items():
            cs.store(group=f"schema/{group}", name=option, node=schema)
    # ${igrpo.refinements:budget,drafts,rounds} = budget - drafts * rounds: num_refinements defaults to
    # what is left of the rollout budget, so a sweep over num_drafts or rounds stays budget-matched.
    if not OmegaConf.has_resolver("igrpo.refinements"):
        OmegaConf.register_new_resolver("igrpo.refinements", lambda b, n, r: int(b) - int(n) * int(r))


def to_container(cfg: Any) -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=True)


def model_path(model_cfg) -> str | None:
    """The base model's hub id or directory; None for the embedded tiny model (built in-project)."""
    return model_cfg.get("path") if "path" in model_cfg else None
