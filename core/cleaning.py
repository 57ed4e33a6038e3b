"""The one input-cleaning rule, applied at every edge where text comes in (the APIs'
parsers in core.parsers, the HTML pages' queries and forms in core.form_input; share
links have a URL converter of their own), so that no request reaches the database or a
text encoder with what they cannot take:

- no NUL character: PostgreSQL refuses it in text and jsonb (a 500 after the fact);
- no lone UTF-16 surrogate (JSON's "\\ud800"): it cannot be encoded to UTF-8 at all;
- JSON nested at most MAX_DEPTH levels and at most MAX_ITEMS values in all, so that
  walking, hashing or storing a body never recurses a thousand levels deep.

What counts as no text at all is core.text's rule (`is_blank`); the schema's pattern for
a prompt is built from it here.
"""

import re

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.validators import RegexValidator
from django.utils.functional import SimpleLazyObject

from .errors import InvalidInput, Refusal
from .text import is_blank

MAX_DEPTH = 10
MAX_ITEMS = 1000

_UNSAFE = re.compile("[\x00\ud800-\udfff]")


def _blank_ranges() -> str:
    """The characters of the Basic Multilingual Plane that show nothing by core.text's rule
    (spaces, zero-width and control characters, fillers) as a regex class body, about 40
    ranges. Built from that rule, not written out, so the two cannot drift apart."""
    codes = [code for code in range(0x10000) if is_blank(chr(code))]
    ranges, start = [], codes[0]
    for previous, code in zip(codes, [*codes[1:], None]):
        if code != previous + 1:
            # \uXXXX: read alike by Python's re and ECMA (JSON Schema) regexes.
            ranges.append(f"\\u{start:04x}" + (f"-\\u{previous:04x}" if previous != start else ""))
            start = code
    return "".join(ranges)


# core.text.is_blank as an (unanchored) pattern, for the OpenAPI schema of a prompt: "at
# least one visible character". Beyond the BMP (tag characters, variation selectors) it lets
# through what is_blank refuses: ECMA regexes cannot name those without the u flag.
# Lazy: building the ranges takes about 0.1 s, paid on first use rather than at every import.
visible_prompt = RegexValidator(
    SimpleLazyObject(lambda: re.compile(f"[^{_blank_ranges()}]")),
    message="Prompt is required: give at least one visible character, not only spaces or zero-width ones.",
)


def text_problem(text: str) -> str | None:
    """What makes `text` unstorable, as a phrase ("contains a NUL character"), or None."""
    bad = _UNSAFE.search(text)
    if bad is None:
        return None
    if bad.group() == "\x00":
        return "contains a NUL character (\\u0000), which is not allowed"
    return "contains a lone UTF-16 surrogate (not a Unicode character)"


def check_text(text: str, field: str | None = None, *, subject: str | None = None) -> None:
    """Raise InvalidInput naming `field` when `text` cannot be stored; `subject` is what
    the message calls it (default: the field)."""
    problem = text_problem(text)
    if problem:
        raise InvalidInput(f"{subject or field or 'The request'} {problem}.", field=field, code="invalid_characters")


def check_data(data, *, field: str | None = None) -> None:
    """Walk parsed JSON once and raise InvalidInput naming the path of the first value
    that breaks the rule, e.g. `metadata.tags[2]`."""
    count = 0
    # An explicit stack, not recursion: the body may be as deep as the parser allowed.
    stack = [(data, field, 0)]
    while stack:
        value, path, depth = stack.pop()
        count += 1
        if count > MAX_ITEMS:
            top = re.split(r"[.\[]", path, maxsplit=1)[0] if path else None  # the field holding them
            raise InvalidInput(
                f"The request has more than {MAX_ITEMS} values in all; send fewer.", field=top or None, code="too_many_values"
            )
        if isinstance(value, str):
            check_text(value, path)
        elif isinstance(value, dict | list | tuple):
            if depth >= MAX_DEPTH:
                raise InvalidInput(
                    f"{path or 'The request'} is nested too deeply: at most {MAX_DEPTH} levels of objects and lists.",
                    field=path, code="too_deep",
                )
            if isinstance(value, dict):
                for key, item in value.items():
                    key = str(key)
                    check_text(key, path, subject=f"A key in {path}" if path else "A field name")
                    stack.append((item, f"{path}.{key}" if path else key, depth + 1))
            else:
                stack.extend((item, f"{path or ''}[{index}]", depth + 1) for index, item in enumerate(value))


def check_querydict(data) -> None:
    """A form body or query string: each field's values (QueryDict keeps a list per name)."""
    for key, values in data.lists():
        check_text(key, subject="A field name")
        for value in values:
            if isinstance(value, str):
                check_text(value, key)


def body_limit_refusal(error: Exception) -> Refusal | None:
    """Django's own refusal of a body beyond its limits (RequestDataTooBig and its kin,
    raised when request.body or request.POST is first read) as a refusal the APIs answer
    in their shape, naming the limit; None for any other error. Without this, Django
    answers them with its bare HTML "Bad Request (400)"."""
    if isinstance(error, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return Refusal(
            f"The request body is larger than {limit / 2**20:g} MB ({limit} bytes), the most this API reads; "
            "files sent as multipart/form-data do not count towards it.",
            status=413, code="request_too_large",
        )
    if isinstance(error, TooManyFieldsSent):
        return InvalidInput(
            f"The request has more than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} fields.", code="too_many_fields"
        )
    if isinstance(error, TooManyFilesSent):
        return InvalidInput(f"The request has more than {settings.DATA_UPLOAD_MAX_NUMBER_FILES} files.", code="too_many_files")
    return None
