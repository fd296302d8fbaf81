"""Shipped builds: the shipped named builds' copies whose checksums and key hold; a run restores it
instead of building; a damaged copy is refused (and the recipe built); the build command rebuilds one and says
whether it matches the shipped one byte for byte."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from igrpo.models.__main__ import NAMED, entry_name
from igrpo.models.loading import build_tiny
from igrpo.models.shipped import MANIFEST, SHIPPED_DIR, check_entry, restore_shipped, sha256
from tests.helpers import ROOT, compose_config, subprocess_env


# the named builds shipped today (docs/measurements.md, "The shipped bases"); the others build on first use
SHIPPED = ("tiny", "tiny_smoke", "tiny_smoke_all_formats", "judge", "judge_smoke")


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_build_is_named_and_checks(name):
    entry, key = entry_name(name)
    shipped = SHIPPED_DIR / entry
    assert (shipped / MANIFEST).is_file(), f"{name}: no shipped build of {entry}; ship it with " \
                                           f"python -m igrpo.models build {name} --force --ship"
    assert check_entry(shipped, key) is None
    build = json.loads((shipped / MANIFEST).read_text())["build"]
    assert build["torch_threads"] and build["date"] and build["commit"]


def test_nothing_is_shipped_that_no_named_build_makes():
    named = {entry_name(name)[0] for name in NAMED}
    assert {path.name for path in SHIPPED_DIR.iterdir() if path.is_dir()} <= named


def test_a_run_restores_the_shipped_build_instead_of_building(tmp_path):
    cfg = compose_config("debug=smoke")
    entry, key = entry_name("tiny_smoke")
    info = build_tiny(cfg.model, cfg.task, tmp_path)
    assert not info.built_now and Path(info.path).name == entry
    assert sha256(Path(info.path) / "model.safetensors") == sha256(SHIPPED_DIR / entry / "model.safetensors")


def test_a_damaged_shipped_build_is_refused(tmp_path, capsys):
    entry, key = entry_name("tiny_smoke")
    root = tmp_path / "shipped"
    shutil.copytree(SHIPPED_DIR / entry, root / entry)
    weights = root / entry / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert not restore_shipped(tmp_path / "cache" / entry, key, root=root)
    assert "model.safetensors does not match its checksum" in capsys.readouterr().err
    assert not (tmp_path / "cache" / entry).exists()
    assert not restore_shipped(tmp_path / "cache" / entry, "0" * 16, root=root)  # not this key's build either


def test_the_build_command_rebuilds_and_compares_with_the_shipped_build():
    proc = subprocess.run([sys.executable, "-m", "igrpo.models", "build", "tiny_smoke", "--force"], cwd=ROOT,
                          env=subprocess_env(share=1), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "matches the shipped build byte for byte" in proc.stdout


def test_a_changed_recipe_builds_and_caches_a_new_base(tmp_path):
    """Another cache key (model.warmstart_seed=1) is no shipped build: it is built on first use, then cached."""
    cfg = compose_config("debug=smoke", "model.warmstart_seed=1")
    entry, _ = entry_name("tiny_smoke")
    first = build_tiny(cfg.model, cfg.task, tmp_path)
    assert first.built_now and Path(first.path).name != entry and Path(first.path).is_relative_to(tmp_path)
    again = build_tiny(cfg.model, cfg.task, tmp_path)
    assert not again.built_now and again.path == first.path
