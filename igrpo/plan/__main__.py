"""``python -m igrpo.plan [overrides...]``: the per-GPU memory budget of a run, before anything loads.

    python -m igrpo.plan experiment=paper                                          # GPUs seen here, or one H100
    python -m igrpo.plan experiment=paper plan.accelerate=deepspeed_zero3          # its 8 processes, ZeRO-3
    python -m igrpo.plan experiment=paper model=r1_distill_qwen_14b plan.gpus=8 plan.accelerate=deepspeed_zero3
    python -m igrpo.plan experiment=paper variant=grpo plan.gpus=8 plan.gpu_memory_gib=139.7   # H200s

Overrides are ``run.py``'s, plus the plan's own: ``plan.gpus``, ``plan.gpu_memory_gib`` and ``plan.accelerate`` (an
accelerate config of conf/accelerate/). It prints the table, then ``fits: ...`` (exit status 0) or ``does not fit:
...`` naming what to change (exit status 1). A bad value ends it with one ``error: ...`` line (exit status 2).
"""

from __future__ import annotations

import dataclasses
import sys

from igrpo.errors import ConfigError

PREFIX = "plan."


def parse_settings(argv: list[str]):
    """(the plan's settings, the run-config overrides): each ``plan.<field>=<value>`` checked by its field's rule."""
    from igrpo.config.fields import check_value
    from igrpo.plan.setup import PlanSettings

    fields = {f.name: f for f in dataclasses.fields(PlanSettings)}
    values: dict = dict.fromkeys(fields)
    rest = []
    for arg in argv:
        if not arg.startswith(PREFIX):
            rest.append(arg)
            continue
        key, _, raw = arg[len(PREFIX):].partition("=")
        if key not in fields:
            known = ", ".join(f"{PREFIX}{name}" for name in fields)
            raise ConfigError(f"{PREFIX}{key} is not a plan setting; choose from: {known}")
        if not _:
            raise ConfigError(f"{arg} needs a value: {PREFIX}{key}=<value>")
        kind = {"gpus": int, "gpu_memory_gib": float}.get(key, str)
        try:
            value = kind(raw)
        except ValueError:
            noun = "an integer" if kind is int else "a number"
            raise ConfigError(f"{PREFIX}{key}={raw!r} is not valid; it must be {noun}") from None
        check_value(f"{PREFIX}{key}", value, fields[key].metadata)
        values[key] = value
    return PlanSettings(**values), rest


def compose(overrides: list[str]):
    """The run config composed from conf/ (Hydra's compose API, no job directory), checked without this machine."""
    from igrpo.config.validate import validate
    from igrpo.config.compose import compose_for_command

    cfg = compose_for_command(overrides, fixed=("output_dir=null",))
    validate(cfg, machine=False)  # the config's own rules; a plan is made for a machine other than this one
    return cfg


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    from igrpo.job.cli import quiet_third_party_logs

    quiet_third_party_logs()
    try:
        settings, overrides = parse_settings(argv)
        from igrpo.plan import setup
        from igrpo.plan.budget import check_inputs, make_plan
        from igrpo.plan.memory import NO_SHARDING

        processes, sharding = None, NO_SHARDING
        if settings.accelerate is not None:
            config = setup.read_accelerate(settings.accelerate)
            processes = int(config.get("num_processes", 1))
            sharding = setup.sharding_from_accelerate(config, f"conf/accelerate/{settings.accelerate}.yaml")
        cfg = compose(overrides)
        gpus, memory, source = setup.resolve_gpus(settings, processes)
        inputs = setup.plan_inputs(cfg, gpus, memory, sharding)
        check_inputs(inputs)
        plan = make_plan(inputs)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from igrpo.plan.report import render

    notes = ("device=cpu: this run uses no GPU; the table is what it would need with device=cuda",) \
        if cfg.device == "cpu" else ()
    print("\n".join(render(plan, source, notes)))
    return 0 if plan.fits else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
