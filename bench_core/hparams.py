"""What hyperparameters an optimizer declares, and checking a setting against them.

An optimizer declares the keyword arguments of its factory's signature, its spec's ``defaults``
and its ``search_space``. A factory that also takes ``**kwargs`` declares no more than that: a
key outside those is a typo (``lrr``), refused with the nearest declared name, never passed on
silently. A value's expected type comes from the signature's annotation when there is one, else
from the default's type; an integer is accepted where a number (float) is expected, and an
integer default without an annotation (``weight_decay=0``) accepts any number. The message says
where the expected type came from.
"""
from __future__ import annotations

import difflib
import inspect
import typing
from dataclasses import dataclass
from typing import Callable

_EMPTY = inspect.Parameter.empty


@dataclass(frozen=True)
class Expected:
    """The type a hyperparameter takes ("bool", "int", "number", "str", "list" or None for
    anything) and where that came from."""

    kind: str | None
    source: str


def _annotation_kind(annotation) -> str | None:
    """bool/int/number/str/list for an annotation, None when it does not say (Any, unions...)."""
    if annotation is _EMPTY or annotation is None:
        return None
    origin = typing.get_origin(annotation)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        kinds = {_annotation_kind(a) for a in typing.get_args(annotation) if a is not type(None)}
        if kinds == {"int", "number"}:
            return "number"
        return kinds.pop() if len(kinds) == 1 else None
    target = origin or annotation
    if target is bool:
        return "bool"
    if target is int:
        return "int"
    if target is float:
        return "number"
    if target is str:
        return "str"
    if target in (list, tuple):
        return "list"
    return None


def _default_kind(default, loose_int: bool) -> str | None:
    if default is None or default is _EMPTY:
        return None
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "number" if loose_int else "int"
    if isinstance(default, float):
        return "number"
    if isinstance(default, str):
        return "str"
    if isinstance(default, (list, tuple)):
        return "list"
    return None


def _signature(factory: Callable, skip_first: bool):
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return [], True, {}
    try:
        target = factory.__init__ if inspect.isclass(factory) else factory
        hints = typing.get_type_hints(target)
    except Exception:  # unresolvable annotations: fall back to the defaults
        hints = {}
    params = list(sig.parameters.values())
    if skip_first and params and params[0].kind in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD):
        params = params[1:]
    named = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "model"]
    return named, any(p.kind == p.VAR_KEYWORD for p in params), hints


def declared(spec) -> dict[str, Expected]:
    """Every hyperparameter `spec` (an OptimizerSpec) declares, with its expected type."""
    named, _, hints = _signature(spec.factory, skip_first="training" in spec.kinds)
    where = f"the signature of {spec.name}'s factory"
    out: dict[str, Expected] = {}
    for p in named:
        kind = _annotation_kind(hints.get(p.name, p.annotation))
        if kind is not None:
            out[p.name] = Expected(kind, f"the annotation of {p.name} in {where}")
        else:
            out[p.name] = Expected(_default_kind(p.default, loose_int=True),
                                   f"the default {p.default!r} of {p.name} in {where}")
    for key, value in spec.defaults.items():
        if key not in out or out[key].kind is None:
            out[key] = Expected(_default_kind(value, loose_int=True),
                                f"the default {value!r} in the spec of {spec.name}")
    for key in spec.search_space:
        out.setdefault(key, Expected("number" if not hasattr(spec.search_space[key], "options") else None,
                                     f"the search space of {spec.name}"))
    return out


def value_matches(kind: str | None, value) -> bool:
    """Whether `value` (as from TOML or JSON) is of the expected kind."""
    is_int = isinstance(value, int) and not isinstance(value, bool)
    return {None: True, "bool": isinstance(value, bool), "int": is_int,
            "number": is_int or (isinstance(value, float) and not isinstance(value, bool)),
            "str": isinstance(value, str), "list": isinstance(value, (list, tuple))}[kind]


_KIND_TEXT = {"bool": "true or false", "int": "an integer", "number": "a number", "str": "a string",
              "list": "a list"}


def problems(spec, hparams: dict) -> list[tuple[str, str]]:
    """(key, message) for each hyperparameter of `hparams` that `spec` does not declare or that
    has the wrong type; empty when the setting is fine."""
    known = declared(spec)
    out = []
    for key, value in hparams.items():
        if key not in known:
            near = difflib.get_close_matches(key, list(known), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            out.append((key, f"optimizer {spec.name!r} takes no hyperparameter {key!r}{hint}"
                             f" (it takes: {', '.join(sorted(known)) or 'none'})"))
            continue
        expected = known[key]
        if not value_matches(expected.kind, value):
            out.append((key, f"expected {_KIND_TEXT[expected.kind]} (from {expected.source}), got {value!r}"))
    return out
