"""The content policy every submission passes first, before any price, quota or credit.

generation sits below safety in the layers (safety's reports, take-downs and verification
act on jobs), so generation does not import it: the composition root names the policy in
`settings.FRAMECAST_CONTENT_POLICY` (safety.moderation), a module with

    prompt_check(*, team, user, prompt, negative_prompt, via_api) -> decision
        decides; raises a core.errors.Refusal when the prompt or team may not generate
        (the refusal is recorded; nothing else is written then);
    decision_link_job(decision, job) -> None
        records an allowed decision with the job it became (inside the submission's
        transaction), or alone (job None) when the submission was refused afterwards.

A system check refuses to start without one: a platform that silently skipped moderation
would be worse than one that does not start.
"""

from functools import cache
from importlib import import_module
from types import ModuleType

from django.conf import settings
from django.core import checks

REQUIRED = ("prompt_check", "decision_link_job")


@cache
def policy() -> ModuleType:
    return import_module(settings.FRAMECAST_CONTENT_POLICY)


def prompt_check(**kwargs):
    return policy().prompt_check(**kwargs)


def decision_link_job(decision, job) -> None:
    policy().decision_link_job(decision, job)


@checks.register()
def check_content_policy(app_configs=None, **kwargs) -> list:
    name = getattr(settings, "FRAMECAST_CONTENT_POLICY", "")
    try:
        module = import_module(name) if name else None
    except ImportError as error:
        return [checks.Error(f"FRAMECAST_CONTENT_POLICY {name!r} cannot be imported: {error}", id="generation.E001")]
    missing = [function for function in REQUIRED if not hasattr(module, function)] if module else list(REQUIRED)
    if missing:
        return [checks.Error(
            f"FRAMECAST_CONTENT_POLICY must name a module with {', '.join(REQUIRED)} (missing: {', '.join(missing)}).",
            id="generation.E001",
        )]
    return []
