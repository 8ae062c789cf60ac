"""LinkrAPI's prompt check: Unicode NFKD normalisation, then a word-boundary blocklist.

NFKD folds compatibility forms (full-width letters, ligatures) to plain ones and splits accents
off their letters; dropping the combining marks then makes full-width ``gore`` and ``gorè`` read
``gore``. Word boundaries keep innocent words that merely contain a term (``gorgeous``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

#: Terms the simulator refuses; tests and the demo use these to trigger the content policy.
DEFAULT_TERMS = ("gore", "nsfw", "nude", "naked", "porn", "decapitated", "bloodbath")


def normalize(prompt: str) -> str:
    """NFKD, without combining marks, case-folded."""
    decomposed = unicodedata.normalize("NFKD", prompt)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


class Blocklist:
    """Finds the first blocked term in a prompt."""

    def __init__(self, terms: Iterable[str] = DEFAULT_TERMS) -> None:
        cleaned = sorted({normalize(t) for t in terms if t.strip()}, key=len, reverse=True)
        self._pattern = (
            re.compile(r"\b(?:" + "|".join(re.escape(t) for t in cleaned) + r")\b")
            if cleaned
            else None
        )

    def match(self, prompt: str) -> str | None:
        """The blocked term ``prompt`` contains, or None."""
        if self._pattern is None:
            return None
        found = self._pattern.search(normalize(prompt))
        return found.group(0) if found else None
