"""What of a user's text a reader can see: for "is this prompt empty?" and for the prompt
policy, which must read a word the way a person (or the video model) does."""

import re
import unicodedata

# Render as a blank although str.isspace() says no: Hangul fillers and the Braille blank.
_BLANKS = re.compile("[\u115f\u1160\u3164\uffa0\u2800]")
# Render as nothing, outside category Cf: the combining grapheme joiner, Mongolian free
# variation selectors and the variation selectors (combining marks, kept by visible_text
# because accents are visible).
_INVISIBLE_MARKS = re.compile("[\u034f\u180b-\u180d\u180f\ufe00-\ufe0f\U000e0100-\U000e01ef]")


def _invisible(char: str) -> bool:
    category = unicodedata.category(char)
    # Cf: zero-width space and joiners, soft hyphen, word joiner, BOM, bidi controls, tags.
    return category == "Cf" or (category == "Cc" and not char.isspace())


def visible_text(text: str) -> str:
    """`text` without the characters that render as nothing (format and control characters,
    variation selectors), and with blank-looking fillers read as spaces."""
    text = _INVISIBLE_MARKS.sub("", _BLANKS.sub(" ", text))
    return "".join(char for char in text if not _invisible(char))


def is_blank(text: str | None) -> bool:
    """True if `text` shows nothing but white space (e.g. only zero-width characters)."""
    return not visible_text(text or "").strip()


def whole_number(text: str | None, *, max_digits: int = 18) -> int | None:
    """`text` as a whole number when it is one written in ASCII digits (at most
    `max_digits` of them: more cannot be a count or an id we use, and Python refuses to
    read over 4,300), else None."""
    text = (text or "").strip()
    if not text or len(text) > max_digits or not (text.isascii() and text.isdigit()):
        return None
    return int(text)
