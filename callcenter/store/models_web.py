"""Tables of the web part of the store (registered on ``models.Base``)."""

from __future__ import annotations
