"""Config machinery: dataclasses with help text and range checks, YAML files, `key=value` overrides.

A config class is a dataclass whose fields carry `metadata={"help": ..., "choices": ..., "min": ..., "max": ...}`
(use `field_(default, help, ...)`). `load_config(Cls, yaml_path, overrides)` reads YAML, applies overrides,
rejects unknown keys, coerces types and checks ranges. `to_dict` gives the resolved config for the run folder.
"""
from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from pathlib import Path

import yaml


class ConfigError(ValueError):
    pass


def field_(default, help: str, choices=None, min=None, max=None):
    """A dataclass field with help text and checks (mutable defaults are copied per instance)."""
    meta = {"help": help, "choices": choices, "min": min, "max": max}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _base_type(tp):
    """(python type, optional?) for a field annotation such as `int | None` or `list[float]`."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _base_type(args[0])[0], True
    return (origin or tp), False


def coerce(name: str, value, tp):
    base, optional = _base_type(tp)
    if value is None or (isinstance(value, str) and value.lower() in ("none", "null") and optional):
        if optional:
            return None
        raise ConfigError(f"{name}: may not be empty")
    try:
        if base is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("1", "true", "yes", "on"):
                return True
            if str(value).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if base is list:
            if isinstance(value, str):
                value = yaml.safe_load(value) if value.strip().startswith("[") else value.split(",")
            (inner,) = typing.get_args(_strip_optional(tp)) or (str,)
            return [coerce(name, v, inner) for v in value]
        if base is dict:
            return dict(yaml.safe_load(value) if isinstance(value, str) else value)
        if base is int and isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        if base in (int, float) and isinstance(value, bool):
            raise ValueError(value)
        return base(value)
    except (TypeError, ValueError, yaml.YAMLError):
        raise ConfigError(f"{name}: expected {getattr(base, '__name__', base)}, got {value!r}") from None


def _strip_optional(tp):
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return args[0] if typing.get_origin(tp) in (typing.Union, types.UnionType) else tp


def check(cfg) -> None:
    """Range and choice checks from field metadata; call from __post_init__."""
    for f in dataclasses.fields(cfg):
        v, m = getattr(cfg, f.name), f.metadata
        if v is None:
            continue
        items = v if isinstance(v, list) else [v]
        for item in items:
            if isinstance(item, float) and not math.isfinite(item):
                raise ConfigError(f"{f.name}: {item!r} is not a finite number")
            if m.get("choices") and item not in m["choices"]:
                raise ConfigError(f"{f.name}: {item!r} is not one of {', '.join(map(str, m['choices']))}")
            if m.get("min") is not None and item < m["min"]:
                raise ConfigError(f"{f.name}: {item!r} is below the minimum {m['min']}")
            if m.get("max") is not None and item > m["max"]:
                raise ConfigError(f"{f.name}: {item!r} is above the maximum {m['max']}")


def parse_overrides(items: list[str]) -> dict:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value")
        k, v = item.split("=", 1)
        out[k.strip().lstrip("-").replace("-", "_")] = v
    return out


def load_config(cls, yaml_path=None, overrides: dict | None = None):
    """cls from YAML (optional) then overrides; unknown keys are errors naming the file."""
    values: dict = {}
    if yaml_path:
        try:
            loaded = yaml.safe_load(Path(yaml_path).read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"{yaml_path}: cannot read config: {e}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{yaml_path}: expected a mapping of key: value")
        values.update(_checked(cls, loaded, str(yaml_path)))
    values.update(_checked(cls, overrides or {}, "override"))
    hints = typing.get_type_hints(cls)
    return cls(**{k: coerce(k, v, hints[k]) for k, v in values.items()})


def _checked(cls, values: dict, where: str) -> dict:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return values


def to_dict(cfg) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=str))


def help_text(cls) -> str:
    lines = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        lines.append(f"  {f.name}={default!r}: {f.metadata.get('help', '')}")
    return "\n".join(lines)
