from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.forms.forms import NON_FIELD_ERRORS
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.redirects import safe_next

from .forms import SignupForm, ThrottledAuthenticationForm
from .hygiene import VerificationRefused, email_verification_send, email_verify
from .services import signup_request


@require_http_methods(["GET", "POST"])
def signup(request):
    if request.user.is_authenticated:
        return redirect(safe_next(request) or "generation:studio")
    form = SignupForm(request.POST or None, initial={"email": request.GET.get("email", "")})
    if request.method == "POST" and form.is_valid():
        # The same answer for a new and a taken address (no log-in here, which would say which).
        signup_request(email=form.cleaned_data["email"], password=form.cleaned_data["password"],
                       base_url=request.build_absolute_uri("/"))
        come_back = safe_next(request)
        return redirect(reverse("accounts:signup_done") + (f"?{urlencode({'next': come_back})}" if come_back else ""))
    context = {"form": form, "next": safe_next(request) or ""}
    return render(request, "accounts/signup.html", context, status=400 if form.errors else 200)


@require_GET
def signup_done(request):
    come_back = safe_next(request)
    login_url = reverse("accounts:login") + (f"?{urlencode({'next': come_back})}" if come_back else "")
    return render(request, "accounts/signup_done.html", {"login_url": login_url})


class LoginView(auth_views.LoginView):
    """Django's log-in, throttled per address and per client (see accounts.hygiene)."""

    form_class = ThrottledAuthenticationForm
    template_name = "accounts/login.html"

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.has_error(NON_FIELD_ERRORS, "throttled"):
            response.status_code = 429
        return response


@require_GET
def verify_email(request, token: str):
    try:
        user = email_verify(token=token)
    except VerificationRefused as refusal:
        return render(request, "accounts/verify_email.html", {"refusal": refusal.message}, status=refusal.status)
    messages.success(request, f"Thank you: {user.email} is verified.")
    return redirect("generation:studio")


@login_required
@require_POST
def verify_email_resend(request):
    if request.user.email_verified:
        messages.info(request, "Your email address is verified already.")
    else:
        email_verification_send(user=request.user, base_url=request.build_absolute_uri("/"))
        messages.success(request, f"We sent a new verification link to {request.user.email}.")
    return redirect(safe_next(request) or "generation:studio")
