"""Analysis: MLflow runs -> pandas -> the paper's tables and figures. Reads MLflow only; never trains."""
