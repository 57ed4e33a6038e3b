from django.contrib import admin

from .models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: the audit log is written by ops.services and never edited."""

    list_display = ["at", "staff_email", "action", "target_label", "reason"]
    list_filter = ["action"]
    search_fields = ["staff_email", "target_label", "reason"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
