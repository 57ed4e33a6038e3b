"""The gallery's reads: a team's videos narrowed by the filters a person picks.

Every query starts from the team (the same rule as `selectors.job_for_team`), so a filter
can only ever narrow what the team may see."""

import datetime as dt

from django import forms
from django.core.paginator import Page, Paginator
from django.utils import timezone

from . import catalog
from .models import Job

PAGE_SIZE = 24


class GalleryFilters(forms.Form):
    """The filters of the gallery page (GET). A bad value is an error naming the filter."""

    scope = forms.ChoiceField(
        choices=[("team", "Whole team"), ("mine", "Mine")], required=False, label="Show"
    )
    status = forms.ChoiceField(choices=[("", "Any status"), *Job.State.choices], required=False, label="Status")
    model = forms.ChoiceField(choices=(), required=False, label="Model")
    created_from = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "From: enter a date as YYYY-MM-DD."},
    )
    created_to = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "To: enter a date as YYYY-MM-DD."},
    )

    def __init__(self, *args, team, **kwargs):
        super().__init__(*args, **kwargs)
        # The models offered now and any the team has used (one may no longer be configured).
        labels = {spec.name: spec.label for spec in catalog.available_models()}
        for name in Job.objects.filter(team=team).values_list("model_name", flat=True).distinct():
            labels.setdefault(name, name)
        self.fields["model"].choices = [("", "Any model"), *sorted(labels.items())]

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("created_from"), cleaned.get("created_to")
        if start and end and start > end:
            self.add_error("created_to", "To: the end date is before the start date.")
        return cleaned


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min), timezone.get_current_timezone())


def gallery_jobs(*, team, user, scope: str = "team", status: str = "", model: str = "",
                 created_from: dt.date | None = None, created_to: dt.date | None = None):
    """The team's jobs, newest first, narrowed by the filters (dates are whole days,
    both ends included)."""
    jobs = Job.objects.filter(team=team).select_related("created_by")
    if scope == "mine":
        jobs = jobs.filter(created_by=user)
    if status:
        jobs = jobs.filter(state=status)
    if model:
        jobs = jobs.filter(model_name=model)
    if created_from:
        jobs = jobs.filter(created_at__gte=_day_start(created_from))
    if created_to:
        jobs = jobs.filter(created_at__lt=_day_start(created_to + dt.timedelta(days=1)))
    return jobs.order_by("-created_at")


def gallery_page(filters: GalleryFilters, *, team, user, page: str | int | None) -> Page:
    """One page of the filtered gallery; an invalid filter set shows nothing rather than
    everything (the form then says what is wrong)."""
    if filters.is_valid():
        values = {name: value for name, value in filters.cleaned_data.items() if value}
        jobs = gallery_jobs(team=team, user=user, **values)
    else:
        jobs = Job.objects.none()
    return Paginator(jobs, PAGE_SIZE).get_page(page)
