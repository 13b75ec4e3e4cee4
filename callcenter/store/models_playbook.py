"""Tables of the playbook part of the store (registered on ``models.Base``)."""

from __future__ import annotations
