"""Checks over the whole composed config that no per-field schema expresses: keys the schemas do not know, numbers
that are not finite, the seed's range, template placeholders, whether the tracking store can be reached and written,
and whether what the job fetches from the Hugging Face hub can be had (the hub answers, or the local cache has it).

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
from typing import Callable, NamedTuple
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
    (``sqlite:///``, ``file:`` or a plain path) in a directory this process can write in, proved by creating and
    removing a probe file there (permission bits say nothing for root, a read-only mount or a full disk). Other
    schemes (databricks, ...) are left to MLflow."""
    parsed = urlparse(uri)
    if parsed.scheme in ("http", "https"):
        _check_server(uri, parsed, timeout_s)
    elif parsed.scheme == "sqlite":
        path = uri[len("sqlite:///"):] if uri.startswith("sqlite:///") else ""
        if not path or path == ":memory:":
            return
        db = Path(path).expanduser()
        if not db.parent.is_dir():
            raise ConfigError(f"tracking.uri={uri} is not usable: the directory {db.parent} does not exist")
        if db.exists() and not db.is_file():
            raise ConfigError(f"tracking.uri={uri} is not usable: {db} is not a file")
        _check_writable(uri, db.parent, db if db.exists() else None)
    elif parsed.scheme in ("", "file"):
        root = Path(parsed.path if parsed.scheme == "file" else uri).expanduser()
        parent = root if root.exists() else root.parent
        if not parent.is_dir():
            raise ConfigError(f"tracking.uri={uri} is not usable: {parent} is not a writable directory")
        _check_writable(uri, parent)


def _check_writable(uri: str, directory: Path, existing: Path | None = None) -> None:
    """Create and remove a probe file in ``directory`` (and open an ``existing`` store file for writing)."""
    import tempfile

    try:
        fd, probe = tempfile.mkstemp(prefix=".igrpo-store-probe-", dir=directory)
        os.close(fd)
        os.remove(probe)
        if existing is not None:
            with open(existing, "r+b"):
                pass
    except OSError as err:
        raise ConfigError(f"tracking.uri={uri} is not usable: {existing or directory} is not writable here "
                          f"({err.strerror or err}); use a store in a writable directory, "
                          "e.g. tracking.uri=sqlite:///mlflow.db (in the working directory)") from None


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


# ------------------------------------------------------------------------------------------- the Hugging Face hub

HUB_PROBE_TIMEOUT_S = 3.0  # one TCP connection to the hub (or the proxy that reaches it): offline in seconds
_HUB_PROBE: dict[str, str | None] = {}  # the probe's answer, asked once per process


class HubNeed(NamedTuple):
    """Something a job would fetch from the hub: the key that takes a local path instead, the hub id, and whether a
    copy is in this machine's Hugging Face cache (asked only when the hub cannot be reached)."""

    label: str
    hub_id: str
    cached: Callable[[], bool]


def hub_offline_setting() -> str | None:
    """``HF_HUB_OFFLINE=...`` when the user turned the hub off, read exactly as huggingface_hub reads it (its value,
    else ``TRANSFORMERS_OFFLINE``'s, one of 1/ON/YES/TRUE in any case)."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        value = os.environ.get(name)
        if value:  # huggingface_hub: HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE, the first that is non-empty
            return f"{name}={value}" if value.upper() in ("1", "ON", "YES", "TRUE") else None
    return None


def hub_unreachable_reason(timeout_s: float = HUB_PROBE_TIMEOUT_S) -> str | None:
    """Why the hub cannot be used from this process, or None: the offline setting, else one probe of ``HF_ENDPOINT``
    (default https://huggingface.co; through ``https_proxy`` when one applies) that gives up after ``timeout_s``
    (name resolution included). Probed once per process."""
    if "reason" not in _HUB_PROBE:
        _HUB_PROBE["reason"] = hub_offline_setting() or _probe_hub(timeout_s)
    return _HUB_PROBE["reason"]


def _probe_hub(timeout_s: float) -> str | None:
    import threading

    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = endpoint.hostname or "", endpoint.port or (443 if endpoint.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(endpoint.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        via = urlparse(proxy if "://" in proxy else f"http://{proxy}")
        host, port = via.hostname or "", via.port or 8080
    outcome: dict[str, str | None] = {}

    def connect() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                outcome["error"] = None
        except OSError as err:
            outcome["error"] = err.strerror or str(err) or type(err).__name__

    thread = threading.Thread(target=connect, daemon=True)  # a hung name lookup is not bounded by the timeout
    thread.start()
    thread.join(timeout_s + 0.5)
    if "error" not in outcome:
        return f"no connection to {host}:{port} within {timeout_s:g} s"
    return None if outcome["error"] is None else f"{host}:{port}: {outcome['error']}"


def check_hub_reachable(needs: list[HubNeed]) -> None:
    """Everything the job would fetch from the hub can be had: the hub answers, or each item is in the local cache
    (the process then reads the caches without asking the hub, so nothing retries a dead connection). Otherwise
    one line naming every key that needs a local path. Nothing needed from the hub: no probe."""
    if not needs:
        return
    reason = hub_unreachable_reason()
    if reason is None:
        return
    missing = [need for need in needs if not need.cached()]
    if missing:
        listed = ", ".join(f"{need.label} (hub {need.hub_id})" for need in missing)
        raise ConfigError(f"the Hugging Face hub cannot be reached ({reason}); set a local path for what is not in "
                          f"the local cache: {listed}")
    use_hub_cache_only()


def use_hub_cache_only() -> None:
    """Offline for this process and its children: ``HF_HUB_OFFLINE=1``, also in huggingface_hub and datasets when
    they are already imported (they read the variable once, at import)."""
    import sys

    os.environ["HF_HUB_OFFLINE"] = "1"
    for module in ("huggingface_hub.constants", "datasets.config"):
        loaded = sys.modules.get(module)
        if loaded is not None and hasattr(loaded, "HF_HUB_OFFLINE"):
            loaded.HF_HUB_OFFLINE = True
