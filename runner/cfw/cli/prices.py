"""`cfw prices [CLOUD] [--region R] [--machine PREFIX] [--json] [--refresh]`: the public
list prices cfw estimates costs with, their date and their source."""

from __future__ import annotations

import json
from typing import Any

import typer

from cfw.cli import app
from cfw.cli.output import Output
from cfw.core import prices
from cfw.core.errors import UserError

CLOUD_ARG = typer.Argument(
    None,
    help="aws, gcp or azure (default: all three).",
    autocompletion=lambda: list(prices.CLOUDS),
    show_default=False,
)
REGION_SECTIONS = ("machines", "families", "gpus", "fixed")
ESTIMATES = "estimates: public list prices (Linux, no discounts, no taxes), not a bill"


@app.command("prices")
def prices_command(
    cloud: str | None = CLOUD_ARG,
    region: str | None = typer.Option(
        None, "--region", "-r", help="Only this region (default: the table's first region)."
    ),
    machine: str | None = typer.Option(
        None, "--machine", "-m", help="Only machine types, families or GPUs starting with this."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="The tables (every row) as JSON on stdout, nothing else."
    ),
    refresh: bool = typer.Option(
        False,
        "--refresh",
        help="Fetch current list prices from the clouds' public price APIs (online) into "
        "~/.cache/cfw/prices, which cfw then prefers.",
    ),
    api_key: str | None = typer.Option(
        None,
        "--api-key",
        envvar="CFW_GOOGLE_API_KEY",
        help="Google API key for the Cloud Billing Catalog API (--refresh gcp).",
        show_default=False,
    ),
) -> None:
    """Show the price tables cost estimates come from (or refresh them)."""
    clouds = [_cloud(cloud)] if cloud else list(prices.CLOUDS)
    if refresh:
        _refresh(clouds, region, api_key, explicit=cloud is not None, as_json=as_json)
        return
    tables = [prices.table(c) for c in clouds]
    if region:
        tables = [t for t in tables if region in t.regions] or _no_region(tables, region)
    if as_json:
        payload = {c.cloud: _json_table(c, region, machine) for c in tables}
        typer.echo(json.dumps({"estimate": True, "terms": ESTIMATES, "clouds": payload}, indent=1))
        return
    for i, tab in enumerate(tables):
        if i:
            typer.echo("")
        _print_table(tab, region or tab.regions[0], machine)


def _cloud(name: str) -> str:
    try:
        return prices.canonical_cloud(name)
    except ValueError as exc:
        raise UserError(str(exc), "use aws, gcp or azure") from None


def _no_region(tables: list[prices.Table], region: str) -> list[prices.Table]:
    known = "; ".join(f"{t.cloud}: {', '.join(t.regions)}" for t in tables)
    raise UserError(f"no price table has region {region!r}", f"the tables cover {known}")


# -- text -------------------------------------------------------------------------------------
def _print_table(tab: prices.Table, region: str, machine: str | None) -> None:
    data = tab.shipped.data
    echo = typer.echo
    echo(f"{tab.cloud}: {data['title']}")
    echo(f"  prices as of {tab.as_of} — {ESTIMATES}")
    for layer in tab.layers:
        where = "shipped with cfw" if layer.origin == "shipped" else f"refreshed: {layer.origin}"
        echo(f"  source ({where}, as of {layer.as_of}): {layer.source}")
    for problem in tab.ignored:
        echo(f"  ignored {problem}")
    echo(f"  regions: {', '.join(tab.regions)}")
    echo(f"  spot: {tab.layers[0].data.get('spot', data['spot'])}")
    rows = _rows(tab, region, machine)
    if rows:
        echo(f"  {region}, USD per hour (estimates):")
        width = max(len(r[0]) for r in rows) + 2
        echo(f"    {'machine'.ljust(width)}{'on demand':>11}{'spot':>11}")
        for name, on_demand, spot in rows:
            echo(f"    {name.ljust(width)}{on_demand:>11}{spot:>11}")
    rates = tab.cloud == "gcp" and _print_rates(tab, region, machine)
    if machine is not None and not rows and not rates:
        echo(f"  {_nothing(tab, region, machine)}")
    total = sum(1 for _ in _listed(tab, region))
    if machine is None and total > len(rows):
        echo(
            f"  {len(rows)} of {total} listed; --machine PREFIX or --region R for others, "
            "--json for every row"
        )


def _rows(tab: prices.Table, region: str, machine: str | None) -> list[tuple[str, str, str]]:
    if machine is None:
        names = list(tab.shipped.data.get("featured", []))
    else:
        names = [n for n in _listed(tab, region) if _matches(n, machine)]
        if tab.cloud == "gcp" and machine not in names and _is_google_type(machine):
            names.insert(0, machine)
    rows = []
    for name in names:
        on_demand = _usd(tab.cloud, region, name, spot=False)
        if on_demand is None:
            continue
        rows.append((name, on_demand, _usd(tab.cloud, region, name, spot=True) or "—"))
    return rows


def _nothing(tab: prices.Table, region: str, machine: str) -> str:
    try:
        prices.machine_price(tab.cloud, region, machine)
    except prices.NoPrice as exc:
        if tab.cloud == "gcp" and _is_google_type(machine):
            return exc.message
    hint = " (name an exact type such as e2-standard-4, or a family such as e2)"
    return f"nothing matches {machine!r} in {region}" + (hint if tab.cloud == "gcp" else "")


