"""The run config composed outside a Hydra job, and Hydra's or OmegaConf's composition errors as one line.

``run.py`` prints a failed composition through ``hydra_error_line`` (igrpo.job.cli); the commands that start no
Hydra job (``python -m igrpo.plan``, ``igrpo.tasks``, the judge CLI, the experiments' dry runs) compose through
``compose_for_command`` and fail the same way."""

from __future__ import annotations

from igrpo.errors import ConfigError

_KINDS = {int: "an integer", float: "a number", bool: "true or false"}


def _expected_kind(err) -> str:
    """What the schema field at fault takes, in words (read from the field's type, not from the error text)."""
    import typing

    try:
        hints = typing.get_type_hints(err.object_type)
    except Exception:  # not a dataclass schema, or a type that cannot be resolved
        return "of the field's type"
    kind = hints.get(str(err.key))
    for candidate in (kind, *typing.get_args(kind)):
        if candidate in _KINDS:
            return _KINDS[candidate]
    return f"of type {getattr(kind, '__name__', kind)}"


def compose_for_command(overrides: list[str], fixed: tuple[str, ...] = ()):
    """The run config composed from conf/ for a command that starts no Hydra job (``python -m igrpo.plan``,
    ``igrpo.tasks``, the judge CLI): Hydra's compose API, ``fixed`` overrides first, then the user's; an unknown group
    option or a bad key or value is one ConfigError line naming it."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from igrpo import CONF_DIR
    from igrpo.config import register_configs
    from igrpo.config.groups import find_bad_group_choice

    bad = find_bad_group_choice(overrides)
    if bad:
        raise ConfigError(bad)
    register_configs()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose("config", overrides=[*fixed, *overrides])
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(hydra_error_line(err, overrides)) from None


def hydra_error_line(err: BaseException, argv: list[str]) -> str:
    """Hydra's or OmegaConf's multi-line composition error as our one line, naming the override at fault. The
    key and value come from OmegaConf's exception (its ``full_key`` and ``value``), and an unknown option of any
    group (``hydra/launcher=nope`` too: Hydra's groups are filled by plugins) from Hydra's own (its
    ``missing_cfg_file`` and ``options``), never from the message text."""
    from hydra.errors import MissingConfigException
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

    cause = err.__cause__ if err.__cause__ is not None else err
    if isinstance(err, MissingConfigException) and err.options and "/" in str(err.missing_cfg_file or ""):
        group, option = str(err.missing_cfg_file).rsplit("/", 1)
        return f"{group}={option} is not a known option; choose one of: {', '.join(err.options)}"
    if isinstance(cause, ValidationError) and getattr(cause, "full_key", None):
        return f"{cause.full_key}={cause.value} is not valid; it must be {_expected_kind(cause)}"
    if isinstance(cause, (ConfigAttributeError, ConfigKeyError)) and getattr(cause, "full_key", None):
        shown = "hydra" if str(cause.full_key).startswith("hydra.") else "job"
        return f"{cause.full_key} is not a known config key; list the keys with: python run.py --cfg {shown}"
    detail = str(cause)
    if type(err).__name__ == "OverrideParseException":
        bad = _unparseable_override(argv)
        where = f"the override {bad!r}" if bad else "an override"
        return (f"could not parse {where}: {detail.splitlines()[0]}; quote values with spaces or braces, "
                "e.g. 'variant.template=\"Fix: {draft}\"'")
    lines = [line.strip() for text in (str(err), detail if cause is not err else "") for line in text.splitlines()]
    return ": ".join(dict.fromkeys(line for line in lines if line and not line.startswith(("See https", "full_key",
                                                                                           "object_type"))))


def _unparseable_override(argv: list[str]) -> str | None:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    for arg in argv:
        if arg.startswith("-"):
            continue
        try:
            parser.parse_override(arg)
        except HydraException:
            return arg
    return None
