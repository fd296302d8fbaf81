"""Typed schemas for every config group. Hydra merges the YAML files in ``conf/`` onto these
dataclasses, so an unknown key or a value of the wrong type fails at composition time; value
checks that types cannot express live in ``igrpo.validate``.

The YAML files are the only place defaults live for users; the defaults here only make the schemas
complete and mirror the embedded default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class ModelConfig:
    name: str = "tiny"  # label used in run names and tags
    path: str | None = None  # HF hub id or local directory; None = build the embedded tiny model
    # --- prompting (real models; see igrpo/tasks/prompts.py) ---
    chat_template: bool = False  # wrap every prompt (plain, draft-conditioned, eval) in the tokenizer's chat template
    system_prompt: str | None = None  # system message when chat_template is true; None = no system turn
    prompt_template: str | None = None  # user message with {problem}; None = the task's own (task.prompt_template wins)
    # --- embedded tiny model (used when path is None) ---
    hidden_size: int = 128  # width of the Llama blocks
    num_layers: int = 4  # transformer blocks
    num_heads: int = 4  # attention heads (no grouped-query attention)
    intermediate_size: int = 384  # MLP width
    max_positions: int = 256  # longest prompt + completion, in characters
    # warm start: a short supervised phase so the base is partially correct
    warmstart_steps: int = 1000  # hard cap on supervised steps
    warmstart_target_accuracy: float = 0.30  # stop early once greedy dev accuracy reaches this
    warmstart_eval_every: int = 25  # steps between dev-accuracy checks
    warmstart_first_check: int = 300  # no dev checks before this step (the base is ~0% until then)
    warmstart_batch_size: int = 64
    warmstart_lr: float = 3e-3
    warmstart_draft_fraction: float = 0.5  # share of examples that carry a draft (correct or corrupted)
    warmstart_corrupt_fraction: float = 0.8  # share of those drafts that are corrupted
    warmstart_pool_size: int = 20000  # distinct training problems drawn for the warm start
    warmstart_max_draft_tokens: int = 16  # drafts in warm-start prompts are cut to their last N characters
    cache_dir: str | None = None  # where built models are cached; None = <project>/.cache/igrpo
    dtype: str = "float32"  # float32 | bfloat16 | float16; the half types need device=cuda


@dataclass
class TaskConfig:
    name: str = "arith"  # arith (embedded) | math | acereason (real datasets, igrpo/tasks/math_data.py)
    data_seed: int = 0  # fixes the problems (and a real task's subset); independent of the run seed
    prompt_template: str | None = None  # user message with {problem}; None = model.prompt_template, else the task's own
    # --- embedded arithmetic (task=arith) ---
    train_levels: list[str] = field(default_factory=lambda: ["easy", "hard"])
    eval_suites: list[str] = field(default_factory=lambda: ["easy", "hard"])  # also its eval suites under eval=toy
    train_size: int = 2000
    eval_size: int = 100  # problems per eval suite
    first_digits: int = 2  # the chain starts from a number of up to this many digits
    step_digits: int = 1  # each step adds or subtracts a number of up to this many digits
    # --- real datasets (task=math, task=acereason): a local file, else the HF hub ---
    path: str | None = None  # local .jsonl or .parquet file; wins over hub
    hub: str | None = None  # HF dataset id for datasets.load_dataset (needs network or a warm HF cache)
    hub_config: str | None = None  # dataset config name, if the dataset has several
    split: str = "train"
    problem_field: str = "problem"  # column holding the problem text
    answer_field: str | None = "answer"  # column holding the reference answer; None = take it from solution_field
    solution_field: str | None = None  # worked solution whose last \boxed{} is the answer when answer_field is absent
    answer_format: str = "plain"  # how answer_field holds the answer: plain | boxed (last \boxed{}) | hash (after ####)
    max_train_size: int | None = None  # seeded random subset (data_seed) of this many problems; None = all


@dataclass
class VariantConfig:
    name: str = "igrpo"  # grpo | igrpo
    # iGRPO only: Stage 1 drafts and Stage 2 refinements per prompt (N + G = rollout_budget)
    num_drafts: int = 4
    num_refinements: int = 4
    rounds: int = 1  # draft rounds before the trained refinements: 1 = the paper; 2 = draft -> refine -> refine
    allow_budget_mismatch: bool = False  # permit N + G != rollout_budget (an unmatched comparison)
    selection: str = "best"  # best | worst | random | first
    tie_break: str = "first"  # first | shortest: which of equally rewarded drafts is taken
    on_all_zero: str = "keep"  # keep (append the best anyway) | plain (use the plain prompt)
    max_draft_tokens: int = 16  # drafts longer than this are cut before entering the prompt
    draft_truncation: str = "tail"  # tail (keep the end, where the answer is) | head
    template: str = "tiny"  # named template (igrpo.drafts.TEMPLATES) or literal text with {draft}


@dataclass
class AlgoConfig:
    name: str = "grpo"
    loss_type: str = "grpo"  # TRL loss aggregation: grpo | dapo | dr_grpo | bnpo
    scale_rewards: str = "group"  # advantage scaling: group | batch | none
    importance_sampling_level: str = "token"  # token | sequence (GSPO)
    epsilon: float = 0.2  # lower clip
    epsilon_high: float = 0.2  # upper clip
    beta: float = 0.0  # KL coefficient to the reference policy (paper: 0)
    mask_truncated_completions: bool = False  # drop completions that hit the length cap from the loss
    learning_rate: float = 5e-5
    lr_scheduler_type: str = "constant"  # any transformers scheduler name
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    num_iterations: int = 1  # policy updates per generation batch (mu)


@dataclass
class JudgeConfig:
    backend: str = "tiny"  # tiny (embedded, built in-project) | hf (any local/hub causal LM) | http (OpenAI API)
    model: str | None = None  # hf: hub id or directory; tiny: null = build the embedded judge (or a built dir)
    url: str | None = None  # http: base URL of an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1
    api_model: str = "judge"  # http: the model name sent with each request
    template: str = "tiny"  # judge prompt: tiny | paper | literal text with {problem} {reference} {candidate}
    verdict: str = "answer"  # answer: score = P(judge restates the reference) | word: P(correct word) (see protocol)
    use_reference: bool = True  # word mode: show the judge the reference (answer mode always scores against it)
    correct: str = "correct"  # word mode: the verdict word for a correct candidate (its probability is the score)
    incorrect: str = "incorrect"  # word mode: the verdict word for a wrong candidate
    max_candidate_chars: int = 48  # the judge sees the candidate's last N characters (where its answer is)
    fallback_score: float = 0.0  # score for unreadable judge output or failed requests (counted)
    batch_size: int = 64  # hf/tiny: prompts per forward pass
    concurrency: int = 8  # http: requests in flight
    timeout_s: float = 10.0  # http: per request
    max_retries: int = 3  # http: retries on errors, timeouts, 429/5xx (exponential backoff)
    backoff_s: float = 0.5  # http: first retry delay
    cache_size: int = 100_000  # http: verdicts cached by (problem, reference, candidate)
    # --- embedded tiny judge build (backend=tiny, model=null) ---
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 384
    build_steps: int = 1500  # cap on supervised steps
    build_batch_size: int = 64
    build_lr: float = 3e-3
    build_target_auroc: float = 0.98  # stop once dev AUROC reaches this (checked every build_eval_every)
    build_eval_every: int = 50
    build_pool_size: int = 5000  # distinct training problems for judge candidates
    build_heldout_size: int = 800  # held-out candidates (eval-suite problems) for the reported AUROC


@dataclass
class RewardConfig:
    name: str = "binary"  # binary | judge
    format_weight: float = 0.0  # weight of an optional format reward (0 = none)
    verifier: str = "math_verify"  # answer equivalence: math_verify (symbolic, time-limited) | exact (text)
    verify_time_budget_s: float = 2.0  # math_verify: per-call limit, enforced in a killable worker process
    judge: JudgeConfig = field(default_factory=JudgeConfig)  # reward=judge only


@dataclass
class EntropyConfig:
    name: str = "none"  # entropy-bonus schedule: none | constant | delayed | linear | adaptive
    coef: float = 0.0  # coefficient (constant, delayed), starting value (linear, adaptive)
    start_step: int | None = None  # delayed: switch on at this step (null = never by step)
    threshold: float | None = None  # delayed: switch on once entropy falls below this (null = never)
    final_coef: float = 0.0  # linear: value reached at decay_steps
    decay_steps: int = 100  # linear: steps to go from coef to final_coef
    target: float = 0.1  # adaptive: target mean token entropy (nats)
    delta: float = 0.001  # adaptive: step size of the coefficient
    coef_min: float = 0.0  # adaptive: lower bound
    coef_max: float = 0.05  # adaptive: upper bound


@dataclass
class GenerationConfig:
    name: str = "hf"  # rollout backend: hf (transformers.generate) | vllm (TRL's use_vllm; CUDA only)
    temperature: float = 1.0  # training rollouts (drafts and refinements alike)
    top_p: float = 1.0
    max_completion_length: int = 64  # tokens (characters for the tiny model)
    # --- vLLM (generation=vllm): drafts and refinements both go through TRL's vLLM path ---
    vllm_mode: str = "colocate"  # colocate (shares the training GPUs) | server (`trl vllm-serve` elsewhere)
    gpu_memory_utilization: float = 0.3  # colocate: share of each GPU's memory vLLM may take
    tensor_parallel_size: int = 1  # colocate: GPUs per vLLM engine
    max_model_len: int | None = None  # colocate: context length vLLM allocates for (prompt + completion)
    server_base_url: str | None = None  # server: e.g. http://10.0.0.5:8000 (else host/port below)
    server_host: str = "0.0.0.0"
    server_port: int = 8000
    enable_sleep_mode: bool = False  # colocate: offload vLLM weights/cache during the optimizer step
    importance_sampling_correction: bool = True  # correct for vLLM vs trainer logprob mismatch (TRL's TIS)


@dataclass
class EvalSuiteConfig:
    """One named held-out benchmark (eval=paper): where its problems come from and its k."""

    hub: str | None = None  # HF dataset id for datasets.load_dataset, used when path is None
    hub_config: str | None = None  # dataset config name (gsm8k: main)
    split: str = "test"
    path: str | None = None  # local .jsonl or .parquet file; wins over hub
    problem_field: str = "problem"  # column holding the problem text
    answer_field: str | None = "answer"  # column holding the reference answer; None = take it from solution_field
    solution_field: str | None = None  # worked solution whose last \boxed{} is the answer when answer_field is absent
    answer_format: str = "plain"  # how answer_field holds the answer: plain | boxed | hash (gsm8k: after ####)
    samples: int | None = None  # k of this suite's avg@k; None = eval.samples_per_problem
    max_problems: int | None = None  # keep only the first N problems (quick looks); None = all


@dataclass
class EvalConfig:
    name: str = "toy"
    samples_per_problem: int = 8  # k of avg@k for every suite that does not set its own samples
    temperature: float = 0.6  # the paper's eval protocol
    top_p: float = 0.95
    max_new_tokens: int = 64
    batch_size: int = 256  # sequences generated at once
    every_steps: int = 0  # also evaluate every k training steps (0 = only before and after)
    greedy: bool = True  # also report greedy accuracy
    verifier: str = "math_verify"  # answer equivalence: math_verify (igrpo.verify.MathVerifier) | exact (text)
    verify_time_budget_s: float = 2.0  # math_verify: per-answer limit (killable worker process)
    # Named benchmarks, each with its own source and k (eval=paper). Empty = the task's own suites (eval=toy).
    suites: dict[str, EvalSuiteConfig] = field(default_factory=dict)


@dataclass
class TrackingConfig:
    uri: str | None = None  # explicit tracking URI; wins over MLFLOW_TRACKING_URI; None = local SQLite
    experiment: str = "igrpo"  # MLflow experiment name
    run_name: str | None = None  # None = <variant>-<algo>-<reward>-s<seed>
    rollout_log_every: int = 10  # training steps between rollout-table snapshots (first and last always)
    log_model: bool = False  # save the trained policy as an artifact
    tags: dict[str, str] = field(default_factory=dict)  # extra run tags (experiments add experiment/arm/scale)
    parent_run_id: str | None = None  # make this run a child of that run (a multirun's sweep dir sets it too)


@dataclass
class TrainConfig:
    steps: int = 150  # optimizer steps
    prompts_per_step: int = 8  # distinct prompts per step
    logging_steps: int = 1
    # --- checkpoints and resume (igrpo/checkpoints.py); none of these enter the config hash ---
    save_every: int = 0  # checkpoint every k optimizer steps (0 = no checkpoints, no resume)
    save_total_limit: int | None = 2  # checkpoints kept, >= 2 (the newest is incomplete while written); null = all
    resume: bool = True  # a restarted run continues its unfinished MLflow run from its last complete checkpoint
    checkpoint_root: str = "checkpoints"  # checkpoints go to <checkpoint_root>/<config_hash>-<destination>


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    variant: VariantConfig = field(default_factory=VariantConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    entropy: EntropyConfig = field(default_factory=EntropyConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    seed: int = 0
    rollout_budget: int = 8  # completions per prompt per step: GRPO's group size, iGRPO's N + G
    device: str = "cpu"  # cpu | cuda
    output_dir: str = MISSING  # where checkpoints and scratch files go (set by conf/config.yaml)
    objective: Any = MISSING  # metric returned to sweepers: a name, or a list of names (multi-objective)
    quiet: bool = False  # no progress bars


def register_configs() -> None:
    """Register the schemas with Hydra's ConfigStore and our resolvers (idempotent)."""
    from omegaconf import OmegaConf

    cs = ConfigStore.instance()
    cs.store(name="run_schema", node=RunConfig)
    # ${igrpo.refinements:budget,drafts,rounds} = budget - drafts * rounds: num_refinements defaults to
    # what is left of the rollout budget, so a sweep over num_drafts or rounds stays budget-matched.
    if not OmegaConf.has_resolver("igrpo.refinements"):
        OmegaConf.register_new_resolver("igrpo.refinements", lambda b, n, r: int(b) - int(n) * int(r))


def to_container(cfg: Any) -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=True)
