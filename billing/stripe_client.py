"""The one place that configures the Stripe SDK from settings.

A `stripe.StripeClient` is built per call from the current settings rather than set once
on the `stripe` module: nothing global to forget to reset, and tests (or a second
process) can point it at a fake server with `STRIPE_API_BASE`."""

import stripe
from django.conf import settings

# Retries reuse one idempotency key (the SDK adds it to POSTs), so they never double-charge.
MAX_NETWORK_RETRIES = 2


class StripeNotConfigured(Exception):
    def __init__(self) -> None:
        super().__init__("Stripe is not configured on this server (STRIPE_SECRET_KEY is unset).")


def stripe_configured() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)


def stripe_client() -> stripe.StripeClient:
    if not stripe_configured():
        raise StripeNotConfigured()
    base_addresses = {"api": settings.STRIPE_API_BASE} if settings.STRIPE_API_BASE else None
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY, base_addresses=base_addresses, max_network_retries=MAX_NETWORK_RETRIES
    )


def stripe_error_text(error: stripe.StripeError) -> str:
    """What to tell a person about a failed Stripe call (never the raw request)."""
    return error.user_message or str(error) or error.__class__.__name__
