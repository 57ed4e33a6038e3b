"""bench/dashboard: the staff dashboard on production volume.

Creates (or with --reuse, keeps) a PostgreSQL database of its own, migrates it, seeds it
with `manage.py seed_ops_volume` (1,000,000 jobs and 100,000 ledger entries by default),
then requests each dashboard page as a signed-in staff user through Django's full request
stack and prints the median and p95 time of each, against the 300 ms budget.

    .venv/bin/python bench/dashboard.py                      # fresh fc_bench, full volume
    .venv/bin/python bench/dashboard.py --reuse --runs 30     # measure again, no reseed

Never point it at a shared database: without --reuse it DROPs and recreates the one named.
"""

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parent.parent
BUDGET_MS = 300


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def prepare_database(url: str, *, reuse: bool) -> bool:
    """Create the database (dropping it first unless reusing). True if it already existed."""
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    if "bench" not in name:
        sys.exit(f"Refusing to use {name!r}: the benchmark drops its database; give one named *bench*.")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None
        if exists and reuse:
            return True
        if exists:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/fc_bench"))
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--ledger", type=int, default=100_000)
    parser.add_argument("--teams", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--reuse", action="store_true", help="Keep an already seeded database.")
    args = parser.parse_args()

    existed = prepare_database(args.database_url, reuse=args.reuse)
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.pop("REDIS_URL", None)
    os.environ["LOG_LEVEL"] = "WARNING"  # no request log lines between the figures
    warnings.filterwarnings("ignore", message="No directory at")  # staticfiles/ is not collected here
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import setup_test_environment

    from accounts.models import Team, User
    from generation.models import Job
    from ops.rollups import rollups_refresh

    started = time.monotonic()
    call_command("migrate", verbosity=0)
    if not existed:
        print(f"Seeding {args.jobs:,} jobs, {args.ledger:,} ledger entries, {args.teams:,} teams:")
        call_command("seed_ops_volume", jobs=args.jobs, ledger=args.ledger, teams=args.teams)
        print(f"Database ready in {time.monotonic() - started:.0f} s")
    print(f"{Job.objects.count():,} jobs in {args.database_url.rsplit('/', 1)[1]}")
    tick = time.perf_counter()
    rollups_refresh()
    print(f"periodic rollup refresh (ops.refresh_rollups): {(time.perf_counter() - tick) * 1000:.0f} ms")

    setup_test_environment()
    staff, _ = User.objects.get_or_create(email="bench-staff@framecast.example", defaults={"is_staff": True})
    client = Client()
    client.force_login(staff)
    busiest = Job.objects.filter(created_at__gte=Job.objects.order_by("-created_at").values("created_at")[:1]).values("team_id")[:1]
    team = Team.objects.filter(pk__in=busiest).first() or Team.objects.order_by("pk").last()
    pages = {
        "money (/staff/)": "/staff/",
        "operations": "/staff/operations/",
        "customer search": f"/staff/customers/?q={team.name.split()[-1]}",
        "team detail": f"/staff/teams/{team.pk}/",
        "audit log": "/staff/audit/",
        "exports form": "/staff/exports/",
    }
    print(f"\n{'page':<18} {'median':>9} {'p95':>9}  (ms, {args.runs} runs after one warm-up; budget {BUDGET_MS} ms)")
    worst = 0.0
    for label, url in pages.items():
        assert client.get(url).status_code == 200, url
        times = []
        for _ in range(args.runs):
            tick = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - tick) * 1000)
            assert response.status_code == 200, url
        median, p95 = statistics.median(times), percentile(times, 0.95)
        worst = max(worst, p95)
        print(f"{label:<18} {median:9.1f} {p95:9.1f}  {'ok' if p95 < BUDGET_MS else 'OVER BUDGET'}")
    # The site streams over ASGI; this synchronous client reads the async stream to its end.
    warnings.filterwarnings("ignore", message="StreamingHttpResponse must consume")
    day = Job.objects.order_by("-created_at").values_list("created_at", flat=True).first().date().isoformat()
    tick = time.perf_counter()
    response = client.get(f"/staff/exports/jobs.csv?from={day}&to={day}")
    rows = sum(chunk.count(b"\n") for chunk in response) - 1
    print(f"\njobs.csv for {day}: {rows:,} rows streamed in {(time.perf_counter() - tick) * 1000:.0f} ms")
    print(f"\nslowest p95: {worst:.1f} ms ({'within' if worst < BUDGET_MS else 'OVER'} the {BUDGET_MS} ms budget)")


if __name__ == "__main__":
    main()
