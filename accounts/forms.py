import math

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm

from .hygiene import login_failure_record, login_lockout_seconds_left, login_success_record
from .models import Membership, User


class SignupForm(forms.Form):
    email = forms.EmailField(max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}), strip=False)

    def clean_email(self) -> str:
        # A taken address is not an error here: that would tell anyone who has an account
        # (accounts.services.signup_request mails its owner instead).
        return self.cleaned_data["email"].lower()

    def clean(self):
        cleaned = super().clean()
        password = cleaned.get("password")
        if password:
            try:
                password_validation.validate_password(password, User(email=cleaned.get("email", "")))
            except forms.ValidationError as error:
                self.add_error("password", error)
        return cleaned


class ThrottledAuthenticationForm(AuthenticationForm):
    """The log-in form, refusing without checking the password while the address or the
    client is locked out after too many failures."""

    def clean(self):
        email = self.cleaned_data.get("username") or ""
        # Behind a reverse proxy, uvicorn must trust its X-Forwarded-For (FORWARDED_ALLOW_IPS),
        # or every client shares the proxy's address and its per-IP limit.
        ip = self.request.META.get("REMOTE_ADDR") if self.request else None
        seconds = login_lockout_seconds_left(email=email, ip=ip)
        if seconds:
            minutes = math.ceil(seconds / 60)
            raise forms.ValidationError(
                f"Too many failed log-in attempts. Try again in {minutes} minute{'s' if minutes != 1 else ''}.",
                code="throttled",
            )
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            login_failure_record(email=email, ip=ip)
            raise
        login_success_record(email=email)
        return cleaned


class InvitationForm(forms.Form):
    email = forms.EmailField(max_length=254)
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.MEMBER)
