from django import forms

from .services import MAX_ADJUSTMENT


class CreditAdjustForm(forms.Form):
    amount = forms.IntegerField(
        min_value=-MAX_ADJUSTMENT, max_value=MAX_ADJUSTMENT,
        help_text="Positive grants purchased credits; negative deducts (plan credits first).",
    )
    reason = forms.CharField(max_length=500, help_text="Kept in the ledger and the audit log.")

    def clean_amount(self):
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError("The amount must not be zero.")
        return amount

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Give a reason: it is kept in the audit log.")
        return reason


class SuspensionForm(forms.Form):
    reason = forms.CharField(max_length=500)

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Give a reason: it is kept in the audit log.")
        return reason


class ModerationDecisionForm(forms.Form):
    """A decision on an item of the moderation queue (ops.services.staff_moderation_decide)."""

    kind = forms.ChoiceField(choices=[("prompt", "prompt"), ("report", "report")])
    item = forms.IntegerField(min_value=1)
    decision = forms.ChoiceField(choices=[("dismiss", "Dismiss"), ("confirm", "Confirm"), ("take_down", "Take down")])
    note = forms.CharField(required=False, max_length=2000)


class ModerationSuspensionForm(forms.Form):
    """Suspend or restore a team from the moderation queue; the reason is checked by the
    staff action itself, so that a missing one reads the same as on the team's page."""

    team = forms.IntegerField(min_value=1)
    action = forms.ChoiceField(choices=[("suspend", "Suspend"), ("restore", "Restore")])
    reason = forms.CharField(required=False, max_length=500)
