"""YAML mappings merged onto OmegaConf structured dataclasses, with one-line errors: an unknown key names the valid
keys, a wrong type says what the value must be, and the message names the file and the full path of the key
(``scales.paper.groups[2].arms``), which OmegaConf loses inside lists. Used by ``experiments.spec``.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from typing import Dict, List

from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException


class SpecError(ValueError):
    """A spec file is malformed; the message is one line naming the file and the bad value."""


def typed(schema: type, raw, where: str, at: str):
    """``raw`` merged onto the structured ``schema`` (a DictConfig), nested nodes first so that an error names the
    full path (OmegaConf loses it inside lists); SpecError with one line on an unknown key or a wrong type."""
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: {at.rstrip('.') or 'the file'}={raw!r} is not valid; {_type_text(schema)}")
    hints = typing.get_type_hints(schema)
    for key, value in raw.items():
        if key not in hints or value is None:
            continue
        inner, is_list = _structured(hints[key])
        if inner is None:
            continue
        if not is_list:
            typed(inner, value, where, f"{at}{key}.")
        elif not isinstance(value, list):
            raise SpecError(f"{where}: {at}{key}={value!r} is not valid; {_type_text(hints[key])}")
        else:
            for i, item in enumerate(value):
                typed(inner, item, where, f"{at}{key}[{i}].")
    try:
        node = OmegaConf.merge(OmegaConf.structured(schema), raw)
    except OmegaConfBaseException as err:
        raise SpecError(_schema_error(schema, raw, where, at, err)) from None
    missing = [k for k in hints if OmegaConf.is_missing(node, k)]
    if missing:
        raise SpecError(f"{where}: {at}{missing[0]} is required; {_type_text(hints[missing[0]])}")
    return node


def _structured(tp) -> tuple[type | None, bool]:
    """(the dataclass inside ``tp``, whether it is a list of them), or (None, False)."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) is typing.Union and len(args) == 1:
        return _structured(args[0])
    if dataclasses.is_dataclass(tp):
        return tp, False
    if typing.get_origin(tp) in (list, List) and args and dataclasses.is_dataclass(args[0]):
        return args[0], True
    return None, False


def _schema_error(schema: type, raw: dict, where: str, at: str, err: OmegaConfBaseException) -> str:
    hints = typing.get_type_hints(schema)
    if isinstance(err, ConfigKeyError) and err.key is not None and err.key not in hints:
        return f"{where}: {at}{err.key} is not a valid key; choose one of: {', '.join(hints)}"
    key = str(err.full_key or "").split(".")[0].split("[")[0]
    if key not in raw:  # OmegaConf did not say where: find the key that fails on its own
        key = next((k for k in raw if not _merges(schema, {k: raw[k]})), next(iter(raw), ""))
    index = re.match(rf"^{re.escape(key)}\[(\d+)\]$", str(err.full_key or ""))
    value, tp, shown = raw.get(key), hints.get(key), f"{at}{key}"
    if index and isinstance(value, list) and int(index.group(1)) < len(value):
        value, tp, shown = value[int(index.group(1))], _element(tp), f"{shown}[{index.group(1)}]"
    return f"{where}: {shown}={value!r} is not valid; {_type_text(tp)}"


def _merges(schema: type, raw: dict) -> bool:
    try:
        OmegaConf.merge(OmegaConf.structured(schema), raw)
        return True
    except OmegaConfBaseException:
        return False


def _element(tp):
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) is typing.Union and len(args) == 1:
        return _element(args[0])
    return args[0] if args else tp


def _type_text(tp, plural: bool = False) -> str:
    """What a value of type ``tp`` must be, in words (for the one-line errors)."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) is typing.Union and len(args) == 1:
        return _type_text(args[0], plural)
    if dataclasses.is_dataclass(tp):
        keys = ", ".join(f.name for f in dataclasses.fields(tp))
        return f"{'they' if plural else 'it'} must be {'mappings' if plural else 'a mapping'} with the keys: {keys}"
    origin = typing.get_origin(tp)
    if origin in (list, List):
        inner = args[0] if args else str
        if dataclasses.is_dataclass(inner):
            keys = ", ".join(f.name for f in dataclasses.fields(inner))
            return f"it must be a list of mappings with the keys: {keys}"
        return f"it must be a list of {_NOUNS.get(inner, ('values', 'values'))[1]}"
    if origin in (dict, Dict):
        return "it must be a mapping of names to text"
    if tp is bool:
        return "choose one of: true, false"
    return f"it must be {_NOUNS.get(tp, ('a value', 'values'))[0]}"


_NOUNS = {str: ("a string", "strings"), int: ("an integer", "integers"), float: ("a number", "numbers"),
          bool: ("true or false", "true/false values")}
