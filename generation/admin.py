from django.contrib import admin

from .models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "team", "state", "model_name", "width", "height", "num_frames", "created_at"]
    list_filter = ["state", "model_name", "pool"]
    search_fields = ["id", "prompt", "team__name"]
    readonly_fields = [field.name for field in Job._meta.fields]
