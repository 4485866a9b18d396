"""Arguments and results as JSON values, converted by the guest's own types.

One conversion for `syntra run`, `syntra.plugins` and the `tests:` of `doit wasm`:
JSON numbers, strings, lists, objects and null become the component model's integers
(range-checked), floats (an integer accepted), bool, char, string, list, tuple, record
(an object), variant/result (`{"case": payload}`, `{"ok": …}`, `{"err": …}`), option
(null or the value), enum (its case name) and flags (a list of names); core modules take
i32/i64 (range-checked) and f32/f64. Results come back the same way, so they can be
printed as JSON and compared with `expect`.
"""

from __future__ import annotations

import math
from typing import Any

import wasmtime
import wasmtime.component as wc

from syntra.errors import SyntraError


class BadValue(SyntraError):
    """A value that does not fit its type: one line, naming where it is."""


_INTS: dict[type, tuple[str, int, int]] = {
    wc.S8: ("s8", -(1 << 7), (1 << 7) - 1),
    wc.S16: ("s16", -(1 << 15), (1 << 15) - 1),
    wc.S32: ("s32", -(1 << 31), (1 << 31) - 1),
    wc.S64: ("s64", -(1 << 63), (1 << 63) - 1),
    wc.U8: ("u8", 0, (1 << 8) - 1),
    wc.U16: ("u16", 0, (1 << 16) - 1),
    wc.U32: ("u32", 0, (1 << 32) - 1),
    wc.U64: ("u64", 0, (1 << 64) - 1),
}
_FLOATS = {wc.F32: "f32", wc.F64: "f64"}
_CORE = {"i32": (-(1 << 31), (1 << 31) - 1), "i64": (-(1 << 63), (1 << 63) - 1)}


def type_name(ty: Any) -> str:
    """The WIT spelling of a component type (`list<string>`, `option<u32>`), or a core
    type's name."""
    if isinstance(ty, wasmtime.ValType):
        return str(ty)
    if type(ty) in _INTS:
        return _INTS[type(ty)][0]
    if type(ty) in _FLOATS:
        return _FLOATS[type(ty)]
    simple = {wc.Bool: "bool", wc.Char: "char", wc.String: "string"}
    if type(ty) in simple:
        return simple[type(ty)]
    if isinstance(ty, wc.ListType):
        return f"list<{type_name(ty.element)}>"
    if isinstance(ty, wc.TupleType):
        return f"tuple<{', '.join(type_name(e) for e in ty.elements)}>"
    if isinstance(ty, wc.RecordType):
        return "record { " + ", ".join(f"{n}: {type_name(t)}" for n, t in ty.fields) + " }"
    if isinstance(ty, wc.OptionType):
        return f"option<{type_name(ty.payload)}>"
    if isinstance(ty, wc.ResultType):
        ok, err = (type_name(t) if t is not None else "_" for _, t in _cases(ty))
        return f"result<{ok}, {err}>"
    if isinstance(ty, wc.EnumType):
        return "enum { " + ", ".join(ty.names) + " }"
    if isinstance(ty, wc.FlagsType):
        return "flags { " + ", ".join(ty.names) + " }"
    if isinstance(ty, wc.VariantType):
        shown = [n if t is None else f"{n}({type_name(t)})" for n, t in _cases(ty)]
        return "variant { " + ", ".join(shown) + " }"
    return type(ty).__name__.lower()


def lower(ty: Any, value: Any, where: str) -> Any:
    """`value` (as JSON gives it) as wasmtime wants it for `ty`; BadValue otherwise."""
    if isinstance(ty, wasmtime.ValType):
        return _lower_core(str(ty), value, where)
    if type(ty) in _INTS:
        name, low, high = _INTS[type(ty)]
        number = _integer(value, name, where)
        if not low <= number <= high:
            raise BadValue(f"{where}: {number} is out of range for {name} ({low}..{high})")
        return number
    if type(ty) in _FLOATS:
        return _float(value, _FLOATS[type(ty)], where)
    if isinstance(ty, wc.Bool):
        return _expect(value, bool, "a boolean", where)
    if isinstance(ty, wc.String):
        return _expect(value, str, "a string", where)
    if isinstance(ty, wc.Char):
        if not isinstance(value, str) or len(value) != 1:
            raise BadValue(f"{where}: expected one character, got {_show(value)}")
        return value
    if isinstance(ty, wc.ListType):
        items = _expect(value, list, "a list", where)
        lowered = [lower(ty.element, item, f"{where}[{n}]") for n, item in enumerate(items)]
        return bytes(lowered) if isinstance(ty.element, wc.U8) else lowered
    if isinstance(ty, wc.TupleType):
        items = _expect(value, list, "a list", where)
        if len(items) != len(ty.elements):
            raise BadValue(f"{where}: expected {len(ty.elements)} items, got {len(items)}")
        return tuple(
            lower(t, v, f"{where}[{n}]")
            for n, (t, v) in enumerate(zip(ty.elements, items, strict=True))
        )
    if isinstance(ty, wc.RecordType):
        return _record(ty, value, where)
    if isinstance(ty, wc.EnumType):
        if value not in ty.names:
            raise BadValue(f"{where}: expected one of {', '.join(ty.names)}, got {_show(value)}")
        return value
    if isinstance(ty, wc.FlagsType):
        names = _expect(value, list, "a list of flag names", where)
        unknown = [n for n in names if n not in ty.names]
        if unknown:
            raise BadValue(f"{where}: {_show(unknown[0])} is not a flag of {type_name(ty)}")
        return set(names)
    if isinstance(ty, wc.OptionType):
        return None if value is None else lower(ty.payload, value, f"{where}?")
    if isinstance(ty, wc.ResultType | wc.VariantType):
        return _case(ty, value, where)
    raise BadValue(f"{where}: {type_name(ty)} values cannot be given as JSON")


