"""Schema fields that carry their own rule, and the one walker that checks them.

A field's choices or range are declared where the field is declared::

    selection: str = choice("best", "worst", "random", "first")
    learning_rate: float = number(gt=0)
    top_p: float = number(gt=0, le=1)

The value itself still lives only in the YAML (the default is ``MISSING``). ``check_fields(node, "variant")``
checks every declared rule of the node's schema and raises one ``ConfigError`` line naming the field, the bad value
and what is allowed. Rules that relate several fields are a schema's ``check(node, cfg)`` static method, in the
same class (see ``check_option``).

A field may also say when it stays out of the run's config hash (``igrpo.job.identity``): ``neutral=<value>`` for a
field added after runs were recorded, whose value there does what the code did before the field existed (so those
runs keep their hash), and ``needs=(<sibling>, <value or tuple of values>)`` for a field that only matters while a
sibling has that value (e.g. the cap of resampling rounds while dynamic sampling is off). A ``FACT`` field describes
something the run does not choose (a model's architecture, which its weights already fix) and never enters the hash.
``unhashed_fields`` lists them for a node.

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


_UNSET = object()


def _hashing(neutral, needs) -> dict:
    return {**({} if neutral is _UNSET else {"neutral": neutral}), **({} if needs is None else {"needs": needs})}


def choice(*options: str, neutral: Any = _UNSET, needs: tuple | None = None) -> Any:
    """A field whose value must be one of ``options`` (``neutral``, ``needs``: when it stays out of the hash)."""
    return field(default=MISSING, metadata={"choices": tuple(options), **_hashing(neutral, needs)})


def number(*, gt=None, ge=None, lt=None, le=None, why: str = "", neutral: Any = _UNSET,
           needs: tuple | None = None) -> Any:
    """A numeric field whose value must lie in the given interval (None values pass: optional fields)."""
    return field(default=MISSING, metadata={"bounds": Bounds(gt, ge, lt, le, why), **_hashing(neutral, needs)})


def flag(*, neutral: Any = _UNSET, needs: tuple | None = None) -> Any:
    """A boolean field (its type is its rule) that declares when it stays out of the config hash."""
    return field(default=MISSING, metadata=_hashing(neutral, needs))


# The metadata of a field that describes what the run does not choose (e.g. the architecture of the model its path
# names): read by tools such as the memory plan, never part of the config hash. A field of a dataclass type declares
# it as ``field(default=MISSING, metadata=FACT)`` (a call of our own would be a mutable default to linters).
FACT = {"fact": True}


def unhashed_fields(node, schema: type | None = None) -> list[str]:
    """The fields of ``node`` that stay out of the config hash: facts, fields at their ``neutral`` value, or ones
    that ``needs`` a sibling value the node does not have."""
    from omegaconf import OmegaConf

    schema = schema or OmegaConf.get_type(node)
    if not dataclasses.is_dataclass(schema):
        return []
    out = []
    for f in dataclasses.fields(schema):
        if f.name not in node:
            continue
        if f.metadata.get("fact") or ("neutral" in f.metadata and node[f.name] == f.metadata["neutral"]):
            out.append(f.name)
        elif "needs" in f.metadata:
            sibling, wanted = f.metadata["needs"]
            if node.get(sibling) not in (wanted if isinstance(wanted, tuple) else (wanted,)):
                out.append(f.name)
    return out


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
