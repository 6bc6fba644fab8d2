"""The indexed matcher: per-dimension bitmaps over partner slots, with the reference's results.

Each partner holds a *slot*, a bit position. For each index key, a Python ``int`` is the bitmap
of the slots that have the key:

=====================  ====================================================================
``("kind", k)``        unpaused partners of kind ``k`` (paused partners hold no keys at all)
``("ind=", b)``        partners whose expanded industry codes include ``b``
``("ind^", q)``        partners with an expanded industry code that is longer than ``q`` and
                       starts with it (``q`` a proper prefix, so leaf codes add no key)
``("reg=", b)``        the same for region prefixes (``310118106``, ``310118``, ``31`` …),
``("reg^", q)``        at region group boundaries (lengths 2, 4, 6, 9)
``("park", p)``        partners covering park ``p``; ``("scale", s)`` the same for scales
``("any", t)``         partners whose ``tags_any`` holds ``t``; ``("any*", "")``: empty ``tags_any``
``("excl", t)``        partners excluding tag ``t``
``(dim + "?", "")``    partners whose coverage of ``dim`` is empty (the *unknown* verdict)
=====================  ====================================================================

A document is judged in two steps.

1. **Candidates.** A scope code ``a`` and a coverage code ``b`` are on one branch when ``b``
   starts with ``a`` (the ``=`` and ``^`` bitmaps of ``a``) or ``a`` starts with ``b`` (the
   ``=`` bitmaps of ``a``'s proper prefixes). So one dimension's *yes* set is an OR of a few
   bitmaps, and it is widened by that dimension's *unknown* bitmap. The candidates are the AND
   over dimensions, after ``~excl``. Each AND or OR is a C loop over about 3,300 machine words
   at 100,000 partners, a few microseconds. The candidates are exactly the partners the
   reference relays.
2. **Reasons.** Each candidate gets the reference's reasons and unknowns. They are cached per
   document by the partner's coverage, because thousands of partners share
   ``regions: ["310118106"]``. So this step costs time in proportion to the number of matches.

Equal results are shared. Two partners with the same relevant coverage get the same
``MatchResult`` object, which is frozen; do not mutate its lists.

Upserting one partner changes only the bitmaps of keys it gains or loses. Each such change copies
one ``int`` of at most n/8 bytes, which is far below a millisecond at 100,000 partners. Nothing is
rebuilt. Loading many partners at once through the constructor builds each bitmap once, in id
order, so the slot order is the id order and results need no sort.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import accumulate, compress, repeat
from operator import add

from relay.core.matching.codes import industry_prefixes, region_prefix
from relay.core.models import Audience, Dimension, Document, MatchResult, Partner, Reason

Key = tuple[str, str]
Codes = tuple[str, ...]

_KIND, _IND, _REG, _PARKS, _SCALES, _TAGS = range(6)
#: Canonical region prefixes end at these lengths (2-2-2-3-3 digit groups), so a prefix
#: relation between two of them always falls on one of these lengths.
_REGION_LENGTHS = (2, 4, 6, 9, 12)
_BITS01 = bytes.maketrans(b"01", b"\x00\x01")
#: Up to this many slots a key keeps a sorted list instead of a bitmap.
_FEW = 64


def _region_expand(code: str) -> Codes:
    return (region_prefix(code),)


def _industry_sub_lengths(code: str) -> range:
    return range(1, len(code))


def _region_sub_lengths(code: str) -> Iterator[int]:
    return (n for n in _REGION_LENGTHS if n < len(code))


def _slots(bitmap: int) -> list[int]:
    """The set bit positions of a bitmap, ascending, without a Python step per zero bit."""
    bits = format(bitmap, "b")[::-1]
    if bitmap.bit_count() * 4 > len(bits):
        return list(compress(range(len(bits)), bits.encode("ascii").translate(_BITS01)))
    # Sparse: the runs of zeros between ones give the gaps; accumulate turns them into positions.
    gaps = bits.split("1")
    gaps.pop()
    return list(accumulate(map(add, map(len, gaps), repeat(1)), initial=-1))[1:]


def _bitmap(slots: list[int]) -> int:
    """The bitmap of ascending slots, built in one buffer rather than one ``int`` per bit."""
    flags = bytearray(slots[-1] // 8 + 1)
    for slot in slots:
        flags[slot >> 3] |= 1 << (slot & 7)
    return int.from_bytes(flags, "little")


class _Coder:
    """Turns partners' coverage on one dimension into small ints naming their ``Reason``.

    Code 0 is the no-reason case: *unknown* for coverage dimensions (empty coverage), and
    "applies to all" for tags (empty ``tags_any``). Equal reasons get equal codes, so partners
    whose coverage differs but meets the scope in the same way share one ``MatchResult``.
    """

    def __init__(self, dimension: Dimension, zero: Reason | None = None) -> None:
        self.dimension = dimension
        self.reasons: list[Reason | None] = [zero]
        self._by_content: dict[tuple[Codes, Codes], int] = {}

    def _canonical(self, met_scope: Codes, met_cover: Codes) -> int:
        content = (met_scope, met_cover)
        code = self._by_content.get(content)
        if code is None:
            code = self._by_content[content] = len(self.reasons)
            self.reasons.append(
                Reason(
                    dimension=self.dimension,
                    scope_codes=list(met_scope),
                    partner_codes=list(met_cover),
                )
            )
        return code

    def table(self, comps: Iterable[int], values: Sequence[Codes]) -> dict[int, int]:
        """Interned coverage id → reason code, for each distinct coverage among the matches."""
        raise NotImplementedError


class _HierarchyCoder(_Coder):
    """Industries and regions: the reference's met scope and coverage codes, in its order."""

    def __init__(
        self, dimension: Dimension, scope: Sequence[str], expand: Callable[[str], Codes]
    ) -> None:
        super().__init__(dimension)
        self.scope = scope
        self.expand = expand
        # Prefix of an expanded scope code → bitmask of scope indices (coverage code coarser or
        # equal); expanded scope code → bitmask (coverage code finer).
        self._sub: dict[str, int] = {}
        self._exact: dict[str, int] = {}
        self._masks: dict[str, int] = {}
        #: Coverage code → reason code when it is the only coverage code that meets the scope.
        self._single: dict[str, int] = {}
        for i, s in enumerate(scope):
            bit = 1 << i
            for a in expand(s):
                self._exact[a] = self._exact.get(a, 0) | bit
                for n in range(1, len(a) + 1):
                    self._sub[a[:n]] = self._sub.get(a[:n], 0) | bit
        # A scope code can only be a prefix of a coverage code at its own length.
        self._lengths = sorted({len(a) for a in self._exact})

    def mask(self, code: str) -> int:
        """Bitmask of the scope codes that ``code`` shares a branch with."""
        mask = self._masks.get(code)
        if mask is None:
            mask = 0
            sub, exact = self._sub, self._exact
            for b in self.expand(code):
                mask |= sub.get(b, 0)
                for n in self._lengths:
                    if n >= len(b):
                        break
                    mask |= exact.get(b[:n], 0)
            self._masks[code] = mask
        return mask

    def _one(self, code: str) -> int:
        """The reason when ``code`` is the partner's only coverage code that meets the scope."""
        found = self._single.get(code)
        if found is None:
            mask = self.mask(code)
            met = dict.fromkeys(s for i, s in enumerate(self.scope) if mask >> i & 1)
            found = self._single[code] = self._canonical(tuple(met), (code,))
        return found

    def _many(self, coverage: Codes, masks: list[int]) -> int:
        # The reference's loop: scope order first, then coverage order, each code once.
        scope_met: dict[str, None] = {}
        cover_met: dict[str, None] = {}
        for i, s in enumerate(self.scope):
            for c, m in zip(coverage, masks, strict=True):
                if m >> i & 1:
                    scope_met[s] = cover_met[c] = None
        return self._canonical(tuple(scope_met), tuple(cover_met))

    def table(self, comps: Iterable[int], values: Sequence[Codes]) -> dict[int, int]:
        out: dict[int, int] = {}
        single, mask, known = self._single, self.mask, self._masks
        for comp in comps:
            coverage = values[comp]
            if not coverage:
                out[comp] = 0
            elif len(coverage) == 1:
                code = single.get(coverage[0])
                out[comp] = self._one(coverage[0]) if code is None else code
            else:
                masks = [known[c] if c in known else mask(c) for c in coverage]
                meeting = {c for c, m in zip(coverage, masks, strict=True) if m}
                assert meeting, "a candidate meets the scope on every restricted dimension"
                if len(meeting) == 1:
                    out[comp] = self._one(meeting.pop())
                else:
                    out[comp] = self._many(coverage, masks)
        return out


