"""``python -m experiments``: list the specs, or run one at a scale (resumably), or print its commands.

    python -m experiments list
    python -m experiments run table1 --scale cpu [--seeds 0,1,2] [--dry-run] [--tracking-uri URI] [-- overrides]

Overrides after ``--`` go to every run, last (they win over the spec's) and count in its config hash.
User mistakes end with one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from experiments.plan import parse_seeds, plan_runs
from experiments.spec import SCALES, SpecError, load_spec, spec_names
from igrpo.errors import ConfigError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m experiments", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the experiments and their arms")
    r = sub.add_parser("run", help="run (or with --dry-run print) every run of an experiment")
    r.add_argument("experiment")
    r.add_argument("--scale", default="cpu", help=f"one of: {', '.join(SCALES)} (default cpu)")
    r.add_argument("--seeds", default=None, help="comma-separated seeds (default: the spec's)")
    r.add_argument("--dry-run", action="store_true", help="print the `python run.py` commands, run nothing")
    r.add_argument("--tracking-uri", default=None, help="MLflow store (default: MLFLOW_TRACKING_URI, "
                                                        "else sqlite:///<cwd>/mlflow.db)")
    r.add_argument("--out", default="outputs/experiments", help="scratch directory of the runs")
    return p


def _list() -> None:
    for name in spec_names():
        spec = load_spec(name)
        arms = ", ".join(a.label for a in spec.arms)
        print(f"{name:16s} {spec.title}")
        for scale in SCALES:
            sc = spec.scales[scale]
            n = len(sc.groups) * len(spec.arms) * len(sc.seeds)
            print(f"{'':16s}   {scale}: {n} runs = {len(sc.groups)} group(s) x arms [{arms}] x seeds "
                  f"{list(sc.seeds)}")


def _run(args, extra: list[str]) -> None:
    from igrpo.tracking import resolve_tracking_uri

    spec = load_spec(args.experiment)
    if args.scale not in SCALES:
        raise SpecError(f"--scale={args.scale} is not valid; choose one of: {', '.join(SCALES)}")
    seeds = parse_seeds(args.seeds) if args.seeds is not None else None
    if args.dry_run:
        runs = plan_runs(spec, args.scale, seeds, extra, tracking_uri=args.tracking_uri)
        print(f"# {spec.name} at scale {args.scale}: {len(runs)} runs into MLflow experiment '{spec.name}' "
              f"(each also gets tracking.parent_run_id=<the invocation's parent run>)")
        for run in runs:
            print(run.command())
        return
    from igrpo.cli import quiet_third_party_logs

    quiet_third_party_logs()
    from experiments.execute import execute

    uri = resolve_tracking_uri(args.tracking_uri)
    runs = plan_runs(spec, args.scale, seeds, extra, tracking_uri=uri)
    print(f"{spec.name} at scale {args.scale}: {len(runs)} planned runs, MLflow {uri}")
    outcome = execute(runs, uri, Path(args.out) / spec.name / args.scale)
    print(f"done: {len(outcome.launched)} launched, {len(outcome.skipped)} skipped (already FINISHED)"
          + (f"; parent run {outcome.parent_run_id}" if outcome.parent_run_id else ""))
    seeds_arg = f" --seeds {args.seeds}" if args.seeds else ""
    print(f"report: python -m analysis.report {spec.name} --scale {args.scale}{seeds_arg}"
          + (f" --tracking-uri {args.tracking_uri}" if args.tracking_uri else ""))
    print(f"view:   mlflow ui --backend-store-uri {uri} --workers 1")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            _list()
        else:
            _run(args, extra)
    except (SpecError, ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
