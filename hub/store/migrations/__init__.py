"""Schema migrations, one numbered SQL file per step and dialect."""

from __future__ import annotations

from importlib import resources


def migrations(dialect: str) -> list[tuple[str, str]]:
    """``(version, sql)`` pairs for ``dialect`` in the order they must run."""
    folder = resources.files(__package__).joinpath(dialect)
    files = sorted(
        (entry.name, entry.read_text()) for entry in folder.iterdir() if entry.name.endswith(".sql")
    )
    return [(name.removesuffix(".sql"), sql) for name, sql in files]
