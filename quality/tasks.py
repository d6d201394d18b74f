"""Celery tasks of the quality app."""

from celery import shared_task

from .services import review_item_resume


@shared_task(name="quality.review_resume", acks_late=True)
def review_resume_task(item_id: int) -> str:
    """Resume the work an approved review was blocking (idempotent: an item resumes once)."""
    return review_item_resume(item_id=item_id)
