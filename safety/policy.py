"""The prompt policy as data (policy.toml) and the pure function that applies it.

`evaluate(text)` returns a Verdict — allow, flag (generate, but a person reviews it) or
refuse — with the category and the rule that fired. No database here: safety.moderation
records the decision and acts on it.
"""

from __future__ import annotations

import json
import re
import tomllib
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from core.text import visible_text

ALLOW, FLAG, REFUSE = "allow", "flag", "refuse"

# Look-alike characters folded before matching ("s3x", "n@ked", "$ex").
_LOOKALIKES = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"})
# Letters that pass for Latin ones in a prompt although Unicode's confusables table gives
# them another non-Latin prototype (Cyrillic к -> ĸ, Greek ε -> ꞓ), or one that is wrong in
# lower-case text (the dotless stroke of Cyrillic palochka ӏ passes for l, not i).
_EXTRA_CONFUSABLES = {"к": "k", "κ": "k", "м": "m", "п": "n", "η": "n", "χ": "x", "ω": "w", "ε": "e", "є": "e", "ӏ": "l"}
# Latin letters that NFKD leaves alone but whose name says which letter they are (small
# capitals ᴛ, hooked letters ɑ): the blocks of Latin Extended-B, IPA, phonetic and extended.
_LATIN_NAME = re.compile(r"LATIN (?:SMALL |CAPITAL )?LETTER (?:SMALL CAPITAL )?([A-Z])(?: WITH .+)?")
_LATIN_BLOCKS = ((0x0180, 0x02B0), (0x1D00, 0x1DC0), (0x2C60, 0x2C80), (0xA720, 0xA800), (0xAB30, 0xAB70), (0x1DF00, 0x1E000))
# Separators an attacker puts between the letters of a word ("s.e.x", "s e x", "s_e_x"): a run
# of single letters with one kind of separator, not the edge of a run of another kind ("a t.e.e.n").
_SPACED_LETTERS = re.compile(r"(?<![a-z][._*~+-])\b[a-z]([ ._*~+-])[a-z](?:\1[a-z])*\b(?![._*~+-][a-z])")


@dataclass(frozen=True)
class Verdict:
    outcome: str  # allow | flag | refuse
    category: str = ""
    label: str = ""  # what the category is, in words a user reads
    rule: str = ""  # which rule fired, e.g. "child_safety/minor-and-sexual"


@dataclass(frozen=True)
class Rule:
    name: str
    groups: tuple[re.Pattern, ...]  # every group must match (a `terms` rule has one group)


@dataclass(frozen=True)
class Category:
    name: str
    action: str
    label: str
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class Policy:
    categories: tuple[Category, ...]  # refusing categories first
    classifier: dict


def fold(text: str, *, split_article: bool = False) -> str:
    """The text as the policy reads it: invisible characters (zero-width, soft hyphens, other
    format characters) dropped, lower case, accents and other combining marks removed,
    fullwidth and styled letters, confusable letters of other scripts (Cyrillic е, Greek ο)
    and look-alike digits read as the Latin letters they pass for, single spaces; single
    letters spaced or dotted out ("s e x", "s.e.x") joined. An empty result means the text
    shows nothing. `split_article` keeps a leading "a" or "i" of spaced letters a word of
    its own ("a t e e n" -> "a teen"), the other reading of such a run."""
    text = unicodedata.normalize("NFKD", visible_text(text))
    text = text.translate(_confusables()).lower().translate(_confusables())
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Mn", "Me"))
    # Digits inside words are look-alikes ("s3x"); numbers on their own stay numbers ("12 year old").
    text = re.sub(r"(?<=[a-z])[013457@$!]+|[013457@$!]+(?=[a-z])", lambda m: m.group().translate(_LOOKALIKES), text)
    text = text.replace("@", "a").replace("$", "s")
    text = re.sub(r"\s", " ", text)  # one space per blank: a double space still parts spaced-out words
    text = _SPACED_LETTERS.sub(lambda m: _join_letters(m.group(), m.group(1), split_article), text)
    return re.sub(r"\s+", " ", text).strip()


def _join_letters(run: str, separator: str, split_article: bool) -> str:
    joined = run.replace(separator, "")
    if split_article and separator == " " and joined[0] in "ai" and len(joined) > 3:
        return f"{joined[0]} {joined[1:]}"
    return joined


