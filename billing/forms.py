from django import forms

from .models import CreditPack, Plan


class PlanChoiceForm(forms.Form):
    plan = forms.ModelChoiceField(
        queryset=Plan.objects.filter(is_active=True),
        to_field_name="slug",
        error_messages={"invalid_choice": "That plan does not exist or is no longer offered.", "required": "Choose a plan."},
    )


class PackChoiceForm(forms.Form):
    pack = forms.ModelChoiceField(
        queryset=CreditPack.objects.filter(is_active=True),
        to_field_name="slug",
        error_messages={
            "invalid_choice": "That credit pack does not exist or is no longer offered.",
            "required": "Choose a credit pack.",
        },
    )
