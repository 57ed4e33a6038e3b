"""Cursor pagination that refuses cursors it did not make.

DRF's CursorPagination decodes leniently: base64 skips characters outside its alphabet,
and unknown or missing keys fall back to defaults, so `cursor=%00`, random base64 or a
SQL string all came back as page 1 (and a forged position reached the database). A cursor
is ours only if it decodes strictly to the keys DRF writes (`o`, `r`, `p`, each once) and
its position is a value of the ordering field; anything else is a 404, which the API's
exception handler answers in its JSON error shape.
"""

import binascii
import string
from base64 import b64decode
from urllib import parse

from django.core.exceptions import ValidationError
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination

_KEYS = {"o", "r", "p"}
_PRINTABLE = set(string.ascii_letters + string.digits + string.punctuation + " ")


class StrictCursorPagination(CursorPagination):
    def decode_cursor(self, request):
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is not None and not _is_our_cursor(encoded):
            raise NotFound(self.invalid_cursor_message)
        return super().decode_cursor(request)

    def paginate_queryset(self, queryset, request, view=None):
        try:
            return super().paginate_queryset(queryset, request, view)
        except ValidationError:  # a position that is no value of the ordering field
            raise NotFound(self.invalid_cursor_message) from None


def _is_our_cursor(encoded: str) -> bool:
    try:
        querystring = b64decode(encoded.encode("ascii"), validate=True).decode("ascii")
        tokens = parse.parse_qs(querystring, keep_blank_values=True, strict_parsing=True)
    except (UnicodeError, binascii.Error, ValueError):
        return False
    if not tokens or set(tokens) - _KEYS or any(len(values) != 1 for values in tokens.values()):
        return False
    # NUL and other control characters would otherwise reach PostgreSQL, which refuses them.
    values = [values[0] for values in tokens.values()]
    return all(value and set(value) <= _PRINTABLE for value in values) and tokens.get("r", ["1"]) == ["1"]
