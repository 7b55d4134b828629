"""Ids in requests: what the API takes as the id of a row it looks up.

DRF's PrimaryKeyRelatedField passes whatever JSON gave it to the database look-up: a number past
64 bits or an infinity (``1e999`` in JSON) raised there (OverflowError: a 500, and a batch lost its
valid items with it), and ``5.5`` was read as row 5. ``IdField`` takes a whole number, or its digits
as text (as DRF does), and refuses anything else before any query; ``ModelSerializer`` uses it for
every relation it writes.
"""

from __future__ import annotations

import math
import re
from typing import Any, TypeVar

from django.db import models
from rest_framework import serializers

from buzon.messages.outbox import MAX_ID

_DIGITS = re.compile(r"\s*-?\d{1,25}\s*")

_M = TypeVar("_M", bound=models.Model)


def whole_number(data: Any) -> int | None:
    """``data`` as a whole number: an int (not a bool), a float with nothing after the point, or
    digits as text; None for anything else (``true``, ``5.5``, ``1e999``, ``"5.0"``, a list)."""
    if isinstance(data, bool):
        return None
    if isinstance(data, int):
        return data
    if isinstance(data, float):
        return int(data) if math.isfinite(data) and data.is_integer() else None
    if isinstance(data, str) and _DIGITS.fullmatch(data):
        return int(data)
    return None


class IdField(serializers.PrimaryKeyRelatedField):  # type: ignore[type-arg]
    """A related row by its id (``whole_number``): not a whole number is ``incorrect_type``; one no
    key can hold (0, negative, past 64 bits) names no row, ``does_not_exist``, without a query."""

    def to_internal_value(self, data: Any) -> Any:
        if self.pk_field is not None:
            return super().to_internal_value(data)
        number = whole_number(data)
        if number is None:
            self.fail("incorrect_type", data_type=type(data).__name__)
        if not 0 < number <= MAX_ID:
            self.fail("does_not_exist", pk_value=data)
        return super().to_internal_value(number)


class ModelSerializer(serializers.ModelSerializer[_M]):
    """DRF's ModelSerializer whose relations take their ids through ``IdField``."""

    serializer_related_field = IdField
