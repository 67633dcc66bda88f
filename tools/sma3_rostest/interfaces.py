"""Discovery of the interfaces defined by ``sma3_interfaces`` and deterministic sample instances.

Every field of every message is filled from its ROS IDL type (``SLOT_TYPES``), so a new field is
covered by the round-trip tests without editing them.
"""

from __future__ import annotations

import importlib
import random
import string
from pathlib import Path
from typing import Any

from rosidl_parser import definition as idl

PACKAGE = "sma3_interfaces"


def share_dir() -> Path:
    """Return the installed share directory of ``sma3_interfaces`` (holds the .msg/.srv files)."""
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory(PACKAGE))


def message_names() -> list[str]:
    """Names of the package's messages, from the installed ``msg/*.msg`` files."""
    return sorted(p.stem for p in (share_dir() / "msg").glob("*.msg"))


def service_names() -> list[str]:
    """Names of the package's services, from the installed ``srv/*.srv`` files."""
    return sorted(p.stem for p in (share_dir() / "srv").glob("*.srv"))


def message_class(name: str) -> type:
    """The generated Python class of message ``name``."""
    return getattr(importlib.import_module(f"{PACKAGE}.msg"), name)


def service_class(name: str) -> type:
    """The generated Python class of service ``name``."""
    return getattr(importlib.import_module(f"{PACKAGE}.srv"), name)


def _class_of(t: idl.NamespacedType) -> type:
    module = importlib.import_module(".".join(t.namespaces))
    return getattr(module, t.name)


_INT_RANGES = {
    "int8": (-(2**7), 2**7 - 1),
    "uint8": (0, 2**8 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
    "octet": (0, 255),
    "char": (0, 127),
}


def _basic(rng: random.Random, typename: str) -> Any:
    if typename == "boolean":
        return rng.random() < 0.5
    if typename in ("double", "long double"):
        return rng.uniform(-1e4, 1e4)
    if typename == "float":
        import numpy as np

        return float(np.float32(rng.uniform(-1e3, 1e3)))
    if typename == "octet":
        return bytes([rng.randrange(256)])
    lo, hi = _INT_RANGES[typename]
    return rng.randint(lo, hi)


def _value(rng: random.Random, t: Any) -> Any:
    if isinstance(t, idl.BasicType):
        return _basic(rng, t.typename)
    if isinstance(t, idl.AbstractString):
        n = rng.randint(0, 24)
        return "".join(rng.choice(string.ascii_letters + string.digits + "-_./ ") for _ in range(n))
    if isinstance(t, idl.NamespacedType):
        return _fill(rng, _class_of(t)())
    if isinstance(t, idl.Array):
        return [_value(rng, t.value_type) for _ in range(t.size)]
    if isinstance(t, idl.AbstractSequence):
        upper = t.maximum_size if isinstance(t, idl.BoundedSequence) else 7
        return [_value(rng, t.value_type) for _ in range(rng.randint(0, upper))]
    raise TypeError(f"unsupported IDL type {t!r}")


def _fill(rng: random.Random, msg: Any) -> Any:
    for name, t in zip(msg.get_fields_and_field_types(), msg.SLOT_TYPES, strict=True):
        setattr(msg, name, _value(rng, t))
    return msg


def sample(cls: type, seed: int) -> Any:
    """A message of class ``cls`` with every field set from a seeded random generator."""
    return _fill(random.Random(seed), cls())


def _is_message(value: Any) -> bool:
    return hasattr(value, "get_fields_and_field_types")


def differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Field-by-field comparison of two messages; returns the paths that differ (empty = equal).

    ``actual`` may be an rclpy message or any object with the same attribute names (e.g. a message
    deserialized by the ``rosbags`` library); sequences are compared element by element and exactly.
    """
    out: list[str] = []
    if _is_message(expected):
        for name in expected.get_fields_and_field_types():
            if not hasattr(actual, name):
                out.append(f"{path}.{name}: missing")
                continue
            out += differences(getattr(expected, name), getattr(actual, name), f"{path}.{name}")
        return out
    if isinstance(expected, (str, bytes, bool, int, float)):
        got = actual.item() if hasattr(actual, "item") else actual
        if isinstance(expected, bytes) and isinstance(got, int):
            got = bytes([got])
        if got != expected:
            out.append(f"{path}: {expected!r} != {got!r}")
        return out
    exp_list, got_list = list(expected), list(actual)
    if len(exp_list) != len(got_list):
        return [f"{path}: length {len(exp_list)} != {len(got_list)}"]
    for k, (e, g) in enumerate(zip(exp_list, got_list, strict=True)):
        out += differences(e, g, f"{path}[{k}]")
    return out
