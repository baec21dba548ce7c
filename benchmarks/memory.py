"""Memory per cached key, in one process: what keeps DESIGN §10's 250 MB with a full cache.

What is measured: a ``Verifier`` (no database behind it; its loader builds each key as the
SQL repository does, with shared permission sets and limits) is asked to verify ``--keys``
distinct keys once each with ``Verifier.check`` and the in-process rate limiter, exactly as a
request does: each token is decoded from request bytes, so the cache keeps its own copy. Then:

* bytes per key that stay allocated (``tracemalloc``), by the line that allocated them, and the
  growth of resident memory (``VmRSS``) per key in a second, untraced run;
* the baseline, measured the same way in the same run: the least any key cache must hold, a
  plain ``dict`` from each token to its ``VerifiedKey``.

The ratio is keyplane's resident bytes per key over the baseline's. Not included: the usage
buffers and last-used times, which are flushed every minute whatever the number of keys, and
the interpreter's and libraries' own ~130 MB (``http_bench.py`` measures the whole server).

Run:  .venv/bin/python benchmarks/memory.py   (or ``make bench``; about 20 s)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import secrets
import tracemalloc
from collections.abc import Callable, Coroutine
from typing import Any

from keyplane.adapters.sql.repositories import _org_id, _permission_sets
from keyplane.domain import keyformat
from keyplane.domain.keyformat import Mode
from keyplane.domain.keys import KeyKind, VerifiedKey
from keyplane.domain.permission_query import single
from keyplane.domain.ratelimit import PLAN_LIMITS
from keyplane.services.auth import Verifier
from keyplane.services.crypto import Keyring

PERMISSIONS = ("project:read", "conversation:read", "conversation:write")
# DESIGN §10: < 250 MB with the cache full (100,000 keys) over a ~130 MB server: ~1.2 kB per
# key for everything, of which this in-process part is the steady share.
BUDGET_BYTES_PER_KEY = 1_000


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


def make_keys(count: int) -> tuple[Keyring, list[bytes], dict[bytes, int]]:
    """Request headers for `count` keys, and each key's lookup hash -> its number."""
    keyring = Keyring.parse("1:benchmark-secret-0123456789")
    tokens = [keyformat.generate(Mode.LIVE) for _ in range(count)]
    lookups = {keyring.lookup_hash(token): n for n, token in enumerate(tokens)}
    return keyring, [b"Bearer " + token.encode() for token in tokens], lookups


def issued(n: int) -> VerifiedKey:
    """Key number `n` as the repository builds it from its row (a fresh id string each)."""
    permissions, custom = _permission_sets(PERMISSIONS)
    return VerifiedKey(
        id="key_" + "".join(secrets.choice(keyformat.BASE62) for _ in range(16)),
        kind=KeyKind.PROJECT,
        mode=Mode.LIVE,
        org_id=_org_id(7),
        project_id=1_000 + n // 10,
        user_id=None,
        permissions=permissions,
        custom_permissions=custom,
        expires_at=None,
        revoked_at=None,
        scope_limits=PLAN_LIMITS["standard"],
    )


async def keyplane_run(
    keyring: Keyring, headers: list[bytes], lookups: dict[bytes, int]
) -> Callable[[], object]:
    """Verify every key once; returns what keeps the verifier alive."""

    async def load_key(candidates: list[bytes]) -> VerifiedKey | None:
        n = lookups.get(candidates[0])
        return None if n is None else issued(n)

    async def load_access(_user: int, _project: int) -> None:
        return None

    verifier = Verifier(
        keyring=keyring,
        load_key=load_key,
        load_access=load_access,
        cache_size=len(headers),
    )
    query = single("project:read")
    for header in headers:
        checked = await verifier.check(
            header.decode("latin-1")[7:], client_ip="203.0.113.9", query=query
        )
        assert checked.error is None, checked.error
    verifier.drain_used()  # flushed every minute by the change feed: not per cached key
    return lambda: verifier


async def baseline_run(
    keyring: Keyring, headers: list[bytes], lookups: dict[bytes, int]
) -> Callable[[], object]:
    cache: dict[str, VerifiedKey] = {}
    for header in headers:
        token = header.decode("latin-1")[7:]
        cache[token] = issued(lookups[keyring.lookup_hash(token)])
    return lambda: cache


Run = Callable[[Keyring, list[bytes], dict[bytes, int]], Coroutine[Any, Any, Callable[[], object]]]


def measure(run: Run, count: int, traced: bool) -> tuple[float, list[tuple[float, str]]]:
    """Bytes per key (resident, or traced with the top allocating lines)."""
    keyring, headers, lookups = make_keys(count)
    gc.collect()
    before = rss_bytes()
    if traced:
        tracemalloc.start()
        start = tracemalloc.take_snapshot()
    keep = asyncio.run(run(keyring, headers, lookups))
    gc.collect()
    if not traced:
        per_key = (rss_bytes() - before) / count
        del keep
        return per_key, []
    end = tracemalloc.take_snapshot()
    tracemalloc.stop()
    stats = [s for s in end.compare_to(start, "lineno") if s.size_diff > count]
    lines = [
        (s.size_diff / count, f"{_short(s.traceback[0].filename)}:{s.traceback[0].lineno}")
        for s in stats[:12]
    ]
    per_key = sum(s.size_diff for s in stats) / count
    del keep
    return per_key, lines


def _short(path: str) -> str:
    return "/".join(path.split("/")[-2:])  # adapters/memory/ratelimit.py -> memory/ratelimit.py


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--keys", type=int, default=100_000)
    args = parser.parse_args()
    count = args.keys
    print(f"# memory per cached key, {count:,} keys (in-process verifier + memory limiter)\n")
    base_rss, _ = measure(baseline_run, count, traced=False)
    kp_rss, _ = measure(keyplane_run, count, traced=False)
    kp_traced, lines = measure(keyplane_run, count, traced=True)
    print("| what | resident bytes/key |\n|---|---:|")
    print(f"| baseline: dict token -> VerifiedKey | {base_rss:,.0f} |")
    print(f"| keyplane: key cache, known lookups, rate-limit budget | {kp_rss:,.0f} |")
    print(f"\nratio keyplane / baseline: {kp_rss / base_rss:.2f}x")
    print(f"\ntraced: {kp_traced:,.0f} bytes/key; where they are allocated:")
    for size, where in lines:
        print(f"  {size:7.1f}  {where}")
    ok = kp_rss <= BUDGET_BYTES_PER_KEY
    print(
        f"\ntarget: ≤ {BUDGET_BYTES_PER_KEY:,} resident bytes per cached key in-process: "
        f"**{'MET' if ok else 'NOT MET'}**"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