@lru_cache(maxsize=1)
def _confusables() -> dict[int, str]:
    """str.translate table: each non-ASCII letter that passes for an ASCII letter or digit
    in Unicode's confusables table (UTS #39, as packaged by confusable-homoglyphs), each
    Latin letter whose name says its letter, and _EXTRA_CONFUSABLES."""
    data = json.loads(resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8"))
    table = {}
    for start, end in _LATIN_BLOCKS:
        for code in range(start, end):
            if letter := _latin_letter(chr(code)):
                table[code] = letter
    for char, glyphs in data.items():
        if len(char) != 1 or char.isascii() or ord(char) in table:
            continue
        # The prototype itself, or one step further when it is a Latin small capital (т -> ᴛ -> t).
        for glyph in (glyph["c"] for glyph in glyphs if len(glyph["c"]) == 1):
            letter = glyph.lower() if glyph.isascii() and glyph.isalnum() else _latin_letter(glyph, plain=True)
            if letter:
                table[ord(char)] = letter
                break
    table.update({ord(char): letter for char, letter in _EXTRA_CONFUSABLES.items()})
    return table


def _latin_letter(char: str, *, plain: bool = False) -> str | None:
    match = _LATIN_NAME.fullmatch(unicodedata.name(char, ""))
    if match is None or (plain and " WITH " in match.group()):
        return None
    return match.group(1).lower()


def _terms_pattern(terms: list[str], where: str) -> re.Pattern:
    if not terms or not all(isinstance(term, str) and term.strip() for term in terms):
        raise ImproperlyConfigured(f"{where}: terms must be a non-empty list of non-empty strings.")
    # The words of a phrase may also be run together or hyphenated ("alqaeda", "al-qaeda").
    phrases = {tuple(word for word in re.split(r"[\s-]+", fold(term)) if word) for term in terms}
    alternatives = sorted((r"[\s-]*".join(map(re.escape, words)) for words in phrases), key=len, reverse=True)
    return re.compile(r"(?<![a-z0-9])(?:" + "|".join(alternatives) + r")(?![a-z0-9])")


def _rule(category: str, raw: dict, path: Path) -> Rule:
    where = f"{path}: category {category!r}, rule {raw.get('name')!r}"
    if not raw.get("name"):
        raise ImproperlyConfigured(f"{path}: every rule of category {category!r} needs a name.")
    groups: list[re.Pattern] = []
    if "terms" in raw:
        groups.append(_terms_pattern(raw["terms"], where))
    if "all_of" in raw:
        groups.extend(_terms_pattern(group, where) for group in raw["all_of"])
    if "patterns" in raw:
        try:
            groups.append(re.compile("|".join(f"(?:{pattern})" for pattern in raw["patterns"])))
        except re.error as error:
            raise ImproperlyConfigured(f"{where}: bad regular expression: {error}") from None
    if not groups:
        raise ImproperlyConfigured(f"{where}: give terms, all_of or patterns.")
    return Rule(name=raw["name"], groups=tuple(groups))


def load_policy(path: Path) -> Policy:
    try:
        raw = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ImproperlyConfigured(f"Cannot read the moderation policy {path}: {error}") from None
    categories = []
    for name, spec in raw.get("categories", {}).items():
        if spec.get("action") not in (REFUSE, FLAG):
            raise ImproperlyConfigured(f"{path}: category {name!r} needs action = \"refuse\" or \"flag\".")
        rules = tuple(_rule(name, rule, path) for rule in spec.get("rules", []))
        categories.append(Category(name=name, action=spec["action"], label=spec.get("label", name), rules=rules))
    categories.sort(key=lambda category: category.action != REFUSE)  # stable: file order within each action
    return Policy(categories=tuple(categories), classifier=raw.get("classifier", {}))


@lru_cache(maxsize=4)
def _cached_policy(path: str, mtime: float) -> Policy:
    return load_policy(Path(path))


def current_policy() -> Policy:
    path = Path(settings.FRAMECAST_MODERATION_POLICY_FILE)
    return _cached_policy(str(path), path.stat().st_mtime if path.exists() else 0.0)


def evaluate(text: str, policy: Policy | None = None) -> Verdict:
    policy = policy or current_policy()
    readings = {fold(text), fold(text, split_article=True)}
    for category in policy.categories:
        for rule in category.rules:
            if all(any(group.search(reading) for reading in readings) for group in rule.groups):
                return Verdict(category.action, category.name, category.label, f"{category.name}/{rule.name}")
    return _classify(text, policy.classifier)


def _classify(text: str, config: dict) -> Verdict:
    if not config.get("enabled"):
        return Verdict(ALLOW)
    score = offensive_probability(text)
    if score is not None and score >= float(config.get("threshold", 0.9)):
        return Verdict(
            config.get("action", FLAG),
            config.get("category", "offensive_language"),
            config.get("label", "offensive language"),
            f"classifier:alt-profanity-check p={score:.2f}",
        )
    return Verdict(ALLOW)


def offensive_probability(text: str) -> float | None:
    """alt-profanity-check's probability that `text` is offensive (its linear model ships
    in the wheel: no download). None if the package is not installed."""
    model = _offensive_model()
    return None if model is None else model.probability(text)


@dataclass(frozen=True)
class _LinearProfanityModel:
    """alt-profanity-check's model, evaluated directly. It is a TF-IDF vectoriser and a
    CalibratedClassifierCV of linear SVMs with sigmoid calibration, so its probability is
    the mean over the calibrated copies of expit(-(a·(x·w + c) + b)). The same figure as
    its predict_prob (tests/test_moderation.py checks them against each other), without
    scikit-learn's per-call input validation: 0.3 ms a prompt instead of 3 (about 10 ms on
    a loaded machine), on every submission."""

    vectorizer: object
    weights: object  # (features, copies): each copy's SVM coefficients
    intercepts: object  # (copies,)
    slopes: object  # the sigmoid calibrations' a
    offsets: object  # and b

    def probability(self, text: str) -> float:
        import numpy as np

        decision = np.asarray(self.vectorizer.transform([text]) @ self.weights).ravel() + self.intercepts
        return float(np.mean(1.0 / (1.0 + np.exp(self.slopes * decision + self.offsets))))


@lru_cache(maxsize=1)
def _offensive_model() -> _LinearProfanityModel | None:
    try:
        from profanity_check import profanity_check
    except ImportError:
        return None
    import numpy as np

    copies = profanity_check.model.calibrated_classifiers_
    if profanity_check.model.method != "sigmoid" or any(len(copy.calibrators) != 1 for copy in copies):
        raise ImproperlyConfigured("alt-profanity-check's model is not the binary sigmoid-calibrated one this reads.")
    return _LinearProfanityModel(
        vectorizer=profanity_check.vectorizer,
        weights=np.stack([copy.estimator.coef_.ravel() for copy in copies], axis=1),
        intercepts=np.array([copy.estimator.intercept_[0] for copy in copies]),
        slopes=np.array([copy.calibrators[0].a_ for copy in copies]),
        offsets=np.array([copy.calibrators[0].b_ for copy in copies]),
    )