def _usd(cloud: str, region: str, machine: str, *, spot: bool) -> str | None:
    usd = _price_of(cloud, region, machine, spot=spot)
    return None if usd is None else f"{usd:.4f}"


def _price_of(cloud: str, region: str, machine: str, *, spot: bool) -> float | None:
    try:
        return prices.machine_price(cloud, region, machine, spot=spot).usd_per_hour
    except prices.NoPrice:
        return None


def _listed(tab: prices.Table, region: str):
    seen: dict[str, None] = {}
    for layer in tab.layers:
        seen.update(dict.fromkeys(layer.data.get("machines", {}).get(region, {})))
    return iter(sorted(seen))


def _matches(name: str, prefix: str) -> bool:
    def bare(text: str) -> str:
        return text.lower().removeprefix("standard_")

    return bare(name).startswith(bare(prefix))


def _is_google_type(name: str) -> bool:
    try:
        prices.google_shape(name)
    except ValueError:
        return False
    return True


def _print_rates(tab: prices.Table, region: str, machine: str | None) -> bool:
    merged = tab.merged()
    families = merged.get("families", {}).get(region, {})
    gpus = merged.get("gpus", {}).get(region, {})
    chosen = {f: r for f, r in families.items() if machine is None or _matches(f, machine)}
    if chosen:
        typer.echo("  machine families, USD per vCPU-hour / per GB-hour (estimates):")
        for family, rates in chosen.items():
            typer.echo(
                f"    {family:<6}{_rate(rates.get('on_demand'))}   spot {_rate(rates.get('spot'))}"
            )
    picked = {g: p for g, p in gpus.items() if machine is None or machine.lower() in g}
    if picked:
        typer.echo("  GPUs attached to a VM, USD per GPU-hour (estimates):")
        for model, price in picked.items():
            spot = price.get("spot")
            spot_text = f"{spot:.4f}" if spot is not None else "—"
            typer.echo(f"    {model:<20}{price['on_demand']:>9.4f}   spot {spot_text}")
    return bool(chosen or picked)


def _rate(rates: dict[str, float] | None) -> str:
    return f"{rates['vcpu']:.6f} / {rates['gb']:.6f}" if rates else "—"


# -- JSON -------------------------------------------------------------------------------------
def _json_table(tab: prices.Table, region: str | None, machine: str | None) -> dict[str, Any]:
    merged = tab.merged()
    for section in REGION_SECTIONS:
        by_region = merged.get(section)
        if not isinstance(by_region, dict):
            continue
        if region:
            by_region = {r: v for r, v in by_region.items() if r in (region, "*")}
        if machine and section != "fixed":
            by_region = {
                r: {n: e for n, e in v.items() if _matches(n, machine)}
                for r, v in by_region.items()
            }
        merged[section] = by_region
    if tab.cloud == "gcp" and machine and _is_google_type(machine):
        for where in [region] if region else tab.regions:
            found = {"on_demand": _price_of("gcp", where, machine, spot=False)}
            found["spot"] = _price_of("gcp", where, machine, spot=True)
            entry = {key: usd for key, usd in found.items() if usd is not None}
            if entry:
                merged.setdefault("machines", {}).setdefault(where, {})[machine] = entry
    merged["as_of"] = tab.as_of
    merged["tables"] = [
        {"origin": layer.origin, "as_of": layer.as_of, "source": layer.source}
        for layer in tab.layers
    ]
    merged["ignored"] = list(tab.ignored)
    merged.pop("featured", None)
    return merged


# -- refresh ----------------------------------------------------------------------------------
def _refresh(
    clouds: list[str], region: str | None, api_key: str | None, *, explicit: bool, as_json: bool
) -> None:
    from cfw.core.prices import refresh

    out = Output()
    regions = [region] if region else None
    done: dict[str, dict[str, Any]] = {}
    for cloud in sorted(clouds, key=["azure", "gcp", "aws"].index):
        if cloud == "azure":
            path, count = refresh.refresh_azure(regions)
        elif cloud == "gcp":
            if not api_key and not explicit:
                out.warn("gcp skipped: the Cloud Billing Catalog API needs --api-key")
                continue
            path, count = refresh.refresh_gcp(api_key, regions)
        else:
            client = _aws_client(explicit, out)
            if client is None:
                continue
            path, count = refresh.refresh_aws(client, regions)
        as_of = prices.table(cloud).as_of
        done[cloud] = {"path": str(path), "as_of": as_of, "prices": count}
        out.success(f"{cloud}: {count} list prices as of {as_of} (estimates) written to {path}")
    if as_json:
        typer.echo(json.dumps({"estimate": True, "refreshed": done}))


def _aws_client(explicit: bool, out: Output):
    try:
        from cfw.backends.sdk import require

        boto3 = require("boto3", "aws")
    except UserError:
        if explicit:
            raise
        out.warn("aws skipped: boto3 is not installed (pip install 'cfw[aws]')")
        return None
    if not explicit and boto3.Session().get_credentials() is None:
        out.warn("aws skipped: the AWS Price List API needs AWS credentials")
        return None
    return lambda service, region: boto3.client(service, region_name=region)
