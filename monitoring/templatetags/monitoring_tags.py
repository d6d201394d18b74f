"""``{% feedback_widget obj %}``: the "was this useful?" box on report and review pages."""

from __future__ import annotations

from typing import Any

from django import template
from django.contrib.contenttypes.models import ContentType
from django.db.models import Count, Q

from monitoring.models import Feedback

register = template.Library()


@register.inclusion_tag("monitoring/feedback_widget.html", takes_context=True)
def feedback_widget(context: dict[str, Any], obj: Any) -> dict[str, Any]:
    """The question, the person's current answer and the tally so far."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if obj is None or user is None or not user.is_authenticated:
        return {"show": False}
    content_type = ContentType.objects.get_for_model(obj)
    answers = Feedback.objects.filter(content_type=content_type, object_id=str(obj.pk))
    tally = answers.aggregate(useful=Count("pk", filter=Q(useful=True)), total=Count("pk"))
    mine = answers.filter(user=user).values_list("useful", flat=True).first()
    return {
        "show": True,
        "can_answer": user.has_perm("monitoring.add_feedback"),
        "label": obj._meta.label_lower,
        "object_id": obj.pk,
        "mine": mine,
        "tally": tally,
        "next": request.get_full_path(),
    }
