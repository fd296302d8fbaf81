"""``run.py`` with every final save recorded: a launcher for multi-process tests (``accelerate launch
tests/save_spy.py <overrides>``). Each call of transformers' ``Trainer.save_model`` made outside its own checkpointing
appends its target directory to ``<IGRPO_TEST_SAVE_LOG>/rank<RANK>.txt``, so a test can see which processes saved the
final policy, and how often."""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the script runs from tests/: the project's packages come from the root

from transformers import Trainer

_save_model = Trainer.save_model


def recorded_save_model(self, output_dir=None, _internal_call=False):
    if not _internal_call:  # checkpoints call it with _internal_call=True
        log = Path(os.environ["IGRPO_TEST_SAVE_LOG"])
        log.mkdir(parents=True, exist_ok=True)
        with open(log / f"rank{os.environ.get('RANK', '0')}.txt", "a") as handle:
            handle.write(f"{output_dir}\n")
    return _save_model(self, output_dir, _internal_call)


Trainer.save_model = recorded_save_model
sys.argv = [str(ROOT / "run.py"), *sys.argv[1:]]
runpy.run_path(str(ROOT / "run.py"), run_name="__main__")
