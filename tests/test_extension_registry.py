"""The generic registry behind every extension point (backends, verifiers)."""

from __future__ import annotations

import pytest

from radloop.registry import Registry


class UnknownThingError(LookupError):
    pass


def _things() -> Registry[object]:
    return Registry("thing", "radloop.tests.things", unknown_error=UnknownThingError)


def test_a_registered_factory_is_found_and_described_by_its_docstring() -> None:
    things = _things()

    @things.register("widget")
    def make_widget() -> object:
        """A widget for tests.

        More words that the description leaves out.
        """
        return object()

    assert things.names() == ["widget"]
    assert things.factory("widget") is make_widget
    assert things.describe("widget") == "A widget for tests."


def test_an_unknown_name_lists_the_known_ones_and_the_entry_point_group() -> None:
    things = _things()
    things.register("widget")(object)
    with pytest.raises(UnknownThingError, match=r"one of widget; got 'gadget'.*radloop.tests"):
        things.factory("gadget")


def test_names_must_be_lower_case_without_a_slash() -> None:
    with pytest.raises(ValueError, match='Argument "name" must be lower case'):
        _things().register("Widget")
