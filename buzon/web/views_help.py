"""Troubleshooting pages: what each connection failure means and how to fix it (both languages)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from buzon.mailboxes.troubleshooting import all_topics, troubleshooting_topic
from buzon.web import crumbs


@login_required
def troubleshooting(request: HttpRequest) -> HttpResponse:
    return render(request, "web/help/list.html", {"topics": all_topics(), "breadcrumbs": crumbs.troubleshooting()})


@login_required
def troubleshooting_topic_page(request: HttpRequest, slug: str) -> HttpResponse:
    topic = troubleshooting_topic(slug)
    if topic is None:
        raise Http404(slug)
    return render(request, "web/help/topic.html", {
        "topic": topic, "topics": all_topics(), "breadcrumbs": crumbs.troubleshooting((topic.title, None)),
    })
