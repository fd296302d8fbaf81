"""The one seam to TRL's internals. Every private member of TRL's ``GRPOTrainer`` (and of transformers' ``Trainer``)
that this project uses is reached here and nowhere else, and is listed in ``PRIVATE_METHODS`` / ``PRIVATE_ATTRIBUTES``.

Our trainers subclass ``SeamTrainer`` and override its public hooks (``fill_batch``, ``generate_and_score``,
``calculate_rewards``, ``policy_loss``, ``token_logps_and_entropies``, ``generate_single_turn``), calling ``super()``
to run TRL's own step; the private names TRL calls are overridden once, below, and forward to those hooks.
TRL's rollout step is two hooks: ``fill_batch`` (the whole training batch; dynamic sampling runs several rounds of
``generate_and_score`` in it) and ``generate_and_score`` (one round: a variant's whole rollout of its prompts).

TRL renames and re-signs private methods between releases, which is why ``trl`` is pinned to one exact version
(pyproject.toml). ``check_trl_seam`` compares what is listed here with the installed TRL and fails with one line
naming the first member that is missing or whose parameters changed; a trainer is never built past such a mismatch
(``igrpo.job.factory``), and ``tests/test_trl_seam.py`` runs it in the suite.
"""

from __future__ import annotations

import inspect

from trl import GRPOTrainer

from igrpo.errors import ConfigError

PINNED_TRL = "1.16.0"

# method -> the leading parameters (after self) it must accept, as TRL 1.16.0 names them
PRIVATE_METHODS: dict[str, tuple[str, ...]] = {
    "_generate_and_score_completions": ("inputs",),  # Stage 1 runs in front of it (iGRPO, the baselines)
    "_calculate_rewards": ("inputs", "prompts", "completions", "completion_ids_list"),
    "_compute_loss": ("model", "inputs"),  # Critique-GRPO's shaped loss of refinement rows
    "_get_per_token_logps_and_entropies": ("model", "input_ids", "attention_mask", "logits_to_keep"),
    "_generate_single_turn": ("prompt_ids", "images", "multimodal_fields", "num_generations"),  # drafts
    "_tokenize_prompts": ("prompts",),
    "_load_from_checkpoint": ("resume_from_checkpoint",),  # transformers.Trainer: weights of a checkpoint
}
# instance attributes GRPOTrainer.__init__ sets and we read or set
PRIVATE_ATTRIBUTES: tuple[str, ...] = (
    "_metrics",  # per-step metric lists TRL averages and logs: ours are appended beside its own
    "_last_world_entropy",  # entropy=adaptive: the entropy TRL's controller compares with its target
    "_entropy_bonus_enabled",  # TRL decides at init whether the entropy term exists; our schedules switch it on
    "_tokenizer",  # the text tokenizer inside the processing class (its special token ids)
)


class TRLSeamError(ConfigError):
    """The installed TRL lacks (or re-signed) a private member this project relies on."""


def check_trl_seam(trainer_class: type = GRPOTrainer) -> None:
    """One-line TRLSeamError on the first listed member the installed TRL does not have as expected."""
    import trl

    where = f"trl {trl.__version__} (this project is built against trl=={PINNED_TRL}; see igrpo/training/seam.py)"
    for name, expected in PRIVATE_METHODS.items():
        method = getattr(trainer_class, name, None)
        if not callable(method):
            raise TRLSeamError(f"{trainer_class.__name__}.{name} does not exist in {where}")
        params = [p for p in inspect.signature(method).parameters if p != "self"][:len(expected)]
        if tuple(params) != expected:
            raise TRLSeamError(f"{trainer_class.__name__}.{name} takes ({', '.join(params)}), not "
                               f"({', '.join(expected)}), in {where}")
    source = inspect.getsource(trainer_class.__init__)
    for name in PRIVATE_ATTRIBUTES:
        if f"self.{name} " not in source and f"self.{name}=" not in source and f"self.{name}:" not in source:
            raise TRLSeamError(f"{trainer_class.__name__}.__init__ no longer sets self.{name} in {where}")


class SeamTrainer(GRPOTrainer):
    """``GRPOTrainer`` with its private extension points under public names (see the module docstring)."""

    # --- hooks: override these, call super() for TRL's own behaviour -------------------------------------------

    def fill_batch(self, inputs):
        """The batch TRL trains on from its sampled ``inputs``: one round of ``generate_and_score`` unless overridden
        (``igrpo.training.dynamic``: more rounds, some groups dropped)."""
        return self.generate_and_score(inputs)

    def generate_and_score(self, inputs):
        """TRL's whole rollout step for ``inputs``: generate, score, compute advantages."""
        return GRPOTrainer._generate_and_score_completions(self, inputs)

    def calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        """Every reward function's scores, gathered over processes (rows x functions; NaN = declined)."""
        return GRPOTrainer._calculate_rewards(self, inputs, prompts, completions, completion_ids_list)

    def policy_loss(self, model, inputs):
        """TRL's GRPO-family loss of one micro-batch."""
        return GRPOTrainer._compute_loss(self, model, inputs)

    def token_logps_and_entropies(self, *args, **kwargs):
        """Per-token log-probabilities (and entropies) of completions under ``model``."""
        return GRPOTrainer._get_per_token_logps_and_entropies(self, *args, **kwargs)

    def generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        """TRL's generation (HF or vLLM, with vLLM's weight sync) of ``num_generations`` completions per prompt."""
        return GRPOTrainer._generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations,
                                                 has_tool_images)

    # --- helpers over TRL's private state ------------------------------------------------------------------------

    def tokenize_prompts(self, prompts: list):
        """(prompt token ids, images, multimodal fields) as TRL tokenizes string prompts for generation."""
        return self._tokenize_prompts(prompts)

    def step_metrics(self, mode: str = "train"):
        """The metric lists (name -> values) TRL averages and logs at the next log step, for ``mode``."""
        return self._metrics[mode]

    @property
    def text_tokenizer(self):
        return self._tokenizer

    @property
    def last_world_entropy(self) -> float:
        return self._last_world_entropy

    def enable_entropy_bonus(self) -> None:
        self._entropy_bonus_enabled = True

    def load_weights_from(self, checkpoint: str) -> None:
        """Only the weights of a transformers checkpoint directory."""
        self._load_from_checkpoint(checkpoint)

    # --- TRL's private names, overridden once, forwarding to the hooks -------------------------------------------

    def _generate_and_score_completions(self, inputs):
        return self.fill_batch(inputs)

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        return self.calculate_rewards(inputs, prompts, completions, completion_ids_list)

    def _compute_loss(self, model, inputs):
        return self.policy_loss(model, inputs)

    def _get_per_token_logps_and_entropies(self, *args, **kwargs):
        return self.token_logps_and_entropies(*args, **kwargs)

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        return self.generate_single_turn(prompt_ids, images, multimodal_fields, num_generations, has_tool_images)
