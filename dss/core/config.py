"""Config machinery: dataclasses with help text and range checks, YAML files, `key=value` overrides.

A config class is a dataclass whose fields carry `metadata={"help": ..., "choices": ..., "min": ..., "max": ...,
"below": ...}` (use `field_(default, help, ...)`). `load_config(Cls, yaml_path, overrides)` reads YAML, applies
overrides, rejects unknown keys, coerces types and checks ranges. `add_flags(parser, Cls)` is the one way a config
becomes command-line flags. `to_dict` gives the resolved config for the run folder.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import types
import typing
from pathlib import Path

import yaml

from dss.core.errors import ConfigError


def field_(default, help: str, choices=None, min=None, max=None, below=None, repeat: bool = False):
    """A dataclass field with help text and checks (mutable defaults are copied per instance): min and max are
    inclusive bounds, below an exclusive upper one (a dropout rate of 1 divides by zero). A list field's flag
    takes comma-separated values, or with repeat=True one whole value per use of the flag."""
    meta = {"help": help, "choices": choices, "min": min, "max": max, "below": below, "repeat": repeat}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _strip_optional(tp):
    """`int | None` -> int; other annotations unchanged."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(tp) if a is not type(None))
    return tp


def _base_type(tp):
    """(python type, optional?) for a field annotation such as `int | None` or `list[float]`."""
    inner = _strip_optional(tp)
    return (typing.get_origin(inner) or inner), inner is not tp


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
            if m.get("below") is not None and item >= m["below"]:
                raise ConfigError(f"{f.name}: {item!r} must be below {m['below']}")


def parse_overrides(items: list[str]) -> dict:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value")
        k, v = item.split("=", 1)
        out[k.strip().lstrip("-").replace("-", "_")] = v
    return out


def load_yaml(path, _chain: tuple[Path, ...] = ()) -> dict:
    """A YAML mapping; `extends: other.yaml` (relative to the file) supplies defaults that the file's own keys
    override, one level deep for mappings (so a sweep's `train:` block adds to its base's). `_chain`: the files
    that extend this one, so that a loop of `extends:` is an error naming it, not a RecursionError."""
    path = Path(path)
    if path.resolve() in [p.resolve() for p in _chain]:
        loop = " -> ".join(str(p) for p in (*_chain, path))
        raise ConfigError(f"{_chain[-1]}: extends: {path.name} makes a loop ({loop})")
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read config: {e}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping of key: value")
    base_name = loaded.pop("extends", None)
    if base_name is None:
        return loaded
    base = load_yaml(path.parent / str(base_name), (*_chain, path))
    for key, value in loaded.items():
        base[key] = {**base[key], **value} if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return base


def load_config(cls, yaml_path=None, overrides: dict | None = None):
    """cls from YAML (optional) then overrides; unknown keys are errors naming the file."""
    values: dict = {}
    if yaml_path:
        values.update(_checked(cls, load_yaml(yaml_path), str(yaml_path)))
    values.update(_checked(cls, overrides or {}, "override"))
    hints = typing.get_type_hints(cls)
    return cls(**{k: coerce(k, v, hints[k]) for k, v in values.items()})


def load_sectioned(cls, yaml_path, overrides: dict | None, sections: tuple[str, ...]):
    """load_config, where `SECTION.KEY=VALUE` overrides go into the mapping field SECTION (a sweep's `train:`),
    on top of the file's own values for it."""
    overrides = dict(overrides or {})
    rest = {k: v for k, v in overrides.items() if not k.startswith(tuple(s + "." for s in sections))}
    for section in sections:
        over = {k.split(".", 1)[1]: v for k, v in overrides.items() if k.startswith(section + ".")}
        if over:
            base = (load_yaml(yaml_path).get(section) or {}) if yaml_path else {}
            rest[section] = {**base, **coerce(section, rest.get(section, {}), dict), **over}
    cfg = load_config(cls, yaml_path, rest)
    if not cfg.name and yaml_path:  # the file's name names the study
        cfg.name = Path(yaml_path).stem
    return cfg


def _checked(cls, values: dict, where: str) -> dict:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return values


def to_dict(cfg) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=str))


def add_flags(parser, cls, skip=(), flags: dict | None = None) -> list[str]:
    """One flag per field of config class `cls`: help, default and choices from the field; bools get --x and
    --no-x; a list takes comma-separated values (or one value per use, for fields with repeat=True). Values
    stay as typed until `load_config` coerces and checks them, so a flag not given is None and the config
    file's value stands. Returns the field names that got a flag."""
    hints = typing.get_type_hints(cls)
    names = []
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        flag = (flags or {}).get(f.name, "--" + f.name.replace("_", "-"))
        flag = (flag,) if isinstance(flag, str) else tuple(flag)
        base, _ = _base_type(hints[f.name])
        meta, help_ = f.metadata, _flag_help(f, base)
        if base is bool:
            parser.add_argument(*flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None,
                                help=help_)
        elif base is list and meta.get("repeat"):
            parser.add_argument(*flag, dest=f.name, action="append", default=None, metavar="VALUE",
                                help=help_ + "; repeat the flag for several")
        else:
            choices = meta.get("choices") if base is not list else None
            parser.add_argument(*flag, dest=f.name, default=None, choices=choices,
                                metavar=None if choices else f.name.upper(), help=help_)
        names.append(f.name)
    return names


def _flag_help(f, base) -> str:
    """The field's help with its default (unless the help already says what the default is)."""
    text = f.metadata["help"]
    if "default" in text.lower():
        return text
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    if base is bool:
        shown = "on" if default else "off"
    elif isinstance(default, (list, tuple)):
        shown = ",".join(map(str, default)) or "none"
    else:
        shown = "none" if default in (None, "") else default
    return f"{text} (default: {shown})"


def flag_values(args, names: list[str]) -> dict:
    """The values of the flags the user gave (see add_flags)."""
    return {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}
