"""Database helpers every app may use."""

from django.db import connections
from django.db.models import sql


def update_returning(queryset, **changes) -> list:
    """`queryset.update(**changes)` that returns the updated rows as model instances, read
    in the same statement (UPDATE … RETURNING, which PostgreSQL and SQLite 3.35+ have)
    rather than by a second query. Values and expressions (F) as `update` takes them; the
    rows come back through the fields' own conversions, like any other read."""
    model = queryset.model
    query = queryset.query.chain(sql.UpdateQuery)
    query.add_update_values(changes)
    query.annotations = {}
    statement, params = query.get_compiler(queryset.db).as_sql()
    if not statement:
        return []
    connection = connections[queryset.db]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in model._meta.concrete_fields)
    return list(model._default_manager.db_manager(queryset.db).raw(f"{statement} RETURNING {columns}", params))
