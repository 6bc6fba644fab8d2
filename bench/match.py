"""Matching benchmark: the indexed engine against the reference scan (DESIGN §8).

    python bench/match.py                       # 1,000 / 10,000 / 100,000 profiles
    python bench/match.py --sizes 1000 10000    # other sizes
    python bench/match.py --write docs/benchmarks.md

Each size runs in a fresh child process, so its resident memory is its own.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from relay.core.matching import reference  # noqa: E402
from relay.core.matching.catalogue import CLASSES, GROUPS, SECTIONS  # noqa: E402
from relay.core.matching.engine import MatchIndex  # noqa: E402
from relay.core.models import Document, MatchResult, Partner  # noqa: E402

SECTION_HEADING = "## Matching (bench/match.py)"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

# -- realistic profiles ----------------------------------------------------------------------

#: Division weights: Shanghai's 青浦/徐泾 mix leans on electronics, equipment, software,
#: business services and R&D; every other division still appears now and then.
# fmt: off
DIVISION_WEIGHTS = {
    "39": 10, "65": 9, "35": 6, "34": 6, "38": 5, "64": 5, "72": 5, "36": 4, "27": 4,
    "75": 4, "51": 4, "26": 3, "33": 3, "40": 3, "73": 3, "74": 3, "52": 3, "29": 2,
    "59": 2, "54": 2, "63": 2, "70": 1, "61": 1, "62": 1, "66": 1, "67": 1, "83": 1,
}
DIVISIONS = [f"{d:02d}" for s in SECTIONS.values() for d in range(s.first, s.last + 1)]
QINGPU_TOWNS = {
    "310118106": 30, "310118107": 14, "310118105": 8, "310118102": 8, "310118109": 6,
    "310118110": 6, "310118103": 5, "310118104": 5, "310118001": 6, "310118002": 6,
    "310118003": 6,
}
OTHER_DISTRICTS = [
    "310101", "310104", "310105", "310106", "310107", "310109", "310110", "310112",
    "310113", "310114", "310115", "310116", "310117", "310120", "310151",
]
TAGS = [
    "政务公开", "营商环境", "稳增长", "产业发展", "外资外贸", "科技创新", "集成电路",
    "人工智能", "生物医药", "数字化转型", "中小企业", "财政补贴", "金融服务", "知识产权",
    "就业创业", "人才", "乡村振兴", "节能环保", "安全生产",
]
# fmt: on
PARKS = [f"示例园区{k:03d}" for k in range(300)]
PARK_WEIGHTS = [1 / (k + 1) for k in range(300)]  # a few big parks, a long tail


class Profiles:
    """Deterministic generator of partner profiles with realistic code distributions."""

    def __init__(self, seed: int = 4754) -> None:
        self.rnd = random.Random(seed)
        weights = {d: DIVISION_WEIGHTS.get(d, 0.3) for d in DIVISIONS}
        self.divisions, self.division_weights = list(weights), list(weights.values())

    def industry(self) -> str:
        r = self.rnd
        level = r.random()
        if level < 0.08:
            return r.choice(list(SECTIONS))
        division = r.choices(self.divisions, self.division_weights)[0]
        section = next(s for s in SECTIONS.values() if s.first <= int(division) <= s.last)
        letter = section.letter if r.random() < 0.4 else ""
        if level < 0.55:
            return letter + division
        groups = [g for g in GROUPS if g.startswith(division)] or [
            division + str(d) for d in range(1, 10)
        ]
        group = r.choice(groups)
        if level < 0.75:
            return letter + group
        classes = [c for c in CLASSES if c.startswith(group)] or [
            group + str(d) for d in (0, 1, 2, 9)
        ]
        return letter + r.choice(classes)

    def region(self) -> str:
        r = self.rnd
        level = r.random()
        if level < 0.05:
            return "310000"
        if level < 0.30:
            return "310118" if r.random() < 0.4 else r.choice(OTHER_DISTRICTS)
        if r.random() < 0.65:
            code = r.choices(list(QINGPU_TOWNS), list(QINGPU_TOWNS.values()))[0]
        else:
            town = r.choice([*range(1, 16), *range(101, 121)])
            code = f"{r.choice(OTHER_DISTRICTS)}{town:03d}"
        return code + "000" if r.random() < 0.1 else code

    def some(self, pick: Callable[[], str], empty: float, most: int) -> list[str]:
        r = self.rnd
        if r.random() < empty:
            return []
        n = r.choices(range(1, most + 1), [6, 3, 1][:most])[0]
        return list(dict.fromkeys(pick() for _ in range(n)))

    def partner(self, i: int) -> dict[str, Any]:
        r = self.rnd
        kind = "association" if r.random() < 0.75 else "park"
        if kind == "park":
            parks = [r.choices(PARKS, PARK_WEIGHTS)[0]]
        elif r.random() < 0.25:
            parks = list(dict.fromkeys(r.choices(PARKS, PARK_WEIGHTS, k=r.randint(1, 2))))
        else:
            parks = []
        scales = (
            []
            if r.random() < 0.45
            else sorted(set(r.choices(["large", "medium", "small", "micro"], [1, 2, 4, 4], k=2)))
        )
        channel = r.random()
        channels: list[dict[str, Any]] = []
        if channel < 0.9:
            channels.append({"type": "email", "to": [f"policy{i}@example.org"]})
        if channel >= 0.7:
            channels.append(
                {"type": "webhook", "url": f"https://example.org/hooks/{i}", "secret": SECRET}
            )
        return {
            "id": f"{kind}-{i:06d}",
            "kind": kind,
            "name": f"示例{'协会' if kind == 'association' else '园区'}{i}",
            "coverage": {
                "industries": self.some(self.industry, 0.12, 3),
                "regions": self.some(self.region, 0.08, 2),
                "parks": parks,
                "scales": scales,
            },
            "interests": {
                "tags_any": self.some(lambda: r.choice(TAGS), 0.55, 3),
                "exclude_tags": [r.choice(TAGS)] if r.random() < 0.1 else [],
            },
            "paused": r.random() < 0.02,
            "channels": channels,
        }

    def changed(self, partner: Partner) -> Partner:
        """The same partner after an administrator edited its coverage or interests."""
        data = partner.model_dump(mode="json")
        what = self.rnd.random()
        if what < 0.4:
            data["coverage"]["regions"] = self.some(self.region, 0.08, 2)
        elif what < 0.8:
            data["coverage"]["industries"] = self.some(self.industry, 0.12, 3)
        else:
            data["interests"]["tags_any"] = self.some(lambda: self.rnd.choice(TAGS), 0.55, 3)
        return Partner.model_validate(data)


def documents() -> list[tuple[str, Document]]:
    """Realistic documents, from a town's narrow notice to a city-wide one."""

    def doc(n: int, tags: list[str], **scope: list[str]) -> Document:
        return Document.model_validate(
            {
                "id": f"BENCH-2023-{n:02d}",
                "version": 1,
                "doc_number": f"青府〔2023〕{n}号",
                "title": "示例政策",
                "issuer": "上海市青浦区人民政府",
                "published_on": "2023-06-07",
                "url": f"https://example.gov.cn/xxgk/{n}.html",
                "tags": tags,
                "scope": scope,
            }
        )

    return [
        (
            "C39 + 徐泾镇",
            doc(1, ["集成电路", "科技创新"], industries=["C39"], regions=["310118106"]),
        ),
        (
            "3973 + 青浦区, small/micro",
            doc(
                2,
                ["集成电路", "财政补贴"],
                industries=["3973"],
                regions=["310118"],
                scales=["small", "micro"],
            ),
        ),
        ("I65 + 徐泾镇", doc(3, ["数字化转型"], industries=["I65"], regions=["310118106"])),
        ("one park + 青浦区", doc(4, ["产业发展"], parks=[PARKS[0]], regions=["310118"])),
        (
            "M73, M75 + 华新镇, associations",
            doc(
                5,
                ["科技创新", "人才"],
                industries=["M73", "M75"],
                regions=["310118107"],
                audiences=["association"],
            ),
        ),
        ("C36 + 浦东新区", doc(6, ["产业发展"], industries=["C36"], regions=["310115"])),
        (
            "seed: 徐泾镇, all industries",
            doc(7, ["政务公开"], audiences=["association", "park"], regions=["310118106"]),
        ),
        (
            "青浦区, small/micro",
            doc(8, ["稳增长", "中小企业"], regions=["310118"], scales=["small", "micro"]),
        ),
        ("C + 上海市", doc(9, ["安全生产"], industries=["C"], regions=["310000"])),
        ("all of 上海市", doc(10, ["营商环境"], regions=["310000"])),
        ("no restriction", doc(11, ["就业创业"])),
    ]


