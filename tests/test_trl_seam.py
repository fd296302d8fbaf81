"""The TRL seam: every TRL private member the project uses is listed in igrpo.training.seam and exists, with the
expected parameters, in the pinned TRL; a missing one fails in one line naming it."""

from __future__ import annotations

import pytest
from trl import GRPOTrainer

from igrpo.training.seam import PRIVATE_ATTRIBUTES, PRIVATE_METHODS, TRLSeamError, check_trl_seam


def test_every_listed_member_exists_in_the_pinned_trl():
    check_trl_seam()
    assert "_generate_and_score_completions" in PRIVATE_METHODS and "_metrics" in PRIVATE_ATTRIBUTES


@pytest.mark.parametrize("name", sorted(PRIVATE_METHODS))
def test_a_missing_private_method_fails_in_one_line(monkeypatch, name):
    owner = next(cls for cls in GRPOTrainer.__mro__ if name in vars(cls))
    monkeypatch.delattr(owner, name)
    with pytest.raises(TRLSeamError) as info:
        check_trl_seam()
    message = str(info.value)
    assert "\n" not in message and f"GRPOTrainer.{name} does not exist in trl" in message


def test_a_re_signed_private_method_fails_in_one_line(monkeypatch):
    monkeypatch.setattr(GRPOTrainer, "_tokenize_prompts", lambda self, texts, extra: None)
    with pytest.raises(TRLSeamError, match=r"^GRPOTrainer._tokenize_prompts takes \(texts\), not \(prompts\)"):
        check_trl_seam()


def test_no_private_trl_member_is_touched_outside_the_seam():
    import subprocess

    from tests.helpers import ROOT

    pattern = "|".join(sorted({*PRIVATE_METHODS, *PRIVATE_ATTRIBUTES}))
    found = subprocess.run(["grep", "-rnE", rf"\.({pattern})\b", "igrpo"], cwd=ROOT, capture_output=True,
                           text=True).stdout.splitlines()
    assert [line for line in found if not line.startswith("igrpo/training/seam.py")] == []
