"""The team's LoRAs page: the list, the upload form and delete. Thin views over
generation.loras (the rules, the storage) and accounts.permissions (owners and admins
upload and delete; members see and use them)."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods, require_POST

from accounts.permissions import Perm, has_perm, require
from accounts.selectors import request_membership
from billing import pricing
from billing.ledger import account_for_team
from core.errors import Refusal, RefusalFormMixin

from . import catalog
from . import loras as team_loras
from .lora_targets import transformer_config


class LoraForm(RefusalFormMixin, forms.Form):
    name = forms.CharField(max_length=team_loras.MAX_NAME_CHARS, required=False)
    model = forms.ChoiceField(choices=(), required=False)
    file = forms.FileField(required=False, help_text="A .safetensors file (diffusers or original Wan names).")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = [
            (spec.name, spec.label) for spec in catalog.available_models() if transformer_config(spec) is not None
        ]


def _page(request, membership, form, *, status=200):
    team = membership.team
    plan = account_for_team(team).plan
    context = {
        "form": form,
        "team": team,
        "plan": plan,
        "loras": team_loras.loras_for_team(team),
        "can_manage": has_perm(membership, Perm.MANAGE_LORAS),
        "max_per_job": team_loras.MAX_LORAS_PER_JOB,
        "max_scale": team_loras.MAX_SCALE,
        "surcharge_percent": round(100 * pricing.LORA_SURCHARGE),
    }
    return render(request, "generation/loras.html", context, status=status)


@csrf_exempt  # checked by _loras_page, after the upload's size limit is in place
@login_required
@require_http_methods(["GET", "POST"])
def loras_page(request):
    membership = request_membership(request)
    if request.method == "POST" and has_perm(membership, Perm.MANAGE_LORAS):
        try:
            # Counted while Django reads the upload, stopped past the plan's size.
            limit = team_loras.upload_limit_checked(membership.team)
            request.upload_handlers.insert(0, team_loras.SizeLimitHandler(limit, request))
            request.FILES  # noqa: B018 - read here, where a refusal can be answered
        except team_loras.LoraPlanLimit as refusal:  # no LoRAs on the plan, or a file too large
            form = LoraForm(data={})  # the body was not read to its end: nothing of it to show again
            form.is_valid()
            form.add_refusal(refusal)
            return _page(request, membership, form, status=refusal.status)
    return _loras_page(request)


@csrf_protect
def _loras_page(request):
    membership = request_membership(request)
    require(membership, Perm.VIEW)
    if request.method != "POST":
        return _page(request, membership, LoraForm())
    require(membership, Perm.MANAGE_LORAS)
    form = LoraForm(request.POST, request.FILES)
    form.is_valid()  # only for redisplay: generation.loras decides, naming the field
    try:
        lora = team_loras.lora_create(
            team=membership.team, user=request.user, name=request.POST.get("name"),
            model_name=request.POST.get("model"), upload=request.FILES.get("file"),
        )
    except Refusal as refusal:
        form.add_refusal(refusal)
        return _page(request, membership, form, status=refusal.status)
    messages.success(request, f"LoRA {lora.name!r} is ready for {lora.model_name} videos.")
    return redirect("generation:loras")


@login_required
@require_POST
def lora_delete_view(request, lora_id):
    membership = request_membership(request)
    require(membership, Perm.VIEW)
    try:  # 404 before 403: another team's LoRA stays unknown
        lora = team_loras.lora_for_team(membership.team, lora_id)
    except team_loras.LoraNotFound:
        raise Http404("No such LoRA.") from None
    require(membership, Perm.MANAGE_LORAS)
    team_loras.lora_delete(lora)
    messages.success(request, f"LoRA {lora.name!r} deleted. Videos already waiting for it still get it.")
    return redirect("generation:loras")
