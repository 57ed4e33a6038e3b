"""The input-cleaning rule (core.cleaning) for the HTML pages: every query string and
every URL-encoded form they receive, checked once before the view runs.

Many pages read request.POST or request.GET straight into a service (team names, API key
names, gallery filters), and Django's forms check NUL only in CharField; one check here
covers them all, including forms written later. The REST APIs are left to their parsers
(core.parsers), which answer in each API's own error shape, and so are the other views
exempt from CSRF (Stripe's webhook): they read their bodies themselves. For every other
POST, CsrfViewMiddleware has already parsed the body (it looks for the form's token), so
checking it here reads nothing more.
"""

from django.shortcuts import render

from .cleaning import check_querydict
from .errors import API_PREFIXES, Refusal


class FormInputMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        # After CsrfViewMiddleware: a forged post is refused as forged first.
        if request.path.startswith(API_PREFIXES):
            return None
        try:
            check_querydict(request.GET)
            if request.method == "POST" and not getattr(view_func, "csrf_exempt", False):
                check_querydict(request.POST)
        except Refusal as refusal:
            return render(request, "400.html", {"message": refusal.message}, status=400)
        return None
