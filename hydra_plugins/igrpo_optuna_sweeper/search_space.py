"""The igrpo_optuna sweeper's search space: Hydra sweep syntax -> optuna distributions, and its config errors.

``hydra.sweeper.params`` maps override keys to Hydra sweep strings; sweep overrides on the command line add to
(or replace) them. Each becomes an optuna distribution:

    interval(1e-5, 1e-3)               -> FloatDistribution(1e-5, 1e-3)
    tag(log, interval(1e-5, 1e-3))     -> FloatDistribution(1e-5, 1e-3, log=True)
    int(interval(1, 8)), range(1, 9)   -> IntDistribution(1, 8)
    choice(a, b)                       -> CategoricalDistribution(('a', 'b'))

Anything else is a one-line SearchSpaceError naming the key and VALID_FORMS. ``format_value`` turns a suggested
value back into the value part of a Hydra override for the trial's job.
"""

# No `from __future__ import annotations`: Hydra executes plugin modules before registering them in
# sys.modules (see optuna_sweeper.py).
from typing import Any, Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep, Override, RangeSweep, Transformer
from hydra.errors import HydraException

# optuna is imported lazily: Hydra imports every plugin module on every `run.py` start.

VALID_FORMS = ("interval(low, high), tag(log, interval(low, high)), int(interval(low, high)), "
               "choice(a, b, ...), range(start, stop[, step])")


class SweepConfigError(HydraException):
    """A mistake in the sweep's settings: reported as one ``error:`` line, exit status 2, before any trial."""


class SearchSpaceError(SweepConfigError):
    """A search-space string that is not one of the supported forms."""


def distribution_from_override(override: Override, label: str | None = None):
    """A parsed sweep override -> optuna distribution: interval -> Float/IntDistribution (log with tag(log, ...),
    int with int(...)), range -> IntDistribution (FloatDistribution for float steps), choice -> Categorical."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    label = label or override.input_line or override.get_key_element()

    def fail(reason: str) -> SearchSpaceError:
        return SearchSpaceError(f"{label} is not a valid search space ({reason}); use one of: {VALID_FORMS}")

    value = override.value()
    if not override.is_sweep_override():
        raise fail("a single value, not a sweep")
    tags = set(getattr(value, "tags", set()) or set())
    unknown = tags - {"log"}
    if unknown:
        raise fail(f"unknown tag {', '.join(sorted(unknown))}; only 'log' is understood")
    log_scale = "log" in tags
    try:
        if override.is_choice_sweep():
            if log_scale:
                raise fail("tag(log, ...) applies to interval() and range(), not to choice()")
            choices = list(override.sweep_iterator(transformer=Transformer.encode))
            if not choices:
                raise fail("choice() needs at least one value")
            return CategoricalDistribution(choices)
        if override.is_range_sweep():
            assert isinstance(value, RangeSweep)
            points = list(value.range())
            if not points:
                raise fail("the range is empty")
            step = abs(value.step)
            if all(isinstance(p, int) for p in points) and isinstance(step, int):
                return IntDistribution(min(points), max(points), log=log_scale, step=step)
            return FloatDistribution(float(min(points)), float(max(points)), log=log_scale,
                                     step=None if log_scale else float(step))
        if override.is_interval_sweep():
            assert isinstance(value, IntervalSweep)
            if isinstance(value.start, int) and isinstance(value.end, int):
                return IntDistribution(value.start, value.end, log=log_scale)
            return FloatDistribution(float(value.start), float(value.end), log=log_scale)
    except SearchSpaceError:
        raise
    except (ValueError, TypeError, HydraException) as err:  # optuna's own checks, e.g. low > high, log of <= 0
        raise fail(str(err).splitlines()[0]) from None
    raise fail(f"unsupported sweep type {override.value_type.name if override.value_type else None}")


def parse_search_space(key: str, text: str, parser: OverridesParser | None = None):
    """``('algo.learning_rate', 'tag(log, interval(1e-5, 1e-3))')`` -> ``FloatDistribution(1e-5, 1e-3, log=True)``.
    Anything else raises a one-line SearchSpaceError naming the key and the valid forms."""
    label = f"hydra.sweeper.params.{key}={text!r}"
    parser = parser or OverridesParser.create()
    try:
        override = parser.parse_override(f"{key}={text}")
    except HydraException as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SearchSpaceError(f"{label} is not a valid search space ({reason}); use one of: {VALID_FORMS}") \
            from None
    return distribution_from_override(override, label)


def _bare_key(key: str) -> str:
    return key.lstrip("+~")


def build_search_space(params: dict, arguments: Sequence[str], parser: OverridesParser):
    """(distributions by override key, fixed overrides for every trial) from ``params`` and the command line.
    A command-line override of a key (sweep or plain) replaces that key's entry in ``params``."""
    from_params = {str(k): parse_search_space(str(k), str(v), parser) for k, v in params.items()}
    distributions: dict = {}
    fixed: list[str] = []
    cli_keys: set[str] = set()
    for override in parser.parse_overrides(list(arguments)):
        key = override.get_key_element()
        cli_keys.add(_bare_key(key))
        if override.is_sweep_override():
            if override.is_hydra_override():
                raise SearchSpaceError(f"{override.input_line}: hydra.* settings cannot be searched")
            distributions[key] = distribution_from_override(override)
        else:
            fixed.append(override.input_line or f"{key}={override.get_value_element_as_str()}")
    for key, dist in from_params.items():
        if _bare_key(key) not in cli_keys:
            distributions[key] = dist
    return distributions, fixed


def format_value(value: Any) -> str:
    """A suggested value as the value part of a Hydra override."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)  # ints, and choice() values (kept in override syntax by Transformer.encode)
