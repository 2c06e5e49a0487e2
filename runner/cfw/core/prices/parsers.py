"""Parsers of the public price APIs' responses, and their paging. Pure: a page comes from
the ``fetch`` callable the caller passes (urllib in :mod:`cfw.core.prices.refresh`, a
recorded response in the tests).

- AWS Price List Query API (``pricing:GetProducts``, service AmazonEC2): ``PriceList`` is a
  list of JSON documents, one per product (its ``attributes`` and ``terms.OnDemand``);
  pages follow ``NextToken``. Spot prices: EC2 ``DescribeSpotPriceHistory`` (``NextToken``).
- Azure Retail Prices API (https://prices.azure.com/api/retail/prices): ``Items`` per page,
  the next page at ``NextPageLink``; no account needed.
- Cloud Billing Catalog API (``services/6F81-5844-456A/skus``, Compute Engine): ``skus`` per
  page, ``nextPageToken``; needs an API key.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import quote, urlencode

# -- AWS --------------------------------------------------------------------------------------
AWS_LINUX_FILTERS = {
    "operatingSystem": "Linux",
    "tenancy": "Shared",
    "preInstalledSw": "NA",
    "capacitystatus": "Used",
    "licenseModel": "No License required",
}


def aws_product_filters(region: str) -> list[dict[str, str]]:
    """GetProducts filters: Linux on-demand instances of ``region``, shared tenancy."""
    pairs = {"regionCode": region, **AWS_LINUX_FILTERS}
    return [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in pairs.items()]


def aws_product_pages(get_products: Callable[..., dict], region: str) -> Iterator[Any]:
    """Every PriceList entry of ``region``, following NextToken."""
    kwargs: dict[str, Any] = {
        "ServiceCode": "AmazonEC2",
        "Filters": aws_product_filters(region),
        "FormatVersion": "aws_v1",
        "MaxResults": 100,
    }
    while True:
        page = get_products(**kwargs)
        yield from page.get("PriceList", [])
        token = page.get("NextToken")
        if not token:
            return
        kwargs["NextToken"] = token


def parse_aws_products(price_list: Iterable[str | dict]) -> dict[str, dict[str, float]]:
    """{region: {instance type: on-demand USD per hour}} of Linux, shared-tenancy instances."""
    prices: dict[str, dict[str, float]] = {}
    for entry in price_list:
        doc = json.loads(entry) if isinstance(entry, str) else entry
        product = doc.get("product", {})
        attrs = product.get("attributes", {})
        if product.get("productFamily") != "Compute Instance":
            continue
        if any(attrs.get(k) != v for k, v in AWS_LINUX_FILTERS.items()):
            continue
        if attrs.get("operation", "RunInstances") != "RunInstances":  # RunInstances:0002 etc.
            continue
        usd = _aws_on_demand(doc.get("terms", {}).get("OnDemand", {}))
        if usd and attrs.get("instanceType") and attrs.get("regionCode"):
            prices.setdefault(attrs["regionCode"], {})[attrs["instanceType"]] = usd
    return prices


def _aws_on_demand(terms: dict[str, Any]) -> float | None:
    for term in terms.values():
        for dim in term.get("priceDimensions", {}).values():
            usd = float(dim.get("pricePerUnit", {}).get("USD", 0) or 0)
            if dim.get("unit") == "Hrs" and usd > 0:
                return usd
    return None


def aws_spot_pages(describe: Callable[..., dict], start_time: Any) -> Iterator[dict]:
    """Every spot price record in force at ``start_time`` (Linux/UNIX), following NextToken."""
    kwargs: dict[str, Any] = {
        "ProductDescriptions": ["Linux/UNIX"],
        "StartTime": start_time,
        "EndTime": start_time,
        "MaxResults": 1000,
    }
    while True:
        page = describe(**kwargs)
        yield from page.get("SpotPriceHistory", [])
        token = page.get("NextToken")
        if not token:
            return
        kwargs["NextToken"] = token


def parse_aws_spot(records: Iterable[dict]) -> dict[str, float]:
    """{instance type: typical spot USD per hour}: the median over the zones of each zone's
    latest price."""
    latest: dict[tuple[str, str], tuple[str, float]] = {}
    for rec in records:
        if rec.get("ProductDescription", "Linux/UNIX") != "Linux/UNIX":
            continue
        key = (rec["InstanceType"], rec.get("AvailabilityZone", ""))
        stamp = str(rec.get("Timestamp", ""))
        if key not in latest or stamp > latest[key][0]:
            latest[key] = (stamp, float(rec["SpotPrice"]))
    by_type: dict[str, list[float]] = {}
    for (itype, _zone), (_stamp, usd) in latest.items():
        by_type.setdefault(itype, []).append(usd)
    return {t: round(statistics.median(v), 6) for t, v in sorted(by_type.items())}


# -- Azure ------------------------------------------------------------------------------------
AZURE_URL = "https://prices.azure.com/api/retail/prices"


def azure_url(region: str, base: str = AZURE_URL) -> str:
    """The first page of the pay-as-you-go VM prices of ``region`` (spot included)."""
    odata = (
        "serviceName eq 'Virtual Machines' and priceType eq 'Consumption' "
        f"and armRegionName eq '{region}'"
    )
    return f"{base}?currencyCode=USD&$filter={quote(odata)}"


def azure_pages(fetch: Callable[[str], dict], url: str) -> Iterator[dict]:
    """Every item, following NextPageLink."""
    seen = set()
    while url and url not in seen:
        seen.add(url)
        page = fetch(url)
        yield from page.get("Items", [])
        url = page.get("NextPageLink") or ""


def parse_azure_items(items: Iterable[dict]) -> dict[str, dict[str, dict[str, float]]]:
    """{region: {VM size: {"on_demand": USD/h, "spot": USD/h}}} of Linux VMs. Batch
    low-priority is priced as spot where a size has no spot meter."""
    found: dict[tuple[str, str, str], tuple[str, float]] = {}
    for item in items:
        if item.get("type", "Consumption") != "Consumption":
            continue
        if "Windows" in item.get("productName", "") or item.get("unitOfMeasure") != "1 Hour":
            continue
        if item.get("isPrimaryMeterRegion") is False or item.get("currencyCode", "USD") != "USD":
            continue
        size, region = item.get("armSkuName"), item.get("armRegionName")
        if not size or not region:
            continue
        sku = item.get("skuName", "")
        capacity = (
            "spot" if sku.endswith(" Spot") else "low" if sku.endswith(" Low Priority") else "od"
        )
        key = (region, size, capacity)
        start = item.get("effectiveStartDate", "")
        usd = float(item.get("retailPrice", item.get("unitPrice", 0)))
        if usd > 0 and (key not in found or start > found[key][0]):
            found[key] = (start, usd)
    prices: dict[str, dict[str, dict[str, float]]] = {}
    for (region, size, capacity), (_start, usd) in sorted(found.items()):
        entry = prices.setdefault(region, {}).setdefault(size, {})
        if capacity == "od":
            entry["on_demand"] = usd
        elif capacity == "spot" or "spot" not in entry:
            entry["spot"] = usd
    return {r: {s: e for s, e in sizes.items() if "on_demand" in e} for r, sizes in prices.items()}


# -- Google -----------------------------------------------------------------------------------
GCP_URL = "https://cloudbilling.googleapis.com"
COMPUTE_ENGINE = "6F81-5844-456A"


def gcp_url(api_key: str, page_token: str | None = None, base: str = GCP_URL) -> str:
    query = {"key": api_key, "currencyCode": "USD", "pageSize": 5000}
    if page_token:
        query["pageToken"] = page_token
    return f"{base}/v1/services/{COMPUTE_ENGINE}/skus?{urlencode(query)}"


def gcp_pages(fetch: Callable[[str], dict], url_of: Callable[[str | None], str]) -> Iterator[dict]:
    """Every SKU, following nextPageToken (``url_of(token)`` gives a page's URL)."""
    token: str | None = None
    while True:
        page = fetch(url_of(token))
        yield from page.get("skus", [])
        token = page.get("nextPageToken") or None
        if not token:
            return


_SPOT_PREFIX = re.compile(r"^(?:Spot )?Preemptible ")
_GCP_RESOURCE = [
    (re.compile(r"^(E2|N2|A2|G2|C3) Instance (Core|Ram) running in "), None),
    (re.compile(r"^(N1) Predefined Instance (Core|Ram) running in "), None),
    (re.compile(r"^(N2D|T2D|C2D) AMD Instance (Core|Ram) running in "), None),
    (re.compile(r"^Compute optimized (Core|Ram) running in "), "c2"),
]
_GCP_GPU = re.compile(
    r"^Nvidia (?:Tesla )?(T4|P4|P100|V100|A100 80GB|A100|L4|H100 80GB) GPU "
    r"(?:attached to Spot Preemptible VMs )?running in "
)
_GPU_NAMES = {
    "T4": "nvidia-tesla-t4",
    "P4": "nvidia-tesla-p4",
    "P100": "nvidia-tesla-p100",
    "V100": "nvidia-tesla-v100",
    "A100": "nvidia-tesla-a100",
    "A100 80GB": "nvidia-a100-80gb",
    "L4": "nvidia-l4",
    "H100 80GB": "nvidia-h100-80gb",
}
_CAPACITY = {"OnDemand": "on_demand", "Preemptible": "spot"}


def parse_gcp_skus(skus: Iterable[dict], regions: Iterable[str]) -> dict[str, dict]:
    """{"families": {region: {family: {capacity: {"vcpu", "gb"}}}}, "gpus": {region: {model:
    {capacity: USD}}}} of ``regions``, from Compute Engine SKUs (per hour, per GiB-hour)."""
    wanted = set(regions)
    families: dict[str, dict] = {}
    gpus: dict[str, dict] = {}
    for sku in skus:
        category = sku.get("category", {})
        capacity = _CAPACITY.get(category.get("usageType", ""))
        usd = _gcp_unit_price(sku)
        if capacity is None or usd is None:
            continue
        description = _SPOT_PREFIX.sub("", sku.get("description", ""))
        target = _gcp_target(description)
        if target is None:
            continue
        section, name, unit = target
        for region in wanted.intersection(sku.get("serviceRegions", [])):
            if section == "gpus":
                gpus.setdefault(region, {}).setdefault(name, {})[capacity] = usd
            else:
                rates = families.setdefault(region, {}).setdefault(name, {})
                rates.setdefault(capacity, {})[unit] = usd
    complete = {
        region: {
            fam: {cap: r for cap, r in caps.items() if set(r) == {"vcpu", "gb"}}
            for fam, caps in fams.items()
        }
        for region, fams in families.items()
    }
    complete = {
        region: {fam: caps for fam, caps in fams.items() if "on_demand" in caps}
        for region, fams in complete.items()
    }
    gpus = {r: {m: p for m, p in models.items() if "on_demand" in p} for r, models in gpus.items()}
    return {"families": complete, "gpus": gpus}


def _gcp_target(description: str) -> tuple[str, str, str] | None:
    for pattern, family in _GCP_RESOURCE:
        match = pattern.match(description)
        if match:
            resource = match.groups()[-1]
            name = family or match.group(1).lower()
            return "families", name, "vcpu" if resource == "Core" else "gb"
    gpu = _GCP_GPU.match(description)
    if gpu:
        return "gpus", _GPU_NAMES[gpu.group(1)], ""
    return None


def _gcp_unit_price(sku: dict) -> float | None:
    """The marginal USD price per usage unit (the last tier: free tiers come first)."""
    for info in sku.get("pricingInfo", [])[:1]:
        expression = info.get("pricingExpression", {})
        if expression.get("usageUnit") not in ("h", "GiBy.h"):
            return None
        tiers = expression.get("tieredRates", [])
        if not tiers:
            return None
        unit = tiers[-1].get("unitPrice", {})
        if unit.get("currencyCode", "USD") != "USD":
            return None
        usd = int(unit.get("units", 0) or 0) + int(unit.get("nanos", 0) or 0) / 1e9
        return round(usd, 9) if usd > 0 else None
    return None
