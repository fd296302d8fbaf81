"""igrpo: an experiment and ablation framework for iGRPO on TRL, Hydra and MLflow.

The package layout is described in ARCHITECTURE.md at the repository root. This module holds only the location of
the run configs (``conf/``), which the command line, the experiment specs and the tests compose against; it imports
nothing, so any layer may read it.
"""

from pathlib import Path

__version__ = "0.1.0"

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
