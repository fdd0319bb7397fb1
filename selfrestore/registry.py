"""Name -> class registries, so adding a network, a method or a noise model is one decorator."""
from __future__ import annotations

import threading
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
_importing = threading.RLock()  # two threads loading their first models at once: the second waits for all
_in_progress = False  # (seen only by the thread holding the lock: a module's import that asks again)


def _import_plugins() -> None:
    """Import every module of the nets/ and methods/ packages so their decorators run (once per process; a
    thread that comes while another imports them waits, rather than reading half-filled registries)."""
    global _imported, _in_progress
    if _imported:
        return
    with _importing:
        if _imported or _in_progress:  # done meanwhile by another thread, or asked during the imports
            return
        _in_progress = True
        try:
            import importlib
            import pkgutil

            for package_name in _PLUGIN_PACKAGES:
                package = importlib.import_module(package_name)
                for info in pkgutil.iter_modules(package.__path__):
                    if not info.name.startswith("_"):
                        importlib.import_module(f"{package_name}.{info.name}")
            _imported = True
        finally:
            _in_progress = False
