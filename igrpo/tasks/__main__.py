"""``python -m igrpo.tasks inspect|decontaminate [overrides...]``: look at data before training on it.

    python -m igrpo.tasks inspect task=math task.path=/data/math_train.jsonl eval=paper
    python -m igrpo.tasks decontaminate task=math eval=paper task.decontaminate_ngram=13

Overrides are the same as ``run.py``'s (the config is composed from ``conf/``). Mistakes end with one
``error: ...`` line and exit status 2; so does a hub that cannot be reached (``HF_HUB_OFFLINE``, or no answer within
a few seconds), naming every source that is not in the local cache and needs a local ``path``.
"""

from __future__ import annotations

import sys

COMMANDS = ("inspect", "decontaminate")


def compose(overrides: list[str]):
    """The run config composed from conf/ with ``overrides`` (Hydra's compose API, no job directory)."""
    from igrpo.config.compose import compose_for_command

    return compose_for_command(overrides, fixed=("output_dir=.",))


def main(argv: list[str]) -> int:
    from igrpo.errors import ConfigError

    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m igrpo.tasks {{{'|'.join(COMMANDS)}}} [overrides...]", file=sys.stderr)
        return 2
    command, overrides = argv[0], argv[1:]
    try:
        cfg = compose(overrides)
        from igrpo.config.checks import check_hub_reachable
        from igrpo.config.data import data_hub_needs
        from igrpo.tasks.inspect import decontaminate_lines, inspect_lines

        # offline (HF_HUB_OFFLINE, or the hub does not answer a probe of a few seconds): one line naming every
        # source that needs a local path, instead of each hub load retrying for minutes
        check_hub_reachable(data_hub_needs(cfg))

        lines = inspect_lines(cfg) if command == "inspect" else decontaminate_lines(cfg)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
