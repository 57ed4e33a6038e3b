"""REST API rate limits from the plan: requests per minute for every call, and videos per
minute for submissions, counted per API key (or per member using the API from the
browser) in fixed one-minute windows in the shared cache. Over the limit: 429 with
`Retry-After` (seconds to the next window)."""

import time

from django.core.cache import cache
from rest_framework import exceptions
from rest_framework.throttling import BaseThrottle

from accounts.selectors import request_actor

from .ledger import account_for_team

WINDOW_SECONDS = 60


class _PlanThrottle(BaseThrottle):
    scope = noun = plan_field = ""

    def applies(self, request) -> bool:
        return True

    def allow_request(self, request, view) -> bool:
        actor = request_actor(request)
        if actor is None or not self.applies(request):
            return True  # unauthenticated requests are refused before they count
        plan = account_for_team(actor.team).plan
        limit = getattr(plan, self.plan_field)
        who = f"key{actor.api_key.pk}" if actor.api_key else f"user{actor.user.pk}-team{actor.team.pk}"
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        key = f"ratelimit:{self.scope}:{who}:{window}"
        cache.add(key, 0, timeout=WINDOW_SECONDS * 2)
        count = cache.incr(key)
        if count <= limit:
            return True
        wait = max(1, round((window + 1) * WINDOW_SECONDS - now))
        raise exceptions.Throttled(
            wait=wait,
            detail=f"Rate limit reached: {limit} {self.noun} a minute on the {plan.name} plan. "
            f"Retry in {wait} s, or upgrade your plan for a higher limit.",
        )


class PlanRequestThrottle(_PlanThrottle):
    scope = "requests"
    noun = "requests"
    plan_field = "api_requests_per_minute"


class PlanVideoThrottle(_PlanThrottle):
    """Submissions only: POST /videos."""

    scope = "videos"
    noun = "new videos"
    plan_field = "api_videos_per_minute"

    def applies(self, request) -> bool:
        return request.method == "POST"
