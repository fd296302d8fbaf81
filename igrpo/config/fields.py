"""Schema fields that carry their own rule, and the one walker that checks them.

A field's choices or range are declared where the field is declared::

    selection: str = choice("best", "worst", "random", "first")
    learning_rate: float = number(gt=0)
    top_p: float = number(gt=0, le=1)

The value itself still lives only in the YAML (the default is ``MISSING``). ``check_fields(node, "variant")``
checks every declared rule of the node's schema and raises one ``ConfigError`` line naming the field, the bad value
and what is allowed. Rules that relate several fields are a schema's ``check(node, cfg)`` static method, in the
same class (see ``check_option``).

Why metadata and not ``Literal``/``Enum`` types: OmegaConf 2.3 (under Hydra 1.3) does not accept ``Literal``, and an
``Enum`` field turns the value into an enum member (logged params and the config hash would change) and fails with
OmegaConf's multi-line error instead of ours.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from igrpo.errors import ConfigError, choice_error


@dataclass(frozen=True)
class Bounds:
    """An interval: ``gt``/``ge`` below, ``lt``/``le`` above (None = unbounded on that side)."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    why: str = ""  # appended to the message, e.g. "(words per n-gram)"

    def holds(self, value) -> bool:
        return not ((self.gt is not None and not value > self.gt) or (self.ge is not None and not value >= self.ge)
                    or (self.lt is not None and not value < self.lt) or (self.le is not None and not value <= self.le))

    def describe(self) -> str:
        low = (f"({_num(self.gt)}" if self.gt is not None else f"[{_num(self.ge)}" if self.ge is not None else None)
        high = (f"{_num(self.lt)})" if self.lt is not None else f"{_num(self.le)}]" if self.le is not None else None)
        if low and high:
            return f"in {low}, {high}"
        if low:
            return f"{'>' if self.gt is not None else '>='} {low[1:]}"
        return f"{'<' if self.lt is not None else '<='} {high[:-1]}"


def _num(x) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def choice(*options: str) -> Any:
    """A field whose value must be one of ``options``."""
    return field(default=MISSING, metadata={"choices": tuple(options)})


def number(*, gt=None, ge=None, lt=None, le=None, why: str = "") -> Any:
    """A numeric field whose value must lie in the given interval (None values pass: optional fields)."""
    return field(default=MISSING, metadata={"bounds": Bounds(gt, ge, lt, le, why)})


def check_value(path: str, value, metadata) -> None:
    """One field's declared rule (``metadata`` of a dataclass field) against ``value``."""
    if value is None:
        return
    choices = metadata.get("choices")
    if choices is not None and value not in choices:
        raise choice_error(path, value, choices)
    bounds = metadata.get("bounds")
    if bounds is not None and not bounds.holds(value):
        raise ConfigError(f"{path}={value} is not valid; it must be {bounds.describe()}"
                          + (f" {bounds.why}" if bounds.why else ""))


def check_fields(node, prefix: str, schema: type | None = None) -> None:
    """Every declared rule of ``node``'s schema (its OmegaConf type, or ``schema``), in field order."""
    from omegaconf import OmegaConf

    schema = schema or OmegaConf.get_type(node)
    if not dataclasses.is_dataclass(schema):
        return
    for f in dataclasses.fields(schema):
        if f.metadata and f.name in node:
            check_value(f"{prefix}.{f.name}" if prefix else f.name, node[f.name], f.metadata)


def check_option(node, prefix: str, cfg) -> None:
    """``check_fields`` and then the schema's own cross-field rules (``check(node, cfg)``), if it has any."""
    from omegaconf import OmegaConf

    check_fields(node, prefix)
    own = getattr(OmegaConf.get_type(node), "check", None)
    if own is not None:
        own(node, cfg)
