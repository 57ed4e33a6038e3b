from django.contrib import admin

from .models import ModerationDecision, Suspension, VideoReport, WatermarkRecord


@admin.register(ModerationDecision)
class ModerationDecisionAdmin(admin.ModelAdmin):
    list_display = ("created_at", "team", "outcome", "category", "rule", "review")
    list_filter = ("outcome", "category", "review")
    search_fields = ("prompt", "team__name", "rule")
    raw_id_fields = ("team", "user", "job", "reviewed_by")


@admin.register(VideoReport)
class VideoReportAdmin(admin.ModelAdmin):
    list_display = ("created_at", "job", "reason", "review")
    list_filter = ("reason", "review")
    raw_id_fields = ("job", "reporter", "reviewed_by")


@admin.register(Suspension)
class SuspensionAdmin(admin.ModelAdmin):
    list_display = ("team", "reason", "created_at", "created_by", "lifted_at", "lifted_by")
    raw_id_fields = ("team", "created_by", "lifted_by")


@admin.register(WatermarkRecord)
class WatermarkRecordAdmin(admin.ModelAdmin):
    list_display = ("mark_id", "job", "model_name", "created_at")
    search_fields = ("mark_id",)
    raw_id_fields = ("job",)