# -- measuring -------------------------------------------------------------------------------


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def timed_cpu(fn: Callable[[], object], repeat: int) -> tuple[list[float], list[float]]:
    """Per run: CPU time of this thread (ms; what other processes on a shared machine do
    is not in it) and the CPU time the cyclic garbage collector took within the run (ms)."""
    in_gc = [0.0, 0.0]  # (start of the running collection, total)

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            in_gc[0] = time.thread_time()
        else:
            in_gc[1] += time.thread_time() - in_gc[0]

    cpu, collecting = [], []
    gc.callbacks.append(watch)
    try:
        for _ in range(repeat):
            in_gc[1] = 0.0
            start = time.thread_time()
            fn()
            cpu.append((time.thread_time() - start) * 1000)
            collecting.append(in_gc[1] * 1000)
    finally:
        gc.callbacks.remove(watch)
    return cpu, collecting


def same(engine: list[tuple[Partner, MatchResult]], ref: list[tuple[Partner, MatchResult]]) -> bool:
    ordered = sorted(ref, key=lambda pr: pr[0].id)
    return [(p.id, r) for p, r in engine] == [(p.id, r) for p, r in ordered]


def run_one(size: int, repeat: int, ref_repeat: int, updates: int) -> dict[str, Any]:
    gc.collect()
    base = rss_mb()
    gen = Profiles()
    partners = [Partner.model_validate(gen.partner(i)) for i in range(size)]
    gc.collect()
    with_partners = rss_mb()

    start = time.perf_counter()
    index = MatchIndex(partners)
    build_s = time.perf_counter() - start
    gc.collect()
    with_index = rss_mb()

    docs = []
    for label, document in documents():
        engine_result = index.match(document)
        ref_result = reference.match_all(document, partners)
        identical = same(engine_result, ref_result)
        del engine_result, ref_result
        docs.append(
            {
                "label": label,
                "matches": len(index.match(document)),
                "identical": identical,
                "engine_ms": timed(partial(index.match, document), repeat),
                # The index's own part: the candidate bitmap, before any result is built.
                "candidates_ms": timed(partial(index._candidates, document), repeat),
                "ref_ms": timed(partial(reference.match_all, document, partners), ref_repeat),
            }
        )
    # A worker that loaded its profiles can move them out of the collector's sight; the
    # profiles are long-lived, and without this a full collection walks all of them.
    gc.collect()
    gc.freeze()
    # As the worker holds them (relay.runtime.registry: Registry.freeze after a bulk load).
    for entry, (_, document) in zip(docs, documents(), strict=True):
        entry["engine_frozen_ms"] = timed(partial(index.match, document), repeat)
        cpu, collecting = timed_cpu(partial(index.match, document), repeat)
        entry["frozen_cpu_ms"], entry["frozen_gc_ms"] = cpu, collecting

    changed = [gen.changed(partners[gen.rnd.randrange(size)]) for _ in range(updates)]
    upsert_ms = []
    for partner in changed:
        start = time.perf_counter()
        index.upsert(partner)
        upsert_ms.append((time.perf_counter() - start) * 1000)
    after_updates = index.partners()
    check = documents()[6][1]
    updated_identical = same(index.match(check), reference.match_all(check, after_updates))

    return {
        "size": size,
        "build_s": build_s,
        "rss_base_mb": base,
        "rss_partners_mb": with_partners,
        "rss_index_mb": with_index,
        "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_end_mb": rss_mb(),
        "docs": docs,
        "upsert_ms": upsert_ms,
        "updated_identical": updated_identical,
        "repeat": repeat,
        "ref_repeat": ref_repeat,
    }


