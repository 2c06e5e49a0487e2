"""``cfw prices --refresh``: fetch current list prices from the public APIs and write a
refreshed table to the user directory (:func:`cfw.core.prices.tables.user_dir`).

Online only. Azure needs nothing; Google needs an API key (the Cloud Billing Catalog API
refuses anonymous calls); AWS needs credentials allowed ``pricing:GetProducts`` (and
``ec2:DescribeSpotPriceHistory`` for spot prices), through boto3 clients the caller passes
in (core imports no cloud SDK). A refreshed table holds what the API gave; every other
entry (fixed costs, Google machine shapes, spot prices AWS would not give) keeps coming from
the shipped table, with the shipped table's date.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cfw.core.errors import UserError, WorkFailed
from cfw.core.prices import parsers
from cfw.core.prices.tables import Table, reload, table, user_dir

Fetch = Callable[[str], dict]


class ApiRefused(WorkFailed):
    """The API answered with an HTTP error (``status``)."""

    def __init__(self, message: str, hint: str, status: int):
        super().__init__(message, hint)
        self.status = status


def fetch_json(url: str, timeout: float = 60) -> dict:
    """GET ``url`` as JSON; WorkFailed with one line when the network or the API fails."""
    request = urllib.request.Request(
        url, headers={"Accept": "application/json", "User-Agent": "cfw-prices"}
    )
    host = urlsplit(url).netloc or url
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = _api_error(exc)
        raise ApiRefused(f"{host} answered HTTP {exc.code}{detail}", _KEEP, exc.code) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise WorkFailed(f"cannot reach {host} to refresh prices: {reason}", _KEEP) from None
    except ValueError as exc:
        raise WorkFailed(f"{host} answered something that is not JSON: {exc}", _KEEP) from None


_KEEP = "the shipped price tables stay in use"


def _api_error(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read())
        message = body.get("error", {}).get("message") or body.get("Message")
    except (ValueError, AttributeError, OSError):
        return ""
    return f": {' '.join(str(message).split())}" if message else ""


def _regions(tab: Table, regions: list[str] | None) -> list[str]:
    return list(regions) if regions else tab.shipped.data["regions"]


def _write(cloud: str, data: dict[str, Any]) -> Path:
    directory = user_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{cloud}.json"
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    os.replace(partial, path)
    reload()
    return path


def _base(tab: Table, source: str, regions: list[str], today: str, spot: str) -> dict[str, Any]:
    shipped = tab.shipped.data
    return {
        "cloud": tab.cloud,
        "title": shipped.get("title", tab.cloud),
        "as_of": today,
        "source": source,
        "currency": "USD",
        "terms": shipped["terms"],
        "spot": spot,
        "notes": [f"Fetched by `cfw prices --refresh {tab.cloud}` on {today}."],
        "regions": regions,
    }


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


def refresh_azure(
    regions: list[str] | None = None, fetch: Fetch = fetch_json, today: str | None = None
) -> tuple[Path, int]:
    """Azure Retail Prices API → ``azure.json``; (its path, VM sizes priced)."""
    tab = table("azure")
    base_url = os.environ.get("CFW_PRICES_AZURE_URL", parsers.AZURE_URL)
    wanted = _regions(tab, regions)
    machines: dict[str, dict] = {}
    for region in wanted:
        items = parsers.azure_pages(fetch, parsers.azure_url(region, base_url))
        machines.update(parsers.parse_azure_items(items))
    count = sum(len(v) for v in machines.values())
    if not count:
        raise WorkFailed(f"the Azure Retail Prices API listed no VM prices for {wanted}", _KEEP)
    spot = "Current spot prices (Spot meters; Batch low-priority where a size has no Spot "
    data = _base(tab, parsers.AZURE_URL, wanted, today or _today(), spot + "meter).")
    data["machines"] = machines
    return _write("azure", data), count


def refresh_gcp(
    api_key: str | None,
    regions: list[str] | None = None,
    fetch: Fetch = fetch_json,
    today: str | None = None,
) -> tuple[Path, int]:
    """Cloud Billing Catalog API → ``gcp.json`` (family rates and GPUs); (path, rates)."""
    if not api_key:
        raise UserError(
            "the Cloud Billing Catalog API needs an API key",
            "create one (Google Cloud console: APIs & Services > Credentials, with the Cloud "
            "Billing API enabled) and pass --api-key or set CFW_GOOGLE_API_KEY",
        )
    tab = table("gcp")
    base_url = os.environ.get("CFW_PRICES_GCP_URL", parsers.GCP_URL)
    wanted = _regions(tab, regions)
    skus = parsers.gcp_pages(fetch, lambda token: parsers.gcp_url(api_key, token, base_url))
    try:
        parsed = parsers.parse_gcp_skus(skus, wanted)
    except ApiRefused as exc:
        if exc.status not in (400, 401, 403):
            raise
        raise UserError(
            f"the Cloud Billing Catalog API refused the API key ({exc.message})",
            "check the key, and that the Cloud Billing API is enabled in its project",
        ) from None
    count = sum(len(f) for f in parsed["families"].values())
    if not count:
        raise WorkFailed(f"the Cloud Billing Catalog listed no machine rates for {wanted}", _KEEP)
    source = f"{parsers.GCP_URL}/v1/services/{parsers.COMPUTE_ENGINE}/skus"
    spot = "Current Spot VM rates (the catalog's Preemptible SKUs)."
    data = _base(tab, source, wanted, today or _today(), spot)
    data.update(parsed)
    return _write("gcp", data), count


def refresh_aws(
    client: Callable[[str, str], Any],
    regions: list[str] | None = None,
    today: str | None = None,
    now: datetime | None = None,
) -> tuple[Path, int]:
    """AWS Price List Query API (and spot price history) → ``aws.json``; (path, types).

    ``client(service, region)`` returns a boto3 client.
    """
    tab = table("aws")
    wanted = _regions(tab, regions)
    pricing = _aws_call(client)("pricing", "us-east-1")  # the Price List API's own endpoint
    machines: dict[str, dict] = {}
    for region in wanted:
        pages = parsers.aws_product_pages(_aws_call(pricing.get_products), region)
        on_demand = parsers.parse_aws_products(pages).get(region, {})
        machines[region] = {t: {"on_demand": usd} for t, usd in sorted(on_demand.items())}
    spot_note = "Current spot prices: the median over the zones (DescribeSpotPriceHistory)."
    try:
        for region in wanted:
            ec2 = _aws_call(client)("ec2", region)
            records = parsers.aws_spot_pages(
                _aws_call(ec2.describe_spot_price_history), now or datetime.now(UTC)
            )
            for itype, usd in parsers.parse_aws_spot(records).items():
                if itype in machines[region]:
                    machines[region][itype]["spot"] = usd
    except WorkFailed:
        spot_note = "No spot prices were fetched: they come from the shipped table."
    count = sum(len(v) for v in machines.values())
    if not count:
        raise WorkFailed(f"the AWS Price List API listed no EC2 prices for {wanted}", _KEEP)
    source = "AWS Price List Query API (pricing:GetProducts, AmazonEC2)"
    data = _base(tab, source, wanted, today or _today(), spot_note)
    data["machines"] = machines
    return _write("aws", data), count


def _aws_call(method: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except Exception as exc:  # botocore's errors: no credentials, no network, denied
            text = " ".join(str(exc).split())
            if type(exc).__name__ in ("NoCredentialsError", "PartialCredentialsError"):
                raise UserError(
                    f"AWS: {text}",
                    "the AWS Price List API needs credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID, "
                    "...) of an identity allowed pricing:GetProducts",
                ) from None
            raise WorkFailed(f"AWS: {type(exc).__name__}: {text}", _KEEP) from None

    return call
