"""The prompt policy as data (policy.toml) and the pure function that applies it.

`evaluate(text)` returns a Verdict — allow, flag (generate, but a person reviews it) or
refuse — with the category and the rule that fired. No database here: safety.moderation
records the decision and acts on it.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

ALLOW, FLAG, REFUSE = "allow", "flag", "refuse"

# Look-alike characters folded before matching ("s3x", "n@ked", "$ex").
_LOOKALIKES = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"})


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


def fold(text: str) -> str:
    """Lower case, accents removed, look-alikes folded, single spaces; dotted or spaced
    single letters ("s e x", "s.e.x") joined."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    # Digits inside words are look-alikes ("s3x"); numbers on their own stay numbers ("12 year old").
    text = re.sub(r"(?<=[a-z])[013457@$!]|[013457@$!](?=[a-z])", lambda m: m.group().translate(_LOOKALIKES), text)
    text = text.replace("@", "a").replace("$", "s")
    text = re.sub(r"\b(?:[a-z][\s._*-]){2,}[a-z]\b", lambda m: re.sub(r"[\s._*-]", "", m.group()), text)
    return re.sub(r"\s+", " ", text).strip()


def _terms_pattern(terms: list[str], where: str) -> re.Pattern:
    if not terms or not all(isinstance(term, str) and term.strip() for term in terms):
        raise ImproperlyConfigured(f"{where}: terms must be a non-empty list of non-empty strings.")
    alternatives = sorted({re.escape(fold(term)).replace(r"\ ", r"\s+") for term in terms}, key=len, reverse=True)
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
    folded = fold(text)
    for category in policy.categories:
        for rule in category.rules:
            if all(group.search(folded) for group in rule.groups):
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
    try:
        from profanity_check import predict_prob
    except ImportError:
        return None
    return float(predict_prob([text])[0])