# -- reporting -------------------------------------------------------------------------------


def spike(doc: dict[str, Any]) -> float:
    """p99 / p50 of a document's matching CPU time, with the profiles frozen."""
    cpu: list[float] = doc["frozen_cpu_ms"]
    return percentile(cpu, 0.99) / statistics.median(cpu)


def ms(value: float) -> str:
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def report(results: list[dict[str, Any]], command: str) -> str:
    lines = [
        SECTION_HEADING,
        "",
        f"Reproduce: `{command}` (each size runs in its own process).",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores (`os.cpu_count()`), shared "
        "and noisy, Python "
        f"{platform.python_version()}. Absolute times move between runs here, so read the "
        "medians and the ratios, which come from one run. The engine runs each document "
        "REPEAT times. The reference runs it fewer times at large sizes (REF_REPEAT times at "
        "the largest), so its p99 is close to its maximum. *p99 frozen* is the same engine run "
        "after `gc.freeze()`. That call puts the loaded profiles outside the cyclic garbage "
        "collector, so an occasional full collection no longer walks millions of objects in "
        "the middle of a match. The *frozen CPU* columns time the same frozen runs in CPU "
        "time of the matching thread, so what the other processes on this shared machine do "
        "is not in them; *longest collection* is the longest time the cyclic collector took "
        "within one frozen match (`gc.callbacks`).",
        "",
    ]
    lines += targets(results)
    for res in results:
        size = res["size"]
        all_engine = [t for d in res["docs"] for t in d["engine_ms"]]
        all_frozen = [t for d in res["docs"] for t in d["engine_frozen_ms"]]
        lines += [
            f"### {size:,} profiles",
            "",
            "| document | matches | candidates p50 ms | engine p50 ms | engine p99 ms "
            "| p99 frozen ms | frozen CPU p50 ms | frozen CPU p99 ms | CPU p99 / p50 "
            "| longest collection ms | reference p50 ms | reference p99 ms | speed-up (p50) "
            "| identical |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for d in res["docs"]:
            e50 = statistics.median(d["engine_ms"])
            r50 = statistics.median(d["ref_ms"])
            lines.append(
                f"| {d['label']} | {d['matches']:,} | "
                f"{ms(statistics.median(d['candidates_ms']))} | {ms(e50)} | "
                f"{ms(percentile(d['engine_ms'], 0.99))} | "
                f"{ms(percentile(d['engine_frozen_ms'], 0.99))} | "
                f"{ms(statistics.median(d['frozen_cpu_ms']))} | "
                f"{ms(percentile(d['frozen_cpu_ms'], 0.99))} | {spike(d):.2f}× | "
                f"{ms(max(d['frozen_gc_ms']))} | {ms(r50)} | "
                f"{ms(percentile(d['ref_ms'], 0.99))} | {r50 / e50:,.0f}× | "
                f"{'yes' if d['identical'] else '**NO**'} |"
            )
        lines += [
            "",
            f"- All documents together: engine p50 {ms(statistics.median(all_engine))} ms, "
            f"p99 {ms(percentile(all_engine, 0.99))} ms "
            f"(frozen: p99 {ms(percentile(all_frozen, 0.99))} ms).",
            f"- Index build: {res['build_s']:.2f} s.",
            f"- Upsert of one changed partner: p50 {ms(statistics.median(res['upsert_ms']))} ms, "
            f"p99 {ms(percentile(res['upsert_ms'], 0.99))} ms ({len(res['upsert_ms']):,} upserts). "
            f"Results after the upserts equal the reference's: "
            f"{'yes' if res['updated_identical'] else '**NO**'}.",
            f"- Resident memory (VmRSS): {res['rss_base_mb']:.0f} MB before the profiles, "
            f"{res['rss_partners_mb']:.0f} MB with the pydantic `Partner` objects, "
            f"{res['rss_index_mb']:.0f} MB with the index as well, so the index takes "
            f"{res['rss_index_mb'] - res['rss_partners_mb']:.0f} MB. The peak was "
            f"{res['rss_peak_mb']:.0f} MB, with the reference's results alive at the same time, "
            f"and {res['rss_end_mb']:.0f} MB at the end of the run.",
            "",
        ]
    text = "\n".join(lines)
    repeat = results[0]["repeat"] if results else 0
    ref_repeat = results[-1]["ref_repeat"] if results else 0
    return text.replace("REF_REPEAT", str(ref_repeat)).replace("REPEAT", str(repeat))


def targets(results: list[dict[str, Any]]) -> list[str]:
    """The DESIGN §8 targets, judged on the largest size that ran."""
    res = max(results, key=lambda r: r["size"])
    docs = res["docs"]
    p99 = {d["label"]: percentile(d["engine_frozen_ms"], 0.99) for d in docs}
    ratio = {
        d["label"]: statistics.median(d["ref_ms"]) / statistics.median(d["engine_ms"]) for d in docs
    }
    fast = [d for d in docs if p99[d["label"]] < 2]
    slow = [d for d in docs if p99[d["label"]] >= 2]
    per_match = sorted(
        1000 * statistics.median(d["engine_ms"]) / d["matches"] for d in docs if d["matches"]
    )
    under_2ms = [
        d["matches"] for r in results for d in r["docs"] if percentile(d["engine_ms"], 0.99) < 2
    ]
    cand = sorted(statistics.median(d["candidates_ms"]) for d in docs)
    upsert_p99 = percentile(res["upsert_ms"], 0.99)
    rss = res["rss_index_mb"]
    below = [label for label, x in ratio.items() if x < 50]

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**missed**"

    size = f"{res['size']:,}"
    lines = [f"### Targets at {size} profiles", ""]
    line = (
        f"- p99 under 2 ms per document: {verdict(not slow)}: "
        f"{len(fast)} of {len(docs)} documents are under it."
    )
    if slow:
        first = min(slow, key=lambda d: d["matches"])
        line += (
            f" The missing ones are relayed to {first['matches']:,} partners or more "
            f"(*{first['label']}*: p99 {ms(p99[first['label']])} ms frozen). The output "
            "causes this, not the index. With the stipulated profile mix "
            "(most partners in 青浦/上海) "
            f"at {size} profiles, even a town-and-division notice reaches thousands of "
            "partners. The index's own step, the candidate bitmap, takes "
            f"{cand[0]:.2f}–{cand[-1]:.2f} ms (median, column *candidates*). After that, "
            "each match gets its own `(Partner, MatchResult)` pair, and each "
            "*distinct* coverage gets its own `Reason`/`MatchResult` objects. On this "
            f"machine that costs {per_match[0]:.1f}–{per_match[-1]:.1f} µs per match. "
            "Across all sizes, documents with up to "
            f"{max(under_2ms, default=0):,} matches stayed under 2 ms at p99."
        )
    lines.append(line)
    line = (
        "- At least 50× faster than the reference with identical results: "
        f"{verdict(not below)}: {len(docs) - len(below)} of {len(docs)} documents reach it."
    )
    if below:
        line += (
            " Missed for "
            + "; ".join(f"*{label}* ({ratio[label]:.0f}×)" for label in below)
            + ". In those documents most partners match and nearly every one has a different "
            "coverage, so the engine builds almost one result per partner, as the reference "
            "does."
        )
    worst = max(docs, key=spike)
    lines.append(
        f"- No collector spikes, p99 ≤ 2 × p50 with the profiles frozen as the worker holds "
        f"them: {verdict(spike(worst) <= 2)}: the highest CPU-time p99 / p50 of a document "
        f"is {spike(worst):.2f}× (*{worst['label']}*), and the longest collection inside "
        f"a match took {max(max(d['frozen_gc_ms']) for d in docs):.1f} ms. Without "
        "freezing, the slowest match of a document took up to "
        f"{max(max(d['engine_ms']) - statistics.median(d['engine_ms']) for d in docs):,.0f} "
        "ms longer than its median (wall clock, column *engine p99*), full collections "
        "walking every profile."
    )
    same_everywhere = all(d["identical"] for d in docs) and res["updated_identical"]
    line += " Identical results: " + ("yes, for every document." if same_everywhere else "**NO**.")
    lines += [
        line,
        f"- Incremental update under 1 ms: {verdict(upsert_p99 < 1)}. The upsert p99 is "
        f"{ms(upsert_p99)} ms, with no rebuild.",
        f"- Under 500 MB resident: {verdict(rss < 500)}, {rss:.0f} MB for the whole process "
        f"holding {size} profiles and the index ({500 - rss:+.0f} MB to spare). The index adds "
        f"{res['rss_index_mb'] - res['rss_partners_mb']:.0f} MB. The rest is the interpreter "
        "and the pydantic `Partner` objects, about "
        f"{1024 * (res['rss_partners_mb'] - res['rss_base_mb']) / res['size']:.1f} kB each "
        "with one or two channels, so the target depends on the profile models more than on "
        "the index. Each document's results take memory while they are alive: RSS was "
        f"{res['rss_end_mb']:.0f} MB at the end of the run.",
        "",
    ]
    return lines


def write_section(path: Path, section: str) -> None:
    """Replace this benchmark's section of the file, keeping everyone else's."""
    text = path.read_text("utf-8") if path.exists() else "# Benchmarks\n"
    start = text.find(SECTION_HEADING)
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    else:
        end = text.find("\n## ", start + len(SECTION_HEADING))
        tail = "" if end == -1 else text[end + 1 :]
        text = text[:start] + section.rstrip("\n") + "\n" + ("\n" + tail if tail else "")
    path.write_text(text, "utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=50, help="engine runs per document")
    parser.add_argument("--updates", type=int, default=2_000, help="timed upserts per size")
    parser.add_argument("--write", type=Path, help="replace the section in this markdown file")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.one is not None:
        # Fewer reference runs when each takes seconds; the reference is the slow side.
        ref_repeat = max(3, min(args.repeat, 300_000 // args.one))
        json.dump(run_one(args.one, args.repeat, ref_repeat, args.updates), sys.stdout)
        return 0

    results = []
    for size in args.sizes:
        cmd = [sys.executable, __file__, "--one", str(size), "--repeat", str(args.repeat)]
        cmd += ["--updates", str(args.updates)]
        print(f"running {size:,} profiles …", file=sys.stderr)
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
        results.append(json.loads(out.stdout))

    command = "python bench/match.py" + (
        ""
        if args.sizes == [1_000, 10_000, 100_000]
        else " --sizes " + " ".join(map(str, args.sizes))
    )
    if args.repeat != 50:
        command += f" --repeat {args.repeat}"
    if args.updates != 2_000:
        command += f" --updates {args.updates}"
    if args.write:
        command += f" --write {args.write}"
    section = report(results, command)
    print(section)
    if args.write:
        write_section(args.write, section)
    ok = all(d["identical"] for r in results for d in r["docs"]) and all(
        r["updated_identical"] for r in results
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
