"""``python -m experiments``: list the specs, or run one at a scale as a Hydra multirun (resumably).

    python -m experiments list
    python -m experiments run table1 --scale cpu [--seeds 0,1,2] [--groups G1,G2] [--dry-run] [--tracking-uri URI]
                                                 [-- overrides]

Overrides after ``--``: ``hydra/...`` and ``hydra.*`` choose the launcher and its settings (e.g.
``hydra/launcher=local_parallel hydra.launcher.n_jobs=2``, ``hydra/launcher=slurm hydra.launcher.partition=gpu``)
and ``tracking.*`` the MLflow destination; every other one goes to every run, last (it wins over the spec's) and
counts in its config hash. Runs whose hash already FINISHED are skipped. User mistakes end with one line on stderr
and exit status 2; a failed run ends the command with the multirun's status (the FINISHED runs are kept).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from experiments.plan import override_key, parse_seeds, plan_runs, split_extras
from experiments.spec import SCALES, SpecError, group_arms, load_spec, spec_names
from igrpo.errors import ConfigError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m experiments", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the experiments and their arms")
    r = sub.add_parser("run", help="run (or with --dry-run print) every run of an experiment as one Hydra multirun")
    r.add_argument("experiment")
    r.add_argument("--scale", default="cpu", help=f"one of: {', '.join(SCALES)} (default cpu)")
    r.add_argument("--seeds", default=None, help="comma-separated seeds (default: the spec's)")
    r.add_argument("--groups", default=None, help="comma-separated group suffixes or labels to run (default: all), "
                                                  "e.g. a cell whose base is still building can run later")
    r.add_argument("--dry-run", action="store_true", help="write the plan and print the multirun command, run nothing")
    r.add_argument("--tracking-uri", default=None, help="MLflow store (default: MLFLOW_TRACKING_URI, "
                                                        "else sqlite:///<cwd>/mlflow.db)")
    r.add_argument("--out", default="outputs/experiments", help="where the sweep dirs go: <out>/<experiment>/<scale>/")
    return p


def _list() -> None:
    for name in spec_names():
        spec = load_spec(name)
        arms = ", ".join(a.label for a in spec.arms)
        print(f"{name:16s} {spec.title}")
        for scale in SCALES:
            sc = spec.scales[scale]
            n = sum(len(group_arms(spec, g)) for g in sc.groups) * len(sc.seeds)
            print(f"{'':16s}   {scale}: {n} runs = {len(sc.groups)} group(s) x arms [{arms}] x seeds "
                  f"{list(sc.seeds)}")


def _run(args, extra: list[str]) -> int:
    from igrpo.tracking.names import resolve_tracking_uri

    spec = load_spec(args.experiment)
    if args.scale not in SCALES:
        raise SpecError(f"--scale={args.scale} is not valid; choose one of: {', '.join(SCALES)}")
    seeds = parse_seeds(args.seeds) if args.seeds is not None else None
    run_level, tracking, hydra_level = split_extras(extra)
    uris = [o.split("=", 1)[1].strip("'\"") for o in tracking if override_key(o) == "tracking.uri"]
    explicit_uri = uris[-1] if uris else args.tracking_uri
    tracking = [o for o in tracking if override_key(o) != "tracking.uri"]
    uri = resolve_tracking_uri(explicit_uri)

    from igrpo.job.cli import quiet_third_party_logs

    quiet_third_party_logs()
    from experiments import execute

    runs = select_groups(plan_runs(spec, args.scale, seeds, run_level), args.groups)
    hydra_level = launch_settings(spec.scale(args.scale).launcher, hydra_level)
    execute.check_hydra_overrides(hydra_level)
    if not args.dry_run:  # the store every run logs into answers and is writable, before any base is built
        from igrpo.config.checks import check_tracking_reachable

        check_tracking_reachable(uri)
    local = execute.launcher_is_local(hydra_level)
    sweep_root = Path(args.out).resolve() / spec.name / args.scale
    configs = execute.compose_runs(runs, sweep_root, check_values=local and not args.dry_run, extra=tracking)
    pending = execute.pending_runs(runs, configs, uri)
    print(f"{spec.name} at scale {args.scale}: {len(runs)} planned runs, MLflow {uri}")
    for run, run_id, run_name in pending.skipped:
        print(f"skip   {run.describe()}: FINISHED run {run_name} ({run_id}) has config_hash {pending.hashes[run.key]}")
    report = (f"python -m analysis.report {spec.name} --scale {args.scale}"
              + (f" --seeds {args.seeds}" if args.seeds else "")
              + (f" --tracking-uri {explicit_uri}" if explicit_uri else ""))
    if not pending.todo:
        print(f"nothing to launch: all {len(runs)} runs already FINISHED\nreport: {report}")
        return 0

    sweep_dir = execute.new_sweep_dir(sweep_root)
    plan_file = execute.write_plan(pending.todo, sweep_dir / "plan.json")
    command = execute.multirun_command(spec.name, args.scale, plan_file, sweep_dir, explicit_uri, tracking,
                                       hydra_level)
    for i, run in enumerate(pending.todo):
        print(f"run #{i} {run.describe()}: {' '.join(shlex.quote(o) for o in run.overrides)}")
    print(f"multirun: {execute.shown(command)}", flush=True)
    if args.dry_run:
        print(f"dry run: nothing launched; the plan is in {plan_file}")
        return 0
    if local:
        todo = {run.key for run in pending.todo}
        execute.build_bases([cfg for run, cfg in zip(runs, configs) if run.key in todo], uri)
    status = execute.launch(command)
    if status != 0:
        print(f"error: the multirun ended with status {status}; runs that FINISHED are kept, so the same command "
              "runs the rest", file=sys.stderr)
        return status
    print(f"done: {len(pending.todo)} launched, {len(pending.skipped)} skipped (already FINISHED)")
    print(f"report: {report}")
    print(f"view:   mlflow ui --backend-store-uri {uri} --workers 1")
    return 0


def launch_settings(scale_launcher: tuple[str, ...], given: list[str]) -> list[str]:
    """The hydra-level overrides to launch with: the scale's default launch unless the command line chooses a
    launcher itself (then only the command line's: the scale's launcher settings may not fit another launcher)."""
    if any(override_key(o) == "hydra/launcher" for o in given):
        return list(given)
    return [*scale_launcher, *given]


def select_groups(runs: list, groups: str | None) -> list:
    """The planned runs of the named groups (suffix or label, comma-separated); None keeps every run."""
    if groups is None:
        return runs
    known = {name: None for r in runs for name in (r.group.suffix, r.group.label) if name}
    wanted = [g.strip() for g in groups.split(",") if g.strip()]
    for name in wanted:
        if name not in known:
            raise SpecError(f"--groups entry {name!r} is not a group of this spec and scale; choose from: "
                            f"{', '.join(known)}")
    return [r for r in runs if r.group.suffix in wanted or r.group.label in wanted]


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
            return 0
        return _run(args, extra)
    except (SpecError, ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
