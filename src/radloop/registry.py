"""Named registries of extension points: built-ins and third-party entry points alike.

Every extension point of radloop (model backends, verifiers, ...) is a :class:`Registry`.
Entries are factories (classes or functions) registered with ``@registry.register("name")``;
the first line of a factory's docstring describes it. Built-ins are listed by module path and
imported only when first used, so a missing optional package affects only the entry that needs
it. Third-party packages add entries through the registry's entry-point group.
"""

from __future__ import annotations

import importlib
import inspect
import threading
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

__all__ = ["Registry"]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


class Registry(Generic[T]):
    """Factories of ``T`` by name, from built-in modules, registrations and entry points."""

    def __init__(
        self,
        kind: str,
        group: str,
        *,
        unknown_error: Callable[[str], Exception],
        builtins: Mapping[str, str] | None = None,
    ) -> None:
        self.kind = kind  # "model backend", "verifier": used in messages
        self.group = group
        self._unknown_error = unknown_error
        self._builtins = dict(builtins or {})
        self._factories: dict[str, Callable[..., T]] = {}
        self._lock = threading.Lock()

    def register(self, name: str) -> Callable[[F], F]:
        """A decorator registering a factory under ``name`` (lower case, no slash)."""
        if not name or name != name.lower() or "/" in name:
            raise ValueError(f'Argument "name" must be lower case without "/", got {name!r}.')

        def decorate(factory: F) -> F:
            with self._lock:
                existing = self._factories.get(name)
                if existing is not None and existing is not factory:
                    raise ValueError(f"a {self.kind} named {name!r} is already registered")
                self._factories[name] = factory
            return factory

        return decorate

    def _entry_points(self) -> dict[str, Any]:
        return {ep.name: ep for ep in entry_points(group=self.group)}

    def names(self) -> list[str]:
        """Every name: built-in, registered in this process, or from an entry point."""
        return sorted(set(self._builtins) | set(self._factories) | set(self._entry_points()))

    def factory(self, name: str) -> Callable[..., T]:
        """The factory registered as ``name``, importing its module or entry point first."""
        if name in self._factories:
            return self._factories[name]
        if name in self._builtins:
            importlib.import_module(self._builtins[name])  # may raise MissingExtraError
        else:
            ep = self._entry_points().get(name)
            if ep is None:
                raise self._unknown_error(
                    f"expected a {self.kind} name, one of {', '.join(self.names())}; got "
                    f"{name!r}. Third-party packages add one through the {self.group!r} "
                    "entry-point group."
                )
            loaded = ep.load()
            if name not in self._factories and callable(loaded):
                self.register(name)(loaded)
        if name not in self._factories:
            raise self._unknown_error(f"{name!r} was imported but registered no {self.kind}")
        return self._factories[name]

    def describe(self, name: str) -> str:
        """The one-line description of an entry (its docstring's first line)."""
        doc = inspect.getdoc(self.factory(name)) or ""
        return doc.splitlines()[0] if doc else ""