def lift(ty: Any, value: Any) -> Any:
    """A result as a JSON value (the inverse of `lower`)."""
    if isinstance(ty, wc.ListType):
        return [lift(ty.element, v) for v in value]
    if isinstance(ty, wc.TupleType):
        return [lift(t, v) for t, v in zip(ty.elements, value, strict=True)]
    if isinstance(ty, wc.RecordType):
        return {name: lift(t, getattr(value, name)) for name, t in ty.fields}
    if isinstance(ty, wc.FlagsType):
        return sorted(value)
    if isinstance(ty, wc.OptionType):
        return None if value is None else lift(ty.payload, value)
    if isinstance(ty, wc.ResultType | wc.VariantType):
        if isinstance(value, wc.Variant):
            tag, payload = value.tag, value.payload
        else:  # untagged: the case is the one whose Python type the value has
            tag, payload = next((n, value) for n, t in _cases(ty) if _is_case(t, value))
        found = dict(_cases(ty))[tag]
        return {tag: None if found is None else lift(found, payload)}
    return value


def close_enough(got: Any, expected: Any, approx: float | None) -> bool:
    """`got == expected`, with floats (anywhere inside) within `approx` when given."""
    if approx is not None and isinstance(got, float) and isinstance(expected, int | float):
        return math.isclose(got, float(expected), rel_tol=approx, abs_tol=approx)
    if isinstance(got, list) and isinstance(expected, list) and len(got) == len(expected):
        return all(close_enough(g, e, approx) for g, e in zip(got, expected, strict=True))
    if isinstance(got, dict) and isinstance(expected, dict) and got.keys() == expected.keys():
        return all(close_enough(got[k], expected[k], approx) for k in got)
    if isinstance(got, bool) or isinstance(expected, bool):
        return got is expected
    return bool(got == expected)


def _lower_core(name: str, value: Any, where: str) -> Any:
    if name in _CORE:
        number = _integer(value, name, where)
        low, high = _CORE[name]
        if not low <= number <= high:
            raise BadValue(f"{where}: {number} is out of range for {name} ({low}..{high})")
        return number
    if name in ("f32", "f64"):
        return _float(value, name, where)
    raise BadValue(f"{where}: {name} values cannot be given as JSON")


def _integer(value: Any, name: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadValue(f"{where}: expected an integer ({name}), got {_show(value)}")
    if isinstance(value, float) and not value.is_integer():
        raise BadValue(f"{where}: expected an integer ({name}), got {value}")
    return int(value)


def _float(value: Any, name: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadValue(f"{where}: expected a number ({name}), got {_show(value)}")
    try:
        return float(value)
    except OverflowError:
        raise BadValue(f"{where}: {value} is out of range for {name}") from None


def _expect(value: Any, kind: type, what: str, where: str) -> Any:
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise BadValue(f"{where}: expected {what}, got {_show(value)}")
    return value


def _record(ty: Any, value: Any, where: str) -> wc.Record:
    given = _expect(value, dict, "an object", where)
    names = [name for name, _ in ty.fields]
    extra = [key for key in given if key not in names]
    missing = [name for name in names if name not in given]
    if extra or missing:
        said = f"unknown field {_show(extra[0])}" if extra else f"missing field {_show(missing[0])}"
        raise BadValue(f"{where}: {said} ({type_name(ty)})")
    record = wc.Record()
    for name, field in ty.fields:
        setattr(record, name, lower(field, given[name], f"{where}.{name}"))
    return record


def _case(ty: Any, value: Any, where: str) -> Any:
    cases = dict(_cases(ty))
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in cases:
        shown = " or ".join(f'{{"{name}": …}}' for name in cases)
        raise BadValue(f"{where}: expected {shown}, got {_show(value)}")
    ((tag, payload),) = value.items()
    found = cases[tag]
    lowered = None if found is None else lower(found, payload, f"{where}.{tag}")
    # wasmtime takes a bare payload when the Python type tells the cases apart.
    return wc.Variant(tag, lowered) if ty._tagged() else lowered


def _cases(ty: Any) -> list[tuple[str, Any]]:
    return list(ty._cases())  # wasmtime-py has no public accessor for variant-like cases


def _is_case(ty: Any, value: Any) -> bool:
    if ty is None:
        return value is None
    classes: set[type] = set()
    ty.add_classes(classes)
    return isinstance(value, tuple(classes))


def _show(value: Any) -> str:
    import json

    try:
        return json.dumps(value)
    except TypeError:
        return repr(value)
