"""A deleted job takes its files with it, however it is deleted: `job_delete`, its team's
deletion (teams sit below generation and cascade to jobs without knowing them), a user's
or the admin's. The files go once the deletion commits. So does a team LoRA's file."""

from django.db.models.signals import post_delete
from django.dispatch import receiver

from .loras import lora_file_delete
from .models import Job, Lora
from .services import jobs_delete_files


@receiver(post_delete, sender=Job, dispatch_uid="generation.job_files_follow_the_job")
def _delete_files_of_deleted_job(sender, instance: Job, **kwargs) -> None:
    jobs_delete_files([instance])


@receiver(post_delete, sender=Lora, dispatch_uid="generation.lora_file_follows_the_lora")
def _delete_file_of_deleted_lora(sender, instance: Lora, **kwargs) -> None:
    lora_file_delete(instance.file)
