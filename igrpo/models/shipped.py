"""Shipped builds: the embedded bases and judges the README and the experiments use, built once by the project's own
build command (``python -m igrpo.models build <name> --ship``) and kept in the package (``igrpo/models/shipped/``).

Why: a build's weights depend on the CPU's float kernels and the torch thread count, so the same recipe builds a
slightly different base on another machine, and every documented number would move with it. A shipped build is
the one every machine starts from, and it saves the minutes of the first build.

Each shipped build is a directory named like its cache entry (``tiny-<key>``, ``judge-<key>``), the cache entry's
files plus ``shipped.json``: the SHA-256 of every file, and the build's settings (torch version and threads,
machine, date, commit). When a run needs a build its cache does not hold, a shipped build of the same key is
checked (every checksum, and the recorded build spec hashing to the key) and copied into the cache; a recipe with
another key (``model.warmstart_seed=1``, a new level ...) is built as before. A shipped build that fails its check
is not used: the run says why in one line and builds the recipe itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"
MANIFEST = "shipped.json"
SPEC_FILE = "igrpo_build_spec.json"


def cache_key(spec: dict) -> str:
    """A build's cache key: the hash of everything that determines its weights (its build spec)."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def shipped_entry(name: str, root: Path | None = None) -> Path | None:
    """The shipped build of the cache entry ``name`` (e.g. ``tiny-8fd29d2b8c83ea29``), or None."""
    entry = (root or SHIPPED_DIR) / name
    return entry if (entry / MANIFEST).is_file() else None


def check_entry(entry: Path, key: str) -> str | None:
    """Why ``entry`` may not be used as the build of ``key`` (None: it may): a file whose checksum differs from
    the manifest's, a missing file, or a build spec that does not hash to the key."""
    manifest = json.loads((entry / MANIFEST).read_text())
    for name, expected in sorted(manifest["files"].items()):
        path = entry / name
        if not path.is_file():
            return f"{name} is missing"
        if sha256(path) != expected:
            return f"{name} does not match its checksum"
    spec = json.loads((entry / SPEC_FILE).read_text())
    if cache_key(spec) != key:
        return f"its build spec hashes to {cache_key(spec)}, not {key}"
    return None


def restore_shipped(target: Path, key: str, root: Path | None = None) -> bool:
    """Copy the shipped build of ``target``'s cache entry into ``target`` (atomically) after checking it; False when
    there is none or it fails its check (said on stderr in one line: the caller then builds)."""
    entry = shipped_entry(target.name, root)
    if entry is None:
        return False
    problem = check_entry(entry, key)
    if problem is not None:
        print(f"warning: the shipped build {entry.name} is not used ({problem}); building it instead",
              file=sys.stderr, flush=True)
        return False
    with atomic_directory(target) as tmp:
        for path in entry.iterdir():
            if path.name != MANIFEST:
                shutil.copy2(path, tmp / path.name)
    return True


@contextmanager
def atomic_directory(target: Path):
    """A temporary sibling of ``target`` to fill; on success it becomes ``target`` by one rename (unless another
    process made ``target`` first: then it is dropped), on failure it is removed. So a reader never sees a
    half-written cache entry, and a build interrupted even by SIGKILL leaves only a hidden temporary."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def ship(built: Path, settings: dict, root: Path | None = None) -> Path:
    """Put the cache entry ``built`` into the shipped builds (replacing one of the same name), with its manifest."""
    entry = (root or SHIPPED_DIR) / built.name
    if entry.exists():
        shutil.rmtree(entry)
    entry.mkdir(parents=True)
    files = {}
    for path in sorted(built.iterdir()):
        if path.is_file():
            shutil.copy2(path, entry / path.name)
            os.chmod(entry / path.name, 0o644)
            files[path.name] = sha256(path)
    (entry / MANIFEST).write_text(json.dumps({"files": files, "build": settings}, indent=2, sort_keys=True) + "\n")
    return entry
