"""Checks over the whole composed config that no per-field schema expresses: keys the schemas do not know, numbers
that are not finite, the seed's range, template placeholders, and whether the tracking store can be reached.

Each raises ConfigError with one line naming the value at fault. ``validate`` runs them before anything is written
and before any model is loaded.
"""

from __future__ import annotations

import dataclasses
import math
import os
import socket
import string
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from igrpo.errors import ConfigError

SEED_RANGE = (0, 2**32 - 1)  # numpy's legacy seeding (and so TRL's set_seed) accepts exactly this range
REACHABILITY_TIMEOUT_S = 3.0  # per probe (connect, then one HTTP request): an unreachable store fails in seconds


def check_required(cfg) -> None:
    """A field an option leaves to the user (``???`` in its YAML, e.g. model=hf's path) must be given."""
    from omegaconf import OmegaConf

    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(f"{missing[0]} is required by the chosen options and has no value; set it on the "
                          f"command line, e.g. {missing[0]}=<value>")


def check_known_keys(cfg, prefix: str = "") -> None:
    """Every key of a schema-typed node is a field of its schema: ``+foo=1`` or ``+model.foo=1`` (Hydra's force-add
    bypasses the schema) is refused instead of being silently ignored. Free-form dicts (e.g. ``tracking.tags``,
    ``eval.suites``) may hold any key."""
    from omegaconf import DictConfig, OmegaConf

    schema = OmegaConf.get_type(cfg)
    known = {f.name for f in dataclasses.fields(schema)} if dataclasses.is_dataclass(schema) else None
    for key in cfg.keys():
        path = f"{prefix}{key}"
        if known is not None and key not in known:
            raise ConfigError(f"{path} is not a known config key; list the keys with: python run.py --cfg job")
        node = cfg._get_node(key)
        if isinstance(node, DictConfig) and not node._is_missing() and not node._is_none():
            check_known_keys(node, prefix=f"{path}.")


def check_finite_numbers(cfg, prefix: str = "") -> None:
    """No number anywhere in the config is NaN or infinite (``generation.temperature=nan`` would pass ``> 0``)."""
    from omegaconf import DictConfig, ListConfig

    items = cfg.items_ex(resolve=True) if isinstance(cfg, DictConfig) else enumerate(cfg)
    for key, value in items:
        path = f"{prefix}{key}" if isinstance(cfg, DictConfig) else f"{prefix.rstrip('.')}[{key}]"
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{path}={value} is not valid; it must be a finite number")
        if isinstance(value, (DictConfig, ListConfig)):
            check_finite_numbers(value, prefix=f"{path}.")


def check_seed(seed) -> None:
    low, high = SEED_RANGE
    if isinstance(seed, bool) or not isinstance(seed, int) or not low <= seed <= high:
        raise ConfigError(f"seed={seed} is not valid; it must be an integer from {low} to {high} (2^32 - 1)")


def check_format_placeholders(field: str, template: str, known: tuple[str, ...]) -> None:
    """A ``str.format``-style template uses only the ``known`` placeholders, and writes literal braces as ``{{ }}``."""
    listed = ", ".join("{" + name + "}" for name in known)
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as err:  # a lone "{" or "}"
        raise ConfigError(f"{field}={template!r} is not valid: {err}; write literal braces as {{{{ and }}}}") from None
    for name in names:
        if name not in known:
            shown = "{" + name + "}" if name else "{}"
            raise ConfigError(f"{field}={template!r} is not valid: unknown placeholder {shown}; the known ones are "
                              f"{listed} (write literal braces as {{{{ and }}}})")


def check_tracking_reachable(uri: str, timeout_s: float = REACHABILITY_TIMEOUT_S) -> None:
    """The MLflow store answers: a server within ``timeout_s`` (MLflow itself would retry for minutes), a local store
    in a directory that exists. Other schemes (databricks, ...) are left to MLflow."""
    parsed = urlparse(uri)
    if parsed.scheme in ("http", "https"):
        _check_server(uri, parsed, timeout_s)
    elif parsed.scheme == "sqlite":
        path = uri[len("sqlite:///"):] if uri.startswith("sqlite:///") else ""
        if path and path != ":memory:" and not Path(path).parent.is_dir():
            raise ConfigError(f"tracking.uri={uri} is not usable: the directory {Path(path).parent} does not exist")
    elif parsed.scheme in ("", "file"):
        root = Path(parsed.path if parsed.scheme == "file" else uri).expanduser()
        parent = root if root.exists() else root.parent
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            raise ConfigError(f"tracking.uri={uri} is not usable: {parent} is not a writable directory")


def _check_server(uri: str, parsed, timeout_s: float) -> None:
    hint = ("start it (e.g. mlflow server --host 127.0.0.1 --port 5000 --workers 1) or use a local store, "
            "e.g. tracking.uri=sqlite:///mlflow.db")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout_s):
            pass
    except OSError as err:
        raise ConfigError(f"tracking.uri={uri} is not reachable ({err.strerror or err}); {hint}") from None
    try:  # something listens: it must also answer HTTP in time (a hung server would stall every log call)
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout_s):
            pass
    except urllib.error.HTTPError:
        pass  # it answered (a proxy or an older server without /health): reachable
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise ConfigError(f"tracking.uri={uri} does not answer HTTP within {timeout_s:g} s ({reason}); {hint}") from None
