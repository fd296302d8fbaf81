"""Policy models: the embedded tiny model (built, warm-started, cached) and any HF causal LM."""
