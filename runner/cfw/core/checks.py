"""Checks of config values that several kinds share, made before any credential or network
call: regions against each cloud's shipped list, CIDR blocks, GUIDs, machine/instance
types by a strict pattern, and the shortening of any value a message echoes.

Each check raises ValueError with the message pydantic turns into the field's one-line
error (cfw.core.config.describe_validation_error).
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
from functools import cache
from pathlib import Path

_DATA = Path(__file__).parent / "data" / "regions.json"
CLOUD_NAMES = {"aws": "an AWS", "gcp": "a Google Cloud", "azure": "an Azure"}
EXAMPLE_REGIONS = {"aws": "us-east-1", "gcp": "us-central1", "azure": "westeurope"}
EXTRA_REGIONS_VAR = "CFW_EXTRA_REGIONS"
_GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
# EC2: family (letters, a generation digit, attributes) . size
_EC2_TYPE_RE = re.compile(
    r"^(?:[a-z]+\d+[a-z0-9-]*|u-\d+tb\d+)"
    r"\.(?:nano|micro|small|medium|large|metal(?:-\d+xl)?|\d*xlarge)$"
)
_EC2_FAMILY_RE = re.compile(r"^(?:[a-z]+\d+[a-z0-9-]*|u-\d+tb\d+)$")
SHORT = 60  # the most characters of a value a message echoes


def shorten(value: object, limit: int = SHORT) -> str:
    """``repr(value)``, cut to ``limit`` characters with the total length said."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 1]}… ({len(text)} characters)"


@cache
def regions(cloud: str) -> tuple[str, ...]:
    return tuple(json.loads(_DATA.read_text())[cloud])


def check_region(cloud: str, value: str) -> str:
    """``value`` if it is a region of ``cloud`` (aws, gcp, azure)."""
    known = regions(cloud)
    extra = {r.strip() for r in os.environ.get(EXTRA_REGIONS_VAR, "").split(",") if r.strip()}
    if value in known or value in extra:
        return value
    close = difflib.get_close_matches(str(value).lower().replace(" ", "-"), known, n=1)
    guess = f"; did you mean {close[0]}?" if close else ""
    raise ValueError(
        f"not {CLOUD_NAMES[cloud]} region such as {EXAMPLE_REGIONS[cloud]}{guess} (a region "
        f"newer than cfw's list: set {EXTRA_REGIONS_VAR}={_printable(value)})"
    )


def _printable(value: object) -> str:
    text = str(value)
    return text if re.match(r"^[a-z0-9-]{1,40}$", text) else "NAME"


def check_cidr(value: str, *, version: int | None = 4) -> str:
    """An IP network in CIDR notation (host bits zero), e.g. 203.0.113.0/24."""
    try:
        net = ipaddress.ip_network(str(value), strict=True)
    except ValueError as exc:
        raise ValueError(
            f"{shorten(value)} is not a CIDR block such as 203.0.113.0/24 ({exc})"
        ) from None
    if version and net.version != version:
        raise ValueError(f"{shorten(value)} is not an IPv{version} CIDR block")
    return value


def check_guid(value: str, what: str) -> str:
    if not _GUID_RE.match(str(value)):
        raise ValueError(
            f"expected the {what}'s GUID, such as 00000000-0000-0000-0000-000000000000 "
            "(`az account show` prints it)"
        )
    return value


def check_ec2_type(value: str, *, families: bool = False) -> str:
    """An EC2 instance type (m5.large, c6i.2xlarge); with ``families`` also a family (m5)."""
    if _EC2_TYPE_RE.match(str(value)) or (families and _EC2_FAMILY_RE.match(str(value))):
        return value
    what = "an EC2 instance type" + (" or family" if families else "")
    example = "m5.large or c6i.2xlarge" + (", or a family such as m5" if families else "")
    raise ValueError(f"not {what} such as {example}")


# the largest machines any cloud rents have 24-32 TiB of memory and some hundreds of TiB of
# disk: a size above these is a typo (or a unit mistake), not a request
MAX_MEM_MB = 32 * 1024 * 1024
MAX_DISK_MB = 1024 * 1024 * 1024
MAX_RUNTIME_MIN = 60 * 24 * 366
_AWS_ID_RE = {
    "vpc": re.compile(r"^vpc-[0-9a-f]{8,17}$"),
    "subnet": re.compile(r"^subnet-[0-9a-f]{8,17}$"),
    "ami": re.compile(r"^ami-[0-9a-f]{8,17}$"),
    "sg": re.compile(r"^sg-[0-9a-f]{8,17}$"),
}


def check_aws_id(value: str, prefix: str) -> str:
    if not _AWS_ID_RE[prefix].match(str(value)):
        raise ValueError(f"expected an AWS id such as {prefix}-0123456789abcdef0")
    return value
