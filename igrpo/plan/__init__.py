"""The GPU memory plan: a run's per-GPU budget estimated from the model's architecture and the run config, before
anything loads (``python -m igrpo.plan``; a training run on CUDA makes the same check before its model loads).

* ``arch``: the model's shape and what follows from it (parameters, K/V bytes per token);
* ``memory``: each part's bytes per GPU (training state by sharding, activations, the loss's log-probs, vLLM);
* ``budget``: the parts in three phases (load, generate, train), the verdict and the changes that would fit;
* ``report``: the table as text;
* ``setup``: from a composed run config, the plan's settings or a launched job's environment to the inputs.

The formulas and their assumptions are in docs/scaling.md ("Memory plan"). ``arch``, ``memory``, ``budget`` and
``report`` import neither torch nor the config stack (a contract of pyproject.toml).
"""
