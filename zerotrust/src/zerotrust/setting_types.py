"""The value types settings are made of: ids, lists written `a,b` or as JSON, networks, host names."""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator
from pydantic_settings import NoDecode

from .hosts import host_entries, public_url
from .ids import OBJECT_ID


def split_list(value: object) -> object:
    """Every list setting reads the same: `a,b` (or spaces), or a JSON list `["a", "b"]`."""
    if isinstance(value, str):
        if value.strip().startswith("["):
            try:
                return json.loads(value)
            except ValueError:
                raise ValueError("is not a JSON list") from None
        return [v for v in re.split(r"[,\s]+", value.strip()) if v]
    return value


def _guids(value: tuple[str, ...]) -> tuple[str, ...]:
    for item in value:
        if not OBJECT_ID.match(item):
            raise ValueError(f"{item[:60]!r} is not an id (a lowercase GUID)")
    return value


def _guid(value: str) -> str:
    return _guids((value,))[0]


def _networks(value: tuple[str, ...]) -> tuple[str, ...]:
    for item in value:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(f"{item[:60]!r} is not an address or network (e.g. 10.0.0.0/16)") from None
    return value


Guid = Annotated[str, AfterValidator(_guid)]
GuidList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(split_list), AfterValidator(_guids)]
TextList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(split_list)]
NetworkList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(split_list), AfterValidator(_networks)]
PublicUrl = Annotated[str, AfterValidator(public_url)]
HostList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(split_list), AfterValidator(host_entries)]
