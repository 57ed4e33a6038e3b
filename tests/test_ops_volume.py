"""On PostgreSQL: the dashboard's covering indexes exist, and the volume seeder that
bench/dashboard.py uses makes consistent data the dashboard reads."""

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from billing.models import CreditEntry, Payment
from generation.models import Job
from ops import metrics
from ops.models import RolledDay

from .conftest import client_for
from .test_ops_access import staff  # noqa: F401 (fixture)

pytestmark = pytest.mark.services


def test_the_dashboard_indexes_exist(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'generation_job' AND indexname LIKE 'ops_%%'")
        assert {row[0] for row in cursor.fetchall()} == {"ops_job_finished_at", "ops_job_failed_finished", "ops_job_started_at"}


def test_the_seeder_refuses_a_database_not_meant_for_it(db):
    with pytest.raises(CommandError, match="use a database of its own"):
        call_command("seed_ops_volume", jobs=10, stdout=io.StringIO())


def test_the_seeder_makes_data_the_dashboard_reads(transactional_db, staff):
    call_command("seed_ops_volume", jobs=3000, ledger=300, teams=40, payments=100, queued=50, force=True, stdout=io.StringIO())

    assert Job.objects.count() == 3000 and CreditEntry.objects.count() == 300 and Payment.objects.count() == 100
    assert Job.objects.filter(state="queued").count() == 50 and Job.objects.filter(state="running").count() == 40
    assert RolledDay.objects.count() == 90
    month = dict(metrics.money().windows)["30 days"]
    assert month.jobs > 1000 and month.cost > 0 and month.revenue > 0 and month.video_seconds > 0
    assert sum(q.queued for q in metrics.operations().queues) == 50
    sam = client_for(staff)
    for url in ("/staff/", "/staff/operations/", "/staff/customers/?q=seed", "/staff/audit/"):
        assert sam.get(url).status_code == 200, url
