"""Training glue to TRL: the one seam to TRL's internals, the tracked GRPO trainer every variant builds on,
the config -> GRPOConfig factory, checkpoints, processes and stop tokens."""