class _FlatCoder(_Coder):
    """Parks, scales and tags: the scope values found in the coverage, in scope order."""

    def __init__(self, dimension: Dimension, scope: Sequence[str], zero: Reason | None = None):
        super().__init__(dimension, zero)
        self.scope = scope

    def table(self, comps: Iterable[int], values: Sequence[Codes]) -> dict[int, int]:
        out: dict[int, int] = {}
        for comp in comps:
            coverage = values[comp]
            if coverage:
                met = tuple(s for s in self.scope if s in coverage)
                out[comp] = self._canonical(met, met)
            else:
                out[comp] = 0
        return out


class _KindCoder(_Coder):
    """Audiences: the reference lists every scope audience and the partner's kind."""

    def __init__(self, scope: Sequence[str]) -> None:
        super().__init__(Dimension.audiences)
        self.scope = tuple(scope)

    def table(self, comps: Iterable[int], values: Sequence[Codes]) -> dict[int, int]:
        return {comp: self._canonical(self.scope, values[comp]) for comp in comps}


class MatchIndex:
    """All partner profiles, indexed for matching documents against them (DESIGN §5)."""

    def __init__(self, partners: Iterable[Partner] = ()) -> None:
        self._slot_of: dict[str, int] = {}
        self._partners: list[Partner | None] = []
        self._ids: list[str] = []
        #: Per signature position (kind, industries, regions, parks, scales, tags_any), per slot:
        #: the interned id of the partner's codes there (-1 for a free slot). Columns rather
        #: than a tuple per slot, so matching reads one compact list per dimension.
        self._columns: list[list[int]] = [[] for _ in range(6)]
        self._free: list[int] = []
        #: Whether ascending slots are ascending ids, so results need no sort. New partners
        #: appended in id order keep it; a reused slot or an out-of-order id clears it.
        self._in_id_order = True
        #: Key → its slots: a bitmap, or a sorted list while there are at most ``_FEW`` of them
        #: (a rare industry class would otherwise cost n/8 bytes, 12.5 kB at 100,000).
        self._postings: dict[Key, int | list[int]] = {}
        # Interned coverage tuples: value → id, id → value, id → how many slots use it.
        self._comp_id: dict[Codes, int] = {}
        self._comp_val: list[Codes] = []
        self._comp_refs: list[int] = []
        self._comp_free: list[int] = []
        self._load(partners)

    def _load(self, partners: Iterable[Partner]) -> None:
        """Bulk load into an empty index: slots in id order, each bitmap built once.

        Upserting one by one would also work, but it would copy every growing bitmap for each
        partner, which is slower and leaves the heap fragmented.
        """
        latest = {p.id: p for p in partners}  # a later profile with the same id wins
        postings: dict[Key, list[int]] = {}
        for slot, pid in enumerate(sorted(latest)):
            partner = latest[pid]
            self._slot_of[pid] = slot
            self._partners.append(partner)
            self._ids.append(pid)
            for column, comp in zip(self._columns, self._signature(partner), strict=True):
                column.append(comp)
            for key in _keys(partner):
                postings.setdefault(key, []).append(slot)
        for key, slots in postings.items():
            self._postings[key] = slots if len(slots) <= _FEW else _bitmap(slots)

    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, partner_id: object) -> bool:
        return partner_id in self._slot_of

    def get(self, partner_id: str) -> Partner | None:
        slot = self._slot_of.get(partner_id)
        return None if slot is None else self._partners[slot]

    def partners(self) -> list[Partner]:
        """Every partner held, paused ones too, by id."""
        return sorted((p for p in self._partners if p is not None), key=lambda p: p.id)

    # -- updates ---------------------------------------------------------------------------

    def upsert(self, partner: Partner) -> None:
        """Add a partner or replace the one with its id; touches only the keys that changed."""
        slot = self._slot_of.get(partner.id)
        if slot is None:
            if self._free:
                slot = heapq.heappop(self._free)
                self._in_id_order = False
            else:
                slot = len(self._partners)
                if self._ids and partner.id < self._ids[-1]:
                    self._in_id_order = False
                self._partners.append(None)
                self._ids.append("")
                for column in self._columns:
                    column.append(-1)
            old_keys: set[Key] = set()
            self._slot_of[partner.id] = slot
            self._ids[slot] = partner.id
        else:
            old = self._partners[slot]
            assert old is not None
            old_keys = _keys(old)
            self._release(slot)
        self._apply(slot, old_keys, _keys(partner))
        self._partners[slot] = partner
        for column, comp in zip(self._columns, self._signature(partner), strict=True):
            column[slot] = comp

    def remove(self, partner_id: str) -> bool:
        """Drop a partner; False if it was not there."""
        slot = self._slot_of.pop(partner_id, None)
        if slot is None:
            return False
        old = self._partners[slot]
        assert old is not None
        self._apply(slot, _keys(old), set())
        self._release(slot)
        self._partners[slot] = None
        self._ids[slot] = ""
        heapq.heappush(self._free, slot)
        return True

    def _apply(self, slot: int, old: set[Key], new: set[Key]) -> None:
        bit = 1 << slot
        postings = self._postings
        for key in old - new:
            value = postings[key]
            if isinstance(value, list):
                value.remove(slot)
                if not value:
                    del postings[key]
            else:
                value &= ~bit
                # Back to a list well below the limit, so a key hovering there does not flip.
                postings[key] = value if value.bit_count() > _FEW // 2 else _slots(value)
        for key in new - old:
            found = postings.get(key)
            if found is None:
                postings[key] = [slot]
            elif isinstance(found, list):
                bisect.insort(found, slot)
                if len(found) > _FEW:
                    postings[key] = _bitmap(found)
            else:
                postings[key] = found | bit

    def _get(self, key: Key) -> int:
        """The bitmap of a key's slots (0 when none)."""
        value = self._postings.get(key, 0)
        return value if isinstance(value, int) else _bitmap(value)

    def _intern(self, value: Codes) -> int:
        comp = self._comp_id.get(value)
        if comp is None:
            if self._comp_free:
                comp = self._comp_free.pop()
                self._comp_val[comp] = value
                self._comp_refs[comp] = 0
            else:
                comp = len(self._comp_val)
                self._comp_val.append(value)
                self._comp_refs.append(0)
            self._comp_id[value] = comp
        self._comp_refs[comp] += 1
        return comp

    def _signature(self, p: Partner) -> tuple[int, ...]:
        cov, wants = p.coverage, p.interests
        return (
            self._intern((str(p.kind),)),
            self._intern(tuple(cov.industries)),
            self._intern(tuple(cov.regions)),
            self._intern(tuple(cov.parks)),
            self._intern(tuple(str(s) for s in cov.scales)),
            self._intern(tuple(wants.tags_any)),
        )

    def _release(self, slot: int) -> None:
        for column in self._columns:
            comp = column[slot]
            column[slot] = -1
            self._comp_refs[comp] -= 1
            if not self._comp_refs[comp]:
                del self._comp_id[self._comp_val[comp]]
                self._comp_val[comp] = ()
                self._comp_free.append(comp)

    # -- matching --------------------------------------------------------------------------

    def _any(self, keys: Iterable[Key]) -> int:
        get = self._get
        out = 0
        for key in keys:
            out |= get(key)
        return out

    def _hierarchical_yes(
        self, ns: str, scope: Iterable[str], expand: Callable[[str], Codes]
    ) -> int:
        get = self._get
        out = 0
        for s in scope:
            for a in expand(s):
                out |= get((ns + "=", a)) | get((ns + "^", a))
                for n in range(1, len(a)):
                    out |= get((ns + "=", a[:n]))
        return out

    def _candidates(self, document: Document) -> int:
        """The bitmap of slots the document is relayed to."""
        scope, get = document.scope, self._get
        kinds = scope.audiences or list(Audience)
        cand = self._any(("kind", str(k)) for k in kinds)
        if cand and scope.industries:
            cand &= self._hierarchical_yes("ind", scope.industries, industry_prefixes) | get(
                ("ind?", "")
            )
        if cand and scope.regions:
            cand &= self._hierarchical_yes("reg", scope.regions, _region_expand) | get(("reg?", ""))
        if cand and scope.parks:
            cand &= self._any(("park", p) for p in scope.parks) | get(("park?", ""))
        if cand and scope.scales:
            cand &= self._any(("scale", str(s)) for s in scope.scales) | get(("scale?", ""))
        if cand:
            cand &= get(("any*", "")) | self._any(("any", t) for t in document.tags)
        if cand:
            excluded = self._any(("excl", t) for t in document.tags)
            if excluded:
                cand &= ~excluded
        return cand

    def match(self, document: Document) -> list[tuple[Partner, MatchResult]]:
        """Every partner the document is relayed to, with why, by partner id.

        Equal to ``reference.match_all(document, partners)`` sorted by partner id. Each step
        is a C-level pass over the matches; Python runs once per *distinct* coverage.
        """
        slots = _slots(self._candidates(document))
        if not slots:
            return []
        if not self._in_id_order:
            slots.sort(key=self._ids.__getitem__)
        judge = _Judgement(document)
        columns = []
        for position, coder in judge.coders:
            comps = list(map(self._columns[position].__getitem__, slots))
            columns.append(map(coder.table(set(comps), self._comp_val).__getitem__, comps))
        keys = list(zip(*columns, strict=True))
        results = {key: judge.result(key) for key in set(keys)}
        partners = map(self._partners.__getitem__, slots)
        return list(zip(partners, map(results.__getitem__, keys), strict=True))  # type: ignore[arg-type]


