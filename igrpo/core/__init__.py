"""The method's pure core: draft selection and the refinement prompt, entropy schedules, refinement
metrics and final-answer extraction. No torch, TRL, transformers or MLflow here (an import-linter contract)."""
