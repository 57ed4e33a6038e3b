"""Database helpers every app may use."""

from django.db import connections
from django.db.models import sql


def update_returning(queryset, *, fields=None, **changes) -> list:
    """`queryset.update(**changes)` that returns the updated rows as model instances, read
    in the same statement (UPDATE … RETURNING, which PostgreSQL and SQLite 3.35+ have)
    rather than by a second query. Values and expressions (F) as `update` takes them; the
    rows come back through the fields' own conversions, like any other read. `fields`: only
    these (and the primary key) are read; the others are deferred, as with `only()`."""
    model = queryset.model
    query = queryset.query.chain(sql.UpdateQuery)
    query.add_update_values(changes)
    query.annotations = {}
    statement, params = query.get_compiler(queryset.db).as_sql()
    if not statement:
        return []
    connection = connections[queryset.db]
    wanted = None if fields is None else {model._meta.pk.name, *fields}
    chosen = [field for field in model._meta.concrete_fields if wanted is None or field.name in wanted]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in chosen)
    rows = list(model._default_manager.db_manager(queryset.db).raw(f"{statement} RETURNING {columns}", params))
    # SQLite's RETURNING gives values before the column's affinity applies (a REAL column
    # set from 5 returns 5): floats are made floats, as a SELECT would read them.
    floats = [field.attname for field in chosen if field.get_internal_type() == "FloatField"]
    for row in rows:
        for name in floats:
            if isinstance(getattr(row, name), int):
                setattr(row, name, float(getattr(row, name)))
    return rows
