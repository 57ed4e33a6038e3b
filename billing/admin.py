from django import forms
from django.contrib import admin, messages

from . import ledger
from .models import (
    BillingAccount, Budget, BudgetAlert, CreditEntry, CreditPack, JobCharge, Plan, StripeEvent, UsageReport,
)


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "price_cents", "monthly_credits", "max_side", "max_duration_seconds",
                    "concurrent_jobs", "queue_priority", "api_access", "metered_overage", "is_active"]


@admin.register(CreditPack)
class CreditPackAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "credits", "price_cents", "is_active"]


class CreditEntryInline(admin.TabularInline):
    model = CreditEntry
    extra = 0
    can_delete = False
    fields = readonly_fields = ["created_at", "kind", "amount", "held_delta", "balance_after", "job_id", "actor",
                                "reference", "note"]
    ordering = ["-created_at", "-pk"]

    def has_add_permission(self, request, obj=None):
        return False


class BillingAccountForm(forms.ModelForm):
    """Staff change a team's plan here, and grant or remove credits through the ledger."""

    adjust_credits = forms.IntegerField(required=False, help_text="Positive grants credits; negative removes them.")
    adjust_note = forms.CharField(required=False, max_length=500, help_text="Why (required with an adjustment).")

    class Meta:
        model = BillingAccount
        fields = ["plan", "status"]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("adjust_credits") and not (cleaned.get("adjust_note") or "").strip():
            self.add_error("adjust_note", "Say why the credits change; it is kept in the ledger.")
        return cleaned


@admin.register(BillingAccount)
class BillingAccountAdmin(admin.ModelAdmin):
    form = BillingAccountForm
    list_display = ["team", "plan", "status", "subscription_credits", "purchased_credits", "held_credits",
                    "current_period_end"]
    list_filter = ["plan", "status"]
    search_fields = ["team__name", "stripe_customer_id"]
    readonly_fields = ["team", "subscription_credits", "purchased_credits", "held_credits", "current_period_end",
                       "stripe_customer_id", "stripe_subscription_id"]
    inlines = [CreditEntryInline]

    def has_add_permission(self, request):
        return False  # accounts are made with their team

    def save_model(self, request, obj, form, change):
        # Only plan and status are saved from the form; balances move through the ledger.
        BillingAccount.objects.filter(pk=obj.pk).update(plan=obj.plan, status=obj.status)
        amount = form.cleaned_data.get("adjust_credits")
        if amount:
            try:
                ledger.credits_adjust(obj.team, amount=amount, actor=request.user.email, note=form.cleaned_data["adjust_note"])
            except ledger.InsufficientCredits as error:
                messages.error(request, str(error))


@admin.register(JobCharge)
class JobChargeAdmin(admin.ModelAdmin):
    list_display = ["job_id", "account", "price_credits", "overage_credits", "state", "created_at"]
    list_filter = ["state"]

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(StripeEvent)
class StripeEventAdmin(admin.ModelAdmin):
    list_display = ["event_id", "type", "status", "received_at"]
    list_filter = ["status", "type"]
    readonly_fields = ["event_id", "type", "status", "error", "payload", "received_at", "processed_at"]


@admin.register(UsageReport)
class UsageReportAdmin(admin.ModelAdmin):
    list_display = ["identifier", "account", "value", "created_at", "sent_at", "attempts"]
    readonly_fields = ["identifier", "account", "event_name", "value", "created_at", "sent_at", "attempts", "last_error"]


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    """Raw records: customers set budgets on their Budgets page (billing.budgets checks them)."""

    list_display = ["pk", "account", "scope", "member", "api_key", "amount_credits", "period", "mode", "updated_at"]
    list_filter = ["scope", "period", "mode"]
    raw_id_fields = ["account", "member", "api_key", "created_by"]
    readonly_fields = ["account", "scope", "member", "api_key", "created_by", "created_at", "updated_at"]

    def has_add_permission(self, request):
        return False


@admin.register(BudgetAlert)
class BudgetAlertAdmin(admin.ModelAdmin):
    list_display = ["budget", "period_start", "threshold", "used_credits", "amount_credits", "fired_at"]
    readonly_fields = ["budget", "period_start", "threshold", "used_credits", "amount_credits", "job_id", "fired_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
