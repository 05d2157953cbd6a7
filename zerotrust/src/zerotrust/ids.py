"""Entra object ids (users, groups, tenants, applications) in the form tokens carry them: a lowercase GUID.

One pattern for every tier, so a path segment, a body field or a setting is checked the same way
everywhere. `OBJECT_ID.pattern` is what pydantic and FastAPI's `pattern=` take.
"""

from __future__ import annotations

import re

OBJECT_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

__all__ = ["OBJECT_ID"]
