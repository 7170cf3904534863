"""Command-line flags from a params model: each field a flag, checked as the model says.

- a ``Literal`` (or an Enum) becomes a choice; ``int``/``float`` with ``ge``/``gt``/``le``/``lt``
  is checked against that range before anything is sent;
- a list is a repeatable flag that also takes comma-separated values (``--stems vocals,drums``);
- a bool is ``--x/--no-x``; a required field is a required flag;
- ``CliFlag(per_file=True)`` on a list of models (one per input file) gives each of the model's
  fields its own comma-separated flag in file order (a bool one takes the 0-based indices of
  the files where it is true: ``--mute 1``);
- anything else (a nested model, a list of models) takes JSON.

``CliFlag(name=...)`` renames a flag and ``CliFlag(switch=value)`` makes it a switch that sets
the value. Unset flags are not sent, so the kind's own defaults apply.
"""

from __future__ import annotations

import argparse
import json
import types
from collections.abc import Callable
from enum import Enum
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from shared.registry import CliFlag

PREFIX = "param:"  # argparse dests of params fields, apart from the command's own options


def field_choices(annotation: Any) -> list | None:
    """The values a field allows, when it is a ``Literal`` or an Enum (None otherwise)."""
    tp = _without_none(annotation)
    if get_origin(tp) is Literal:
        return list(get_args(tp))
    if isinstance(tp, type) and issubclass(tp, Enum):
        return [e.value for e in tp]
    return None


def flag_names(model: type[BaseModel]) -> dict[str, list[str]]:
    """Field name -> the flags (with dashes) that set it, for ``--help`` checks."""
    return {name: [f.option for f in flags] for name, flags in ParamFlags(model).by_field.items()}


class _Flag:
    def __init__(self, option: str, dest: str, kwargs: dict[str, Any]) -> None:
        self.option, self.dest, self.kwargs = option, dest, kwargs


class ParamFlags:
    """The flags of one params model; ``add_to`` a parser, then ``values`` from parsed args."""

    def __init__(self, model: type[BaseModel]) -> None:
        self.model = model
        self.by_field: dict[str, list[_Flag]] = {}
        self.per_file: dict[str, list[tuple[str, _Flag, bool]]] = {}
        for name, field in model.model_fields.items():
            self.by_field[name] = self._flags_for(name, field)

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group(f"{self.model.__name__} (the job's params)")
        for flags in self.by_field.values():
            for f in flags:
                group.add_argument(f.option, dest=f.dest, **f.kwargs)

    def values(self, args: argparse.Namespace, n_files: int) -> dict[str, Any]:
        """The params the user set (unset ones are left to the kind's defaults)."""
        params: dict[str, Any] = {}
        for name, flags in self.by_field.items():
            if name in self.per_file:
                rows = self._per_file_rows(name, args, n_files)
                if rows is not None:
                    params[name] = rows
                continue
            value = getattr(args, flags[0].dest, None)
            if value is not None:
                params[name] = value
        return params

    # -- building -------------------------------------------------------------------------------

    def _flags_for(self, name: str, field: FieldInfo) -> list[_Flag]:
        hint = next((m for m in field.metadata if isinstance(m, CliFlag)), CliFlag())
        option = "--" + (hint.name or name).replace("_", "-")
        dest = PREFIX + name
        help_ = _help(field)
        if hint.switch is not None:
            kw = {"action": "store_const", "const": hint.switch, "default": None}
            said = f"set {name} to '{hint.switch}'" + (
                f": {field.description}" if field.description else ""
            )
            return [_Flag(option, dest, {**kw, "help": said.replace("%", "%%")})]
        tp = _without_none(field.annotation)
        if hint.per_file:
            return self._per_file_flags(name, tp)
        kwargs: dict[str, Any] = {"default": None, "help": help_}
        if field.is_required():
            kwargs["required"] = True
        if tp is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif get_origin(tp) is list and _is_scalar(get_args(tp)[0]):
            item = get_args(tp)[0]
            kwargs.update(action=_CommaList, type=_parser(item, field), metavar=_metavar(item))
        elif _is_scalar(tp):
            choices = field_choices(tp)
            kwargs.update(type=_parser(tp, field), metavar=_metavar(tp))
            if choices:
                kwargs.update(choices=choices, metavar="{" + ",".join(map(str, choices)) + "}")
        else:
            kwargs.update(type=_json, metavar="JSON")
        return [_Flag(option, dest, kwargs)]

    def _per_file_flags(self, name: str, tp: Any) -> list[_Flag]:
        model = get_args(tp)[0]
        flags, subs = [], []
        for sub_name, sub in model.model_fields.items():
            hint = next((m for m in sub.metadata if isinstance(m, CliFlag)), CliFlag())
            option = "--" + (hint.name or sub_name).replace("_", "-")
            is_bool = _without_none(sub.annotation) is bool
            if is_bool:
                kw = {"metavar": "I,...", "type": _indices, "help": f"0-based indices of the "
                      f"files whose {sub_name} is on"}  # fmt: skip
            else:
                parse = _parser(_without_none(sub.annotation), sub)
                kw = {"metavar": f"{_metavar(sub.annotation)},...", "type": _comma_list(parse),
                      "help": f"per file, in file order: {_help(sub)}"}  # fmt: skip
            flag = _Flag(option, f"{PREFIX}{name}.{sub_name}", {"default": None, **kw})
            flags.append(flag)
            subs.append((sub_name, flag, is_bool))
        self.per_file[name] = subs
        return flags

    def _per_file_rows(self, name: str, args: argparse.Namespace, n: int) -> list[dict] | None:
        rows: list[dict] = [{} for _ in range(n)]
        given = False
        for sub_name, flag, is_bool in self.per_file[name]:
            values = getattr(args, flag.dest, None)
            if values is None:
                continue
            given = True
            if is_bool:
                for i in values:
                    if 0 <= i < n:
                        rows[i][sub_name] = True
            else:
                for i, v in enumerate(values[:n]):
                    rows[i][sub_name] = v
        return rows if given else None


