"""Tables of the dialer part of the store (registered on ``models.Base``)."""

from __future__ import annotations
