"""Name -> class registries, so adding a network, a method or a noise model is one decorator."""
from __future__ import annotations

from typing import Callable, Generic, TypeVar

from .errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    """A dictionary of named constructors with helpful errors for unknown names."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, *aliases: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            for key in (name, *aliases):
                if key in self._items and self._items[key] is not obj:
                    raise ValueError(f"{self.kind} {key!r} is registered twice")
                self._items[key] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        _import_plugins()
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "(none)"
            raise UserError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def names(self) -> list[str]:
        _import_plugins()
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        _import_plugins()
        return name in self._items


NETS: Registry = Registry("network")
METHODS: Registry = Registry("method")

_PLUGIN_PACKAGES = ("selfrestore.nets", "selfrestore.methods")
_imported = False


def _import_plugins() -> None:
    """Import every module of the nets/ and methods/ packages so their decorators run."""
    global _imported
    if _imported:
        return
    _imported = True
    import importlib
    import pkgutil

    for package_name in _PLUGIN_PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{package_name}.{info.name}")
