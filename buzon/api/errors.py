"""A services ValidationError as an API 400: field-keyed messages plus the failure's code and help page.

Shape (the field keys are what DRF clients already expect; the rest adds what a program needs)::

    {"incoming_host": ["The server name “imap.exmaple.com” could not be found. ..."],
     "code": "dns", "help_url": "https://buzon.example/help/troubleshooting/unknown-host/",
     "errors": [{"field": "incoming_host", "message": "...", "code": "dns", "help_url": "..."}]}

`code` and `help_url` at the top are those of the first error that has a help page (the probe
failure), else of the first error. Messages are in the request's language (Accept-Language).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.settings import api_settings

from buzon.mailboxes.troubleshooting import troubleshooting_topic


class ServiceError(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = _("The request was refused.")
    default_code = "invalid"


def help_url(request: Request | None, slug: str | None) -> str | None:
    if not slug or troubleshooting_topic(slug) is None:
        return None
    path = reverse("web:troubleshooting-topic", args=[slug])
    return request.build_absolute_uri(path) if request is not None else path


def _entries(error: DjangoValidationError) -> list[tuple[str, DjangoValidationError]]:
    if hasattr(error, "error_dict"):
        return [(field, item) for field, items in error.error_dict.items() for item in items]
    return [(NON_FIELD_ERRORS, item) for item in error.error_list]


def service_error(error: DjangoValidationError, request: Request | None) -> ServiceError:
    """Translate a services ValidationError into the 400 described above."""
    detail: dict[str, Any] = {}
    listed: list[dict[str, Any]] = []
    for field, item in _entries(error):
        key = api_settings.NON_FIELD_ERRORS_KEY if field == NON_FIELD_ERRORS else field
        params = item.params if isinstance(item.params, dict) else {}
        for text in item.messages:
            detail.setdefault(key, []).append(text)
            listed.append({"field": key, "message": text, "code": item.code or "invalid",
                           "help_url": help_url(request, params.get("help_slug"))})
    first = next((entry for entry in listed if entry["help_url"]), listed[0] if listed else None)
    detail["code"] = first["code"] if first else "invalid"
    detail["help_url"] = first["help_url"] if first else None
    detail["errors"] = listed
    exception = ServiceError()
    exception.detail = detail  # type: ignore[assignment]  # kept as is: DRF would turn None into "None"
    return exception
