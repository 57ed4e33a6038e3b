from celery import shared_task


@shared_task(name="generation.deliver_webhook", ignore_result=True)
def deliver_webhook(delivery_id: str) -> None:
    from .webhooks import webhook_deliver

    webhook_deliver(delivery_id)


@shared_task(name="generation.retry_webhooks", ignore_result=True)
def retry_webhooks() -> int:
    from .webhooks import webhooks_retry_due

    return webhooks_retry_due()


@shared_task(name="generation.purge_deleted_loras", ignore_result=True)
def purge_deleted_loras() -> int:
    """Deleted team LoRAs whose last waiting video has run: their rows and files go."""
    from .loras import loras_purge_deleted

    return loras_purge_deleted()
