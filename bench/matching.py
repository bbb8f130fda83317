"""Matching benchmark: how well and how fast ``demand.matching.rank`` finds institutions.

Run by hand, not as a test:

    .venv/bin/python bench/matching.py            # 2,000 institutions / 20,000 listings
    .venv/bin/python bench/matching.py --full     # 10,000 institutions / 100,000 listings
    .venv/bin/python bench/matching.py --institutions 500 --listings 5000 --needs 200

It builds a deterministic synthetic market (fixed seed) in a migrated SQLite database and a
Whoosh index made by ``catalog.search.index.document_for``, the same code as production:

- every institution has a home sub-category, two *specialities* (service words of that
  sub-category, English and Chinese, e.g. "freedom-to-operate analysis / 自由实施分析"), the
  regions it serves, a credibility score, and ~3 % are suspended;
- ~75 % of its listings are in its home sub-category and name one of its specialities; the
  rest are noise in random sub-categories of the whole tree;
- the labelled needs (``--needs``, default 240, half Chinese, half English) are written from
  the generator's own truth, BEFORE and independently of any tuning of the matcher, and kept
  fixed by the seed: each asks for one speciality of one sub-category in one region (or
  anywhere). Its *acceptable* institutions are those whose home sub-category and a
  speciality match, that serve the region (or a region containing it, or nationwide), and
  that are not suspended. Needs with no acceptable institution are skipped (counted).

Printed: precision@8 of the invited institutions (acceptable among the top 8, over 8),
the share of needs with at least one acceptable institution in the top 8, and p50/p95/max
milliseconds of ``rank`` for one need (a first, cold call per need is reported apart from
the warm figure). Goals (issue 15): p95 under 200 ms; at least 90 % of needs with an
acceptable institution in the top 8.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from search import VOCAB, ZH_FILLER  # noqa: E402

from marketplace import reference  # noqa: E402

SEED = 20261207
REGIONS = [code for code, _en, _zh in reference.REGIONS if code != "national"]
ZH_NEED = ["我们公司需要", "寻找可以提供", "希望找到专业机构做", "急需"]
ZH_TAIL = ["，预算可谈，希望尽快开始。", "，产品计划明年上市。", "，请给出方案和报价。"]
EN_NEED = ["We are looking for", "Our company needs", "Seeking a provider for", "Need help with"]
EN_TAIL = [" before our product launch next year.", " for a new production line.",
           "; please send a proposal with milestones."]


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1))))]


def plan(n_institutions: int, n_listings: int, n_needs: int, seed: int):
    """The synthetic market and the labelled needs, all from the seed."""
    from catalog.categories import CATEGORY_TREE

    rng = random.Random(seed)
    subs = []  # (top slug, sub slug, [(en, zh), ...])
    for top_slug, _n, _z, children in CATEGORY_TREE:
        en_words, zh_words = VOCAB[top_slug]
        for position, (child_slug, _cn, _cz) in enumerate(children):
            words = [(en_words[k], zh_words[k]) for k in range(len(en_words))
                     if k % len(children) == position]
            subs.append((top_slug, child_slug, words))
    institutions = []
    for n in range(n_institutions):
        top_slug, sub_slug, words = rng.choice(subs)
        specialities = rng.sample(range(len(words)), min(2, len(words)))
        served = rng.sample(REGIONS, rng.randint(1, 3))
        if rng.random() < 0.1:
            served = ["national"]
        institutions.append(SimpleNamespace(
            id=n + 1, top=top_slug, sub=sub_slug, words=words, specialities=specialities,
            served=served, suspended=rng.random() < 0.03,
            credibility=rng.randint(50, 98), city=rng.choice(["苏州", "昆山", "无锡", "南京"])))
    listings = []
    for pid in range(1, n_listings + 1):
        inst = institutions[(pid - 1) % n_institutions]
        if rng.random() < 0.75:
            sub_slug, (en, zh) = inst.sub, inst.words[rng.choice(inst.specialities)]
        else:
            _t, sub_slug, words = rng.choice(subs)
            en, zh = rng.choice(words)
        title = (f"{zh} {en.title()}" if rng.random() < 0.5 else f"{en.title()} · {zh}")
        listings.append(SimpleNamespace(
            id=pid, provider_id=inst.id, sub=sub_slug, title=title,
            summary=f"{zh}服务，{''.join(rng.sample(ZH_FILLER, 3))}。 {en.capitalize()} service.",
            description=f"{en} for SMEs. {''.join(rng.sample(ZH_FILLER, 4))}",
            tags=[zh, en.split()[0]], regions=inst.served))
    needs = []
    skipped = 0
    while len(needs) < n_needs:
        top_slug, sub_slug, words = rng.choice(subs)
        k = rng.randrange(len(words))
        en, zh = words[k]
        region = rng.choice(REGIONS) if rng.random() < 0.8 else None
        chinese = len(needs) % 2 == 0
        if chinese:
            title = f"{rng.choice(ZH_NEED)}{zh}"
            description = f"{rng.choice(ZH_NEED)}{zh}{rng.choice(ZH_TAIL)}"
        else:
            title = f"{rng.choice(EN_NEED)} {en}"
            description = f"{rng.choice(EN_NEED)} {en}{rng.choice(EN_TAIL)}"
        needs.append(SimpleNamespace(sub=sub_slug, word=k, region=region, title=title,
                                     description=description, chinese=chinese))
    labelled = []
    for need in needs:
        from demand.matching import region_chain

        wanted = region_chain(need.region) if need.region else None
        acceptable = {inst.id for inst in institutions
                      if inst.sub == need.sub and need.word in inst.specialities
                      and not inst.suspended
                      and (wanted is None or wanted & set(inst.served))}
        if acceptable:
            labelled.append((need, acceptable))
        else:
            skipped += 1
    return institutions, listings, labelled, skipped


def build(workdir: Path, institutions, listings):
    from sqlalchemy import insert, select
    from sqlalchemy.orm import Session

    from catalog.categories import seed_categories
    from catalog.models import Category, Product
    from catalog.search.index import document_for, index_write_lock, open_index
    from marketplace.database import make_engine
    from marketplace.migrate import upgrade
    from marketplace.models import Organisation

    url = f"sqlite:///{workdir / 'bench.sqlite'}"
    started = time.perf_counter()
    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as session:
        seed_categories(session)
        session.commit()
        categories = {c.slug: c for c in session.scalars(select(Category))}
        for c in categories.values():
            _ = c.parent
        now = datetime.now(UTC)
        with engine.begin() as conn:
            conn.execute(insert(Organisation), [{
                "id": inst.id, "kind": "provider",
                "name": f"{inst.city}服务机构{inst.id} Institution No.{inst.id}",
                "institution_type": "advisory", "verification_status": "verified",
                "suspended": inst.suspended, "region": "suzhou", "regions_served": inst.served,
                "credibility_score": inst.credibility, "credibility_level": "A",
                "created_at": now, "verified_at": now} for inst in institutions])
            rows = [{
                "id": item.id, "provider_id": item.provider_id,
                "category_id": categories[item.sub].id, "title": item.title,
                "summary": item.summary[:500], "description": item.description,
                "regions": item.regions, "tags": item.tags, "pricing_mode": "quote",
                "currency": "CNY", "status": "published", "published_at": now,
                "created_at": now, "updated_at": now} for item in listings]
            for start in range(0, len(rows), 5000):
                conn.execute(insert(Product), rows[start:start + 5000])
        print(f"database: {len(institutions):,} institutions, {len(listings):,} listings in "
              f"{time.perf_counter() - started:.1f}s", flush=True)
        started = time.perf_counter()
        index_dir = workdir / "index"
        orgs = {inst.id: SimpleNamespace(id=inst.id, name=f"{inst.city}服务机构{inst.id}",
                                         institution_type="advisory",
                                         credibility_score=inst.credibility)
                for inst in institutions}
        ix = open_index(index_dir)
        with index_write_lock(index_dir):
            writer = ix.writer(limitmb=512)
            for item in listings:
                if institutions[item.provider_id - 1].suspended:
                    continue  # the index holds visible listings only
                writer.add_document(**document_for(SimpleNamespace(
                    id=item.id, title=item.title, summary=item.summary,
                    title_alt=None, summary_alt=None, description=item.description,
                    tags=item.tags, regions=item.regions,
                    pricing_mode="quote", price_from=None, voucher_eligible=False,
                    sales_count=0, rating_average=None, published_at=now, created_at=now,
                    provider=orgs[item.provider_id], category=categories[item.sub])))
            writer.commit()
        print(f"search index: {time.perf_counter() - started:.1f}s", flush=True)
    return engine, index_dir, categories


def _old_index_shim() -> None:
    """Indexes built before catalog/search/ existed pickled their analyzer as
    ``catalog.search_index``: let --reuse open them (the classes are the same)."""
    import catalog.search.schema

    sys.modules.setdefault("catalog.search_index", catalog.search.schema)


def run(args) -> None:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from catalog.models import Category
    from demand import matching
    from demand.models import Need

    institutions, listings, labelled, skipped = plan(args.institutions, args.listings,
                                                     args.needs, args.seed)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="match-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        if args.reuse and (workdir / "bench.sqlite").exists() and (workdir / "index").exists():
            from marketplace.database import make_engine

            engine, index_dir = make_engine(f"sqlite:///{workdir / 'bench.sqlite'}"), \
                workdir / "index"
            print(f"reusing the database and index in {workdir}", flush=True)
            _old_index_shim()
        else:
            engine, index_dir, _categories = build(workdir, institutions, listings)
        cold, warm, cpu, precision, found = [], [], [], [], 0
        by_language = {True: [0, 0], False: [0, 0]}
        with Session(engine) as session:
            categories = {c.slug: c for c in session.scalars(select(Category))}
            for c in categories.values():
                _ = c.parent
            now = datetime.now(UTC) + timedelta(minutes=1)
            for need_plan, acceptable in labelled:
                need = Need(title=need_plan.title, description=need_plan.description,
                            category=categories[need_plan.sub], region=need_plan.region,
                            budget_kind="open", currency="CNY")
                started = time.perf_counter()
                ranked = matching.rank(session, need, limit=8, index_dir=index_dir, now=now)
                cold.append((time.perf_counter() - started) * 1000)
                started, started_cpu = time.perf_counter(), time.process_time()
                matching.rank(session, need, limit=8, index_dir=index_dir, now=now)
                warm.append((time.perf_counter() - started) * 1000)
                cpu.append((time.process_time() - started_cpu) * 1000)
                top = [m.provider_id for m in ranked]
                hits = len(set(top) & acceptable)
                precision.append(hits / 8)
                found += hits > 0
                by_language[need_plan.chinese][0] += hits > 0
                by_language[need_plan.chinese][1] += 1
                session.expunge_all()
        n = len(labelled)
        print(f"\nneeds: {n} labelled ({skipped} generated without an acceptable institution "
              f"were skipped); acceptable per need: median "
              f"{statistics.median(len(a) for _n, a in labelled):.0f}")
        print(f"precision@8: {statistics.mean(precision):.3f}")
        print(f"needs with an acceptable institution in the top 8: {found / n:.1%} "
              f"(Chinese {by_language[True][0] / max(1, by_language[True][1]):.1%}, "
              f"English {by_language[False][0] / max(1, by_language[False][1]):.1%})")
        print(f"rank(), first call per need: p50 {percentile(cold, 50):.0f} ms, "
              f"p95 {percentile(cold, 95):.0f} ms, max {max(cold):.0f} ms")
        print(f"rank(), again (warm caches): p50 {percentile(warm, 50):.0f} ms, "
              f"p95 {percentile(warm, 95):.0f} ms, max {max(warm):.0f} ms")
        print(f"rank(), again, CPU time of this process (what a busy machine does not "
              f"inflate; SQLite runs in-process): p50 {percentile(cpu, 50):.0f} ms, "
              f"p95 {percentile(cpu, 95):.0f} ms")
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--institutions", type=int, default=2000)
    parser.add_argument("--listings", type=int, default=20000)
    parser.add_argument("--needs", type=int, default=240)
    parser.add_argument("--full", action="store_true",
                        help="The issue's size: 10,000 institutions and 100,000 listings.")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--workdir", default=None, help="Keep the database and index here.")
    parser.add_argument("--reuse", action="store_true",
                        help="Reuse the database and index already in --workdir (same sizes "
                             "and seed), instead of building them again.")
    args = parser.parse_args()
    if args.full:
        args.institutions, args.listings = 10_000, 100_000
    print(f"Python {sys.version.split()[0]}, seed {args.seed}: {args.institutions:,} "
          f"institutions, {args.listings:,} listings, {args.needs} needs", flush=True)
    run(args)


if __name__ == "__main__":
    main()
