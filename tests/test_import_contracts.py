"""The layer rules of ARCHITECTURE.md (contracts in pyproject.toml's [tool.importlinter]) hold: `lint-imports`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT


def test_import_contracts_hold():
    lint = Path(sys.executable).parent / "lint-imports"
    assert lint.exists(), f"{lint} is missing: install the dev extra (pip install -e '.[dev]')"
    proc = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_only_the_tracking_wing_imports_mlflow():
    """The acceptance grep: `import mlflow` / `from mlflow` only under igrpo/tracking/ (and analysis/load.py)."""
    hits = sorted(str(p.relative_to(ROOT)) for folder in ("igrpo", "experiments", "hydra_plugins", "analysis")
                  for p in (ROOT / folder).rglob("*.py")
                  if any(line.lstrip().startswith(("import mlflow", "from mlflow"))
                         for line in p.read_text().splitlines()))
    assert [h for h in hits if not h.startswith("igrpo/tracking/") and h != "analysis/load.py"] == []
    assert "igrpo/tracking/names.py" not in hits


def test_names_module_imports_nothing_heavy():
    """analysis/, experiments/ and the plugins import the names module without mlflow or transformers."""
    code = ("import sys; import igrpo.tracking.names as n; "
            "heavy = [m for m in ('mlflow', 'transformers', 'torch', 'trl', 'omegaconf') if m in sys.modules]; "
            "print(heavy); assert not heavy and n.resolve_tracking_uri('x') == 'x'")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