class _Judgement:
    """One document's reasons, coded per dimension, and the results built from those codes."""

    def __init__(self, document: Document) -> None:
        scope = document.scope
        self.all = {d: Reason(dimension=d, applies_to_all=True) for d in Dimension}
        restricted: list[tuple[int, _Coder, bool]] = [
            (_KIND, _KindCoder([str(a) for a in scope.audiences]), bool(scope.audiences)),
            (
                _IND,
                _HierarchyCoder(Dimension.industries, scope.industries, industry_prefixes),
                bool(scope.industries),
            ),
            (
                _REG,
                _HierarchyCoder(Dimension.regions, scope.regions, _region_expand),
                bool(scope.regions),
            ),
            (_PARKS, _FlatCoder(Dimension.parks, scope.parks), bool(scope.parks)),
            (
                _SCALES,
                _FlatCoder(Dimension.scales, [str(s) for s in scope.scales]),
                bool(scope.scales),
            ),
            (_TAGS, _FlatCoder(Dimension.tags, document.tags, self.all[Dimension.tags]), True),
        ]
        #: The signature positions this document's results depend on, with their coders.
        self.coders = [(pos, coder) for pos, coder, used in restricted if used]
        #: Per dimension in the reference's order: the key index of its code, or the fixed
        #: "applies to all" reason when the scope does not restrict it.
        self._plan: list[tuple[int, _Coder] | Reason] = []
        index = 0
        for _, coder, used in restricted:
            if used:
                self._plan.append((index, coder))
                index += 1
            else:
                self._plan.append(self.all[coder.dimension])

    def result(self, key: tuple[int, ...]) -> MatchResult:
        reasons: list[Reason] = []
        unknowns: list[Dimension] = []
        for step in self._plan:
            if isinstance(step, Reason):
                reasons.append(step)
                continue
            index, coder = step
            reason = coder.reasons[key[index]]
            if reason is None:
                unknowns.append(coder.dimension)
            else:
                reasons.append(reason)
        return MatchResult(matched=True, reasons=reasons, unknowns=unknowns)


def _hierarchy_keys(
    ns: str,
    codes: Iterable[str],
    expand: Callable[[str], Codes],
    sub_lengths: Callable[[str], Iterable[int]],
) -> set[Key]:
    keys: set[Key] = set()
    for c in codes:
        for b in expand(c):
            keys.add((ns + "=", b))
            keys.update((ns + "^", b[:n]) for n in sub_lengths(b))
    if not keys:
        keys.add((ns + "?", ""))
    return keys


def _keys(p: Partner) -> set[Key]:
    """Every index key a partner holds (none when paused: it never matches)."""
    if p.paused:
        return set()
    cov, wants = p.coverage, p.interests
    keys: set[Key] = {("kind", str(p.kind))}
    keys |= _hierarchy_keys("ind", cov.industries, industry_prefixes, _industry_sub_lengths)
    keys |= _hierarchy_keys("reg", cov.regions, _region_expand, _region_sub_lengths)
    keys |= {("park", x) for x in cov.parks} or {("park?", "")}
    keys |= {("scale", str(s)) for s in cov.scales} or {("scale?", "")}
    keys |= {("any", t) for t in wants.tags_any} or {("any*", "")}
    keys |= {("excl", t) for t in wants.exclude_tags}
    return keys
