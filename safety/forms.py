from django import forms

from .models import VideoReport


class VerifyForm(forms.Form):
    file = forms.FileField(required=False, label="Video file")
    share_url = forms.CharField(required=False, max_length=500, label="…or a Framecast share link")

    def clean(self):
        data = super().clean()
        if not data.get("file") and not (data.get("share_url") or "").strip():
            raise forms.ValidationError("Choose a video file to upload, or paste a Framecast share link.")
        return data


class ReportForm(forms.Form):
    reason = forms.ChoiceField(choices=VideoReport.Reason.choices, widget=forms.RadioSelect, label="What is wrong with it?")
    note = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3}), label="Details (optional)")
