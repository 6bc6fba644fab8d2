"""Code arithmetic for the hierarchical dimensions: GB/T 4754-2017 industries and region codes."""

from __future__ import annotations

from functools import lru_cache

#: GB/T 4754-2017 sections and the (first, last) division each covers.
SECTION_DIVISIONS: dict[str, tuple[int, int]] = {
    "A": (1, 5),
    "B": (6, 12),
    "C": (13, 43),
    "D": (44, 46),
    "E": (47, 50),
    "F": (51, 52),
    "G": (53, 60),
    "H": (61, 62),
    "I": (63, 65),
    "J": (66, 69),
    "K": (70, 70),
    "L": (71, 72),
    "M": (73, 75),
    "N": (76, 79),
    "O": (80, 82),
    "P": (83, 83),
    "Q": (84, 85),
    "R": (86, 90),
    "S": (91, 96),
    "T": (97, 97),
}


@lru_cache(maxsize=4096)
def industry_prefixes(code: str) -> tuple[str, ...]:
    """Digit prefixes a code stands for: section letter → its divisions, ``C3911`` → ``3911``."""
    code = code.strip().upper()
    if code in SECTION_DIVISIONS:
        first, last = SECTION_DIVISIONS[code]
        return tuple(f"{d:02d}" for d in range(first, last + 1))
    if code[:1].isalpha():
        code = code[1:]
    return (code,)


def section_of(code: str) -> str | None:
    """The section letter a digit code belongs to (division codes are unique across sections)."""
    digits = industry_prefixes(code)[0]
    division = int(digits[:2])
    for letter, (first, last) in SECTION_DIVISIONS.items():
        if first <= division <= last:
            return letter
    return None


@lru_cache(maxsize=4096)
def region_prefix(code: str) -> str:
    """Drop trailing all-zero groups: ``310000`` → ``31``, ``310118106000`` → ``310118106``."""
    code = code.strip()
    groups = [code[0:2], code[2:4], code[4:6]]
    rest = code[6:]
    groups += [rest[i : i + 3] for i in range(0, len(rest), 3)]
    while len(groups) > 1 and set(groups[-1]) == {"0"}:
        groups.pop()
    return "".join(groups)


def on_one_branch(a: str, b: str) -> bool:
    """Either prefix is a prefix of the other."""
    return a.startswith(b) or b.startswith(a)
