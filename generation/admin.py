from django.contrib import admin

from .models import Job, Lora


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "team", "state", "model_name", "width", "height", "num_frames", "created_at"]
    list_filter = ["state", "model_name", "pool"]
    search_fields = ["id", "prompt", "team__name"]
    readonly_fields = [field.name for field in Job._meta.fields]


@admin.register(Lora)
class LoraAdmin(admin.ModelAdmin):
    """Read-only: uploads and deletions go through generation.loras (checks, storage)."""

    list_display = ["name", "team", "model_name", "rank", "size_bytes", "created_at", "deleted_at"]
    list_filter = ["model_name"]
    search_fields = ["id", "name", "team__name", "sha256"]
    readonly_fields = [field.name for field in Lora._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # generation.loras.lora_delete keeps the file while a waiting video needs it
