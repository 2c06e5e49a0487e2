"""`cfw prices --refresh`: the price APIs' parsers and paging on recorded responses (never
the network), and the refreshed tables they write."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from cfw.core import prices
from cfw.core.errors import UserError, WorkFailed
from cfw.core.prices import parsers, refresh
from conftest import REPO

DATA = REPO / "tests" / "data" / "prices"


def recorded(name: str) -> dict:
    return json.loads((DATA / name).read_text())


@pytest.fixture(autouse=True)
def user_tables(tmp_path, monkeypatch) -> Path:
    directory = tmp_path / "user-prices"
    monkeypatch.setenv("CFW_PRICES_DIR", str(directory))
    for name in ("CFW_PRICES_AZURE_URL", "CFW_PRICES_GCP_URL"):
        monkeypatch.delenv(name, raising=False)
    prices.reload()
    yield directory
    prices.reload()


class Pages:
    """A fetch that answers URLs with recorded pages, and remembers what was asked."""

    def __init__(self, pages: dict[str, str]):
        self.pages = pages
        self.asked: list[str] = []

    def __call__(self, url: str) -> dict:
        self.asked.append(url)
        for fragment, name in self.pages.items():
            if fragment in url:
                return recorded(name)
        raise AssertionError(f"unexpected URL {url}")


# -- AWS ---------------------------------------------------------------------------------------
class FakePricing:
    def __init__(self):
        self.calls: list[dict] = []

    def get_products(self, **kwargs):
        self.calls.append(kwargs)
        page = "page2" if kwargs.get("NextToken") == "eyJuZXh0IjoiMiJ9" else "page1"
        return recorded(f"aws_get_products_{page}.json")


class FakeEc2:
    def __init__(self, fail: bool = False):
        self.fail = fail
        self.calls: list[dict] = []

    def describe_spot_price_history(self, **kwargs):
        self.calls.append(kwargs)
        if self.fail:
            raise RuntimeError("An error occurred (UnauthorizedOperation): not allowed")
        page = "page2" if kwargs.get("NextToken") == "AAEAAT2sDeYH1Q7d" else "page1"
        return recorded(f"aws_spot_history_{page}.json")


def test_aws_products_parser_follows_next_token_and_keeps_linux_on_demand():
    pricing = FakePricing()
    entries = list(parsers.aws_product_pages(pricing.get_products, "us-east-1"))
    assert len(entries) == 6 and all(isinstance(e, str) for e in entries)
    assert [c.get("NextToken") for c in pricing.calls] == [None, "eyJuZXh0IjoiMiJ9"]
    filters = {f["Field"]: f["Value"] for f in pricing.calls[0]["Filters"]}
    assert filters["regionCode"] == "us-east-1" and filters["operatingSystem"] == "Linux"
    assert parsers.parse_aws_products(entries) == {
        "us-east-1": {"m5.large": 0.096, "c6i.xlarge": 0.17, "r7i.2xlarge": 0.5292}
    }


def test_aws_spot_parser_takes_the_median_of_each_zones_latest_price():
    ec2 = FakeEc2()
    records = list(parsers.aws_spot_pages(ec2.describe_spot_price_history, "2025-06-01"))
    assert [c.get("NextToken") for c in ec2.calls] == [None, "AAEAAT2sDeYH1Q7d"]
    assert ec2.calls[0]["ProductDescriptions"] == ["Linux/UNIX"]
    # m5.large: zones a (0.0391, newer than 0.051), b 0.0356, c 0.0448; Windows left out
    assert parsers.parse_aws_spot(records) == {"c6i.xlarge": 0.0691, "m5.large": 0.0391}


def test_refresh_aws_writes_a_table_the_lookup_prefers(user_tables):
    ec2 = FakeEc2()
    clients = {"pricing": FakePricing(), "ec2": ec2}
    path, count = refresh.refresh_aws(
        lambda service, region: clients[service], ["us-east-1"], today="2099-02-03"
    )
    assert (path, count) == (user_tables / "aws.json", 3)
    data = json.loads(path.read_text())
    assert data["machines"]["us-east-1"]["m5.large"] == {"on_demand": 0.096, "spot": 0.0391}
    price = prices.machine_price("aws", "us-east-1", "m5.large", spot=True)
    assert (price.usd_per_hour, price.as_of) == (0.0391, "2099-02-03")
    assert "Price List" in price.source
    # types the API did not list keep their shipped price and date
    assert prices.machine_price("aws", "us-east-1", "t3.small").as_of != "2099-02-03"


def test_refresh_aws_without_spot_permission_keeps_the_shipped_spot_prices():
    clients = {"pricing": FakePricing(), "ec2": FakeEc2(fail=True)}
    refresh.refresh_aws(lambda service, region: clients[service], ["us-east-1"], today="2099-02-03")
    spot = prices.machine_price("aws", "us-east-1", "m5.large", spot=True)
    assert spot.as_of == prices.tables.shipped_data("aws")["as_of"]
    assert "from the shipped table" in prices.table("aws").layers[0].data["spot"]


def test_refresh_aws_failures_are_one_line():
    class NoCredentialsError(Exception):
        pass

    class Failing:
        def __init__(self, error):
            self.error = error

        def get_products(self, **kwargs):
            raise self.error

    with pytest.raises(UserError) as caught:
        failing = Failing(NoCredentialsError("Unable to locate credentials"))
        refresh.refresh_aws(lambda service, region: failing, ["us-east-1"])
    assert caught.value.message == "AWS: Unable to locate credentials"
    assert "pricing:GetProducts" in caught.value.hint
    with pytest.raises(WorkFailed) as caught:
        failing = Failing(RuntimeError("Could not connect to the endpoint URL"))
        refresh.refresh_aws(lambda service, region: failing, ["us-east-1"])
    assert caught.value.message == "AWS: RuntimeError: Could not connect to the endpoint URL"


# -- Azure -------------------------------------------------------------------------------------
def test_azure_parser_follows_next_page_link():
    fetch = Pages({"$skip=100": "azure_retail_page2.json", "prices": "azure_retail_page1.json"})
    first = parsers.azure_url("westeurope")
    items = list(parsers.azure_pages(fetch, first))
    assert fetch.asked == [first, recorded("azure_retail_page1.json")["NextPageLink"]]
    assert "armRegionName%20eq%20%27westeurope%27" in first
    assert "priceType%20eq%20%27Consumption%27" in first
    assert len(items) == 10
    assert parsers.parse_azure_items(items) == {
        "westeurope": {
            "Standard_D4s_v3": {"on_demand": 0.23, "spot": 0.0461},
            "Standard_E16s_v3": {"on_demand": 1.184, "spot": 0.2368},  # low priority as spot
            "Standard_NC4as_T4_v3": {"on_demand": 0.59, "spot": 0.177},
        }
    }


def test_refresh_azure_writes_a_table_the_lookup_prefers(user_tables):
    fetch = Pages({"$skip=100": "azure_retail_page2.json", "prices": "azure_retail_page1.json"})
    path, count = refresh.refresh_azure(["westeurope"], fetch=fetch, today="2099-02-03")
    assert (path, count) == (user_tables / "azure.json", 3)
    price = prices.machine_price("azure", "westeurope", "Standard_D4s_v3")
    assert (price.usd_per_hour, price.as_of) == (0.23, "2099-02-03")
    assert price.source == parsers.AZURE_URL
    # regions not refreshed keep the shipped prices
    assert prices.machine_price("azure", "eastus", "Standard_D4s_v3").usd_per_hour == 0.192


# -- Google ------------------------------------------------------------------------------------
def test_gcp_parser_follows_next_page_token():
    fetch = Pages({"pageToken=CgwI": "gcp_skus_page2.json", "skus?": "gcp_skus_page1.json"})
    skus = list(parsers.gcp_pages(fetch, lambda token: parsers.gcp_url("KEY", token)))
    assert len(fetch.asked) == 2 and "key=KEY" in fetch.asked[0]
    assert "pageToken=CgwIiKbDswYQgOHl1wE" in fetch.asked[1]
    parsed = parsers.parse_gcp_skus(skus, ["us-central1", "europe-west4"])
    assert parsed["families"]["us-central1"] == {
        "n2": {
            "on_demand": {"vcpu": 0.031611, "gb": 0.004237},
            "spot": {"vcpu": 0.00765, "gb": 0.001025},
        },
        "n1": {"on_demand": {"vcpu": 0.031611, "gb": 0.004237}},
        "c2": {"on_demand": {"vcpu": 0.03398, "gb": 0.00455}},
        "n2d": {"on_demand": {"vcpu": 0.027502, "gb": 0.003686}},  # the tier after a free one
    }
    assert parsed["families"]["europe-west4"] == {
        "e2": {"on_demand": {"vcpu": 0.024011, "gb": 0.003218}}
    }
    assert parsed["gpus"]["us-central1"] == {
        "nvidia-tesla-t4": {"on_demand": 0.35, "spot": 0.14},
        "nvidia-a100-80gb": {"on_demand": 3.927},
        "nvidia-l4": {"on_demand": 0.56004},
    }


def test_refresh_gcp_needs_an_api_key_and_writes_rates(user_tables):
    with pytest.raises(UserError, match="needs an API key"):
        refresh.refresh_gcp(None)
    fetch = Pages({"pageToken=CgwI": "gcp_skus_page2.json", "skus?": "gcp_skus_page1.json"})
    path, count = refresh.refresh_gcp("KEY", ["us-central1"], fetch=fetch, today="2099-02-03")
    assert (path, count) == (user_tables / "gcp.json", 4)
    assert "KEY" not in path.read_text()
    spot = prices.machine_price("gcp", "us-central1", "n2-standard-8", spot=True)
    assert spot.usd_per_hour == pytest.approx(8 * 0.00765 + 32 * 0.001025)
    assert spot.as_of == "2099-02-03"
    # shapes and GPUs the catalog page did not give come from the shipped table
    a2 = prices.machine_price("gcp", "us-central1", "a2-highgpu-1g")
    assert a2.as_of == prices.tables.shipped_data("gcp")["as_of"]


def test_refresh_gcp_with_a_refused_key_is_a_user_mistake():
    def refused(url):
        raise refresh.ApiRefused(
            "cloudbilling.googleapis.com answered HTTP 400: API key not valid.", "", 400
        )

    with pytest.raises(UserError, match="refused the API key"):
        refresh.refresh_gcp("BAD", ["us-central1"], fetch=refused)


# -- offline -----------------------------------------------------------------------------------
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_offline_fetch_fails_with_one_line():
    url = f"http://127.0.0.1:{closed_port()}/api/retail/prices"
    with pytest.raises(WorkFailed) as caught:
        refresh.fetch_json(url, timeout=5)
    assert caught.value.message.startswith("cannot reach 127.0.0.1:")
    assert "\n" not in str(caught.value)
    assert caught.value.hint == "the shipped price tables stay in use"
