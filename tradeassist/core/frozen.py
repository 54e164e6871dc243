"""Read-only containers that still copy, pickle and compare like plain ones.

``types.MappingProxyType`` is read-only but cannot be copied or pickled, which breaks
``copy.deepcopy`` of a frozen value and sending one to another process. ``FrozenDict`` is a
``dict`` whose mutating methods raise ``TypeError``; it equals a dict with the same items and
serialises as one.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, NoReturn


class FrozenDict(dict):
    """A dict that refuses to change."""

    __slots__ = ()

    def _refuse(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError(f"{type(self).__name__} is read-only")

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(frozenset(self.items()))

    def __reduce__(self) -> tuple[type[FrozenDict], tuple[dict[Any, Any]]]:
        return (type(self), (dict(self),))

    def __copy__(self) -> FrozenDict:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenDict:
        return type(self)({copy.deepcopy(k, memo): copy.deepcopy(v, memo) for k, v in self.items()})

    def __repr__(self) -> str:
        return f"FrozenDict({dict.__repr__(self)})"


def freeze(value: Any) -> Any:
    """A read-only deep copy: mappings become FrozenDict, lists and tuples become tuples."""
    if isinstance(value, Mapping):
        return FrozenDict({key: freeze(item) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(item) for item in value)
    return value
