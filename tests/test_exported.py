"""The public API is what ``hub/__init__.py`` exports, and nothing is exported by accident."""

from __future__ import annotations

import hub


def test_all_is_sorted_and_every_name_exists() -> None:
    assert hub.__all__ == sorted(hub.__all__)
    for name in hub.__all__:
        assert hasattr(hub, name), name


def test_public_classes_and_functions_are_documented() -> None:
    for name in hub.__all__:
        value = getattr(hub, name)
        if isinstance(value, type) or callable(value):
            assert (value.__doc__ or "").strip(), f"{name} has no docstring"
