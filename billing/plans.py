"""Plans and credit packs as data: read from billing/plans.toml."""

import tomllib
from pathlib import Path

from .models import CreditPack, Plan

PLANS_FILE = Path(__file__).with_name("plans.toml")
DEFAULT_PLAN = "free"


def _read(path: Path = PLANS_FILE) -> dict:
    with path.open("rb") as file:
        return tomllib.load(file)


def _upsert(model, rows: list[dict], *, overwrite: bool) -> int:
    changed = 0
    for order, row in enumerate(rows):
        fields = {**row, "order": order}
        slug = fields.pop("slug")
        if overwrite:
            _, created = model.objects.update_or_create(slug=slug, defaults=fields)
            changed += 1
        else:
            _, created = model.objects.get_or_create(slug=slug, defaults=fields)
            changed += int(created)
    return changed


def plans_seed_missing() -> int:
    """Create the plans and packs of the file that the database lacks; leave the rest."""
    data = _read()
    return _upsert(Plan, data["plans"], overwrite=False) + _upsert(CreditPack, data.get("packs", []), overwrite=False)


def plans_sync(path: Path = PLANS_FILE) -> int:
    """Make every plan and pack of the file match it (Stripe ids are kept)."""
    data = _read(path)
    return _upsert(Plan, data["plans"], overwrite=True) + _upsert(CreditPack, data.get("packs", []), overwrite=True)


def default_plan() -> Plan:
    return Plan.objects.get(slug=DEFAULT_PLAN)
