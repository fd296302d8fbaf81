"""Declarative experiment specs, one per paper table / figure / ablation."""