# -- parsing one value ----------------------------------------------------------------------------


def _without_none(tp: Any) -> Any:
    if get_origin(tp) in (Union, types.UnionType):
        rest = [a for a in get_args(tp) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return tp


def _is_scalar(tp: Any) -> bool:
    tp = _without_none(tp)
    return tp in (str, int, float) or field_choices(tp) is not None


def _metavar(tp: Any) -> str:
    tp = _without_none(tp)
    choices = field_choices(tp)
    if choices:
        return "{" + ",".join(map(str, choices)) + "}"
    return {int: "N", float: "X"}.get(tp, "TEXT")


def _bounds(field: FieldInfo) -> dict[str, float]:
    out: dict[str, float] = {}
    for m in field.metadata:
        for key in ("ge", "gt", "le", "lt"):
            if getattr(m, key, None) is not None:
                out[key] = getattr(m, key)
    return out


def _range_text(bounds: dict[str, float]) -> str:
    lo = (
        f">= {bounds['ge']:g}"
        if "ge" in bounds
        else f"> {bounds['gt']:g}"
        if "gt" in bounds
        else ""
    )
    hi = (
        f"<= {bounds['le']:g}"
        if "le" in bounds
        else f"< {bounds['lt']:g}"
        if "lt" in bounds
        else ""
    )
    return " and ".join(x for x in (lo, hi) if x)


def _parser(tp: Any, field: FieldInfo) -> Callable[[str], Any]:
    """A function from the flag's text to the value, checking the type and the field's range."""
    tp = _without_none(tp)
    choices = field_choices(tp)
    base = type(choices[0]) if choices else tp if tp in (int, float) else str
    bounds = _bounds(field)

    def parse(text: str) -> Any:
        try:
            value = base(text)
        except ValueError:
            what = {int: "a whole number", float: "a number"}.get(base, "text")
            raise argparse.ArgumentTypeError(f"expected {what}, got '{text}'") from None
        if choices and value not in choices:
            allowed = ", ".join(map(str, choices))
            raise argparse.ArgumentTypeError(f"'{text}' is not one of {allowed}")
        ok = (
            ("ge" not in bounds or value >= bounds["ge"])
            and ("gt" not in bounds or value > bounds["gt"])
            and ("le" not in bounds or value <= bounds["le"])
            and ("lt" not in bounds or value < bounds["lt"])
        )
        if not ok:
            raise argparse.ArgumentTypeError(
                f"{text} is out of range: must be {_range_text(bounds)}"
            )
        return value

    parse.__name__ = base.__name__  # argparse names the type in its messages
    return parse


def _help(field: FieldInfo) -> str:
    parts = [field.description or ""]
    bounds = _bounds(field)
    if bounds:
        parts.append(f"({_range_text(bounds)})")
    default = None if field.is_required() else field.get_default(call_default_factory=True)
    if default not in (None, "", [], ()):
        shown = ",".join(map(str, default)) if isinstance(default, list) else default
        parts.append(f"(default: {shown})")
    return " ".join(p for p in parts if p).replace("%", "%%")


def _comma_list(parse: Callable[[str], Any]) -> Callable[[str], list]:
    def parse_all(text: str) -> list:
        return [parse(x.strip()) for x in text.split(",") if x.strip()]

    return parse_all


def _indices(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 0-based file indices, got '{text}'") from None


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON ({e.msg})") from None


class _CommaList(argparse.Action):
    """A repeatable flag whose values may also be comma-separated: ``--x a,b --x c``."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        items = list(getattr(namespace, self.dest, None) or [])
        for x in str(values).split(","):
            if x.strip():
                try:
                    items.append(self._item(x.strip()))
                except argparse.ArgumentTypeError as e:
                    raise argparse.ArgumentError(self, str(e)) from None
        setattr(namespace, self.dest, items)

    def __init__(self, option_strings, dest, type=None, **kw) -> None:  # noqa: A002
        self._item = type or str
        super().__init__(option_strings, dest, **kw)
