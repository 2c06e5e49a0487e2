"""Price tables and lookups: known machines against the tables, missing prices, the shipped
tables' shape, fixed costs per kind, and refreshed tables layered over the shipped ones."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
import yaml

from cfw.core import prices
from cfw.core.errors import CfwError
from cfw.core.prices.tables import shipped_data
from conftest import REPO


@pytest.fixture(autouse=True)
def no_user_tables(tmp_path, monkeypatch):
    """Only the shipped tables, whatever the machine's ~/.cache holds."""
    monkeypatch.setenv("CFW_PRICES_DIR", str(tmp_path / "user-prices"))
    prices.reload()
    yield tmp_path / "user-prices"
    prices.reload()


AS_OF = {c: shipped_data(c)["as_of"] for c in prices.CLOUDS}


# -- known machines ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cloud", "region", "machine", "spot", "usd"),
    [
        ("aws", "us-east-1", "m5.large", False, 0.096),
        ("aws", "us-east-1", "m5.large", True, 0.038),
        ("aws", "us-east-2", "c6i.2xlarge", False, 0.34),
        ("aws", "us-west-2", "t3.small", False, 0.0208),
        ("aws", "eu-west-1", "m5.large", False, 0.107),
        ("aws", "eu-central-1", "r6i.xlarge", False, 0.304),
        ("aws", "eu-central-1", "g4dn.xlarge", False, 0.658),
        ("aws", "eu-central-1", "g4dn.xlarge", True, 0.23),
        ("aws", "us-east-1", "p3.2xlarge", False, 3.06),
        ("aws", "us-east-1", "x1e.xlarge", False, 0.834),  # from Tibanna's instance table
        ("gcp", "us-central1", "n2-standard-8", False, 8 * 0.031611 + 32 * 0.004237),
        ("gcp", "us-central1", "n2-standard-8", True, 8 * 0.0077 + 32 * 0.001),
        ("gcp", "us-east1", "e2-standard-4", False, 4 * 0.021811 + 16 * 0.002923),
        ("gcp", "us-west1", "n1-highmem-8", False, 8 * 0.031611 + 52 * 0.004237),
        ("gcp", "europe-west4", "e2-standard-4", False, 4 * 0.024 + 16 * 0.00322),
        ("gcp", "europe-west4", "e2-standard-4", True, 4 * 0.0072 + 16 * 0.00097),
        ("gcp", "us-central1", "e2-micro", False, 0.008376),  # shared core: 0.25 vCPU
        ("gcp", "us-central1", "a2-highgpu-1g", False, 3.673385),  # A100 built in
        ("gcp", "us-central1", "n2-custom-4-16384", False, (4 * 0.031611 + 16 * 0.004237) * 1.05),
        ("gcp", "us-central1", "a3-highgpu-8g", False, 88.25),
        ("azure", "eastus", "Standard_D4s_v3", False, 0.192),
        ("azure", "eastus", "Standard_D4s_v3", True, 0.038),
        ("azure", "westus2", "Standard_NC6s_v3", False, 3.06),
        ("azure", "westeurope", "Standard_E16s_v3", False, 1.2),
        ("azure", "northeurope", "Standard_F8s_v2", False, 0.364),
        ("azure", "eastus", "standard_d4s_v3", False, 0.192),  # sizes are case-insensitive
    ],
)
def test_machine_price_against_the_table(cloud, region, machine, spot, usd):
    price = prices.machine_price(cloud, region, machine, spot=spot)
    assert price.usd_per_hour == pytest.approx(usd, rel=1e-6)
    assert price.capacity == ("spot" if spot else "on-demand")
    assert (price.region, price.as_of, price.cloud) == (region, AS_OF[cloud], cloud)
    assert price.source == shipped_data(cloud)["source"]


def test_attached_gpus_are_priced_apart_on_google_only():
    t4 = prices.gpu_price("gcp", "us-central1", "nvidia-tesla-t4", 2)
    assert (t4.usd_per_hour, t4.machine) == (pytest.approx(0.70), "2 x nvidia-tesla-t4")
    assert prices.gpu_price("gcp", "us-central1", "t4", spot=True).usd_per_hour == 0.11
    node = prices.node_price("gcp", "us-central1", "n1-standard-4", gpu_model="t4", gpus=1)
    vm = prices.machine_price("gcp", "us-central1", "n1-standard-4").usd_per_hour
    assert node.usd_per_hour == pytest.approx(vm + 0.35)
    assert node.machine == "n1-standard-4 + 1 x nvidia-tesla-t4"
    # built-in GPUs are not counted twice; AWS and Azure price GPUs with the machine
    g2 = prices.node_price("gcp", "us-central1", "g2-standard-8", gpu_model="nvidia-l4", gpus=1)
    assert g2 == prices.machine_price("gcp", "us-central1", "g2-standard-8")
    aws = prices.node_price("aws", "us-east-1", "g4dn.xlarge", gpu_model="t4", gpus=1)
    assert aws.usd_per_hour == 0.526
    with pytest.raises(ValueError, match="prices GPUs with the machine type"):
        prices.gpu_price("aws", "us-east-1", "t4", 1)


def test_price_as_explain_field():
    price = prices.machine_price("aws", "us-east-1", "m5.xlarge")
    assert price.as_dict(share=0.25) == {
        "usd_per_hour": 0.048,
        "node_usd_per_hour": 0.192,
        "machine": "m5.xlarge",
        "capacity": "on-demand",
        "as_of": AS_OF["aws"],
    }


# -- missing prices ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cloud", "region", "machine", "spot", "message"),
    [
        ("aws", "us-east-1", "zz9.large", False, "no price for zz9.large in us-east-1"),
        ("aws", "us-east-1", "x1e.xlarge", True, "no price for x1e.xlarge (spot) in us-east-1"),
        ("aws", "ap-south-1", "m5.large", False, "no price for m5.large in ap-south-1"),
        ("aws", "us-east-3", "m5.large", False, "no price for m5.large in us-east-3"),
        ("gcp", "asia-east1", "n2-standard-8", False, "no price for n2-standard-8 in asia-east1"),
        (
            "gcp",
            "us-central1",
            "m3-ultramem-32",
            False,
            "no price for m3-ultramem-32 in us-central1",
        ),
        ("gcp", "europe-west4", "c3-standard-8", True, "no price for c3-standard-8 (spot) in"),
        (
            "gcp",
            "europe-west1",
            "g2-standard-8",
            False,
            "no price for g2-standard-8 in europe-west1",
        ),
        ("azure", "eastus", "Standard_M128s", False, "no price for Standard_M128s in eastus"),
        ("azure", "uksouth", "Standard_D4s_v3", False, "no price for Standard_D4s_v3 in uksouth"),
    ],
)
def test_a_missing_price_says_what_where_and_as_of_when(cloud, region, machine, spot, message):
    with pytest.raises(prices.NoPrice) as caught:
        prices.machine_price(cloud, region, machine, spot=spot)
    text = str(caught.value)
    assert text.startswith(message), text
    assert f"(prices as of {AS_OF[cloud]})" in text
    assert not isinstance(caught.value, CfwError)  # shown, never a reason to stop a run


def test_an_unknown_region_is_never_priced_as_its_neighbour():
    with pytest.raises(prices.NoPrice) as caught:
        prices.machine_price("aws", "us-west-1", "m5.large")
    assert str(caught.value) == (
        f"no price for m5.large in us-west-1 (prices as of {AS_OF['aws']}): the aws table "
        "covers us-east-1, us-east-2, us-west-2, eu-west-1, eu-central-1"
    )
    with pytest.raises(prices.NoPrice, match=r"^no price for 1 x nvidia-tesla-t4 in asia"):
        prices.gpu_price("gcp", "asia-east1", "nvidia-tesla-t4")


# -- the shipped tables ------------------------------------------------------------------------
@pytest.mark.parametrize("cloud", prices.CLOUDS)
def test_shipped_table_names_its_source_date_and_terms(cloud):
    data = shipped_data(cloud)
    assert data["cloud"] == cloud and data["currency"] == "USD"
    assert date.fromisoformat(data["as_of"]) <= date.today()
    assert data["source"].startswith("https://")
    for words in ("Linux", "no discounts", "no taxes", "Estimates"):
        assert words in data["terms"], words
    assert "TYPICAL" in data["spot"]
    assert data["regions"] and data["notes"]
    for machine in data["featured"]:
        prices.machine_price(cloud, data["regions"][0], machine)


def _entries(data):
    """(section, region, name, entry) of every price entry of a table."""
    for section in ("machines", "gpus"):
        for region, names in data.get(section, {}).items():
            for name, entry in names.items():
                yield section, region, name, entry


@pytest.mark.parametrize("cloud", prices.CLOUDS)
def test_every_shipped_price_is_positive_and_spot_is_cheaper(cloud):
    data = shipped_data(cloud)
    entries = list(_entries(data))
    for region, families in data.get("families", {}).items():
        for family, rates in families.items():
            for unit in ("vcpu", "gb"):
                on_demand = rates["on_demand"][unit]
                entries.append(("families", region, f"{family} {unit}", {"on_demand": on_demand}))
                if "spot" in rates:
                    spot = rates["spot"][unit]
                    entries.append(
                        (
                            "families",
                            region,
                            f"{family} {unit}",
                            {"on_demand": on_demand, "spot": spot},
                        )
                    )
    assert entries
    for section, region, name, entry in entries:
        assert region in data["regions"], (section, region)
        assert set(entry) <= {"on_demand", "spot"}, (region, name)
        assert entry["on_demand"] > 0, (region, name)
        if "spot" in entry:
            assert 0 < entry["spot"] < entry["on_demand"], (region, name)
    for region, items in data["fixed"].items():
        assert region == "*" or region in data["regions"]
        for name, item in items.items():
            assert item["usd"] > 0 and item["per"] in ("hour", "day", "month", "GB-month"), name
            assert item["what"], name


AWS_FAMILIES = [
    *("m5", "m6i", "m6a", "m7i", "c5", "c6i", "c6a", "c7i", "r5", "r6i", "r6a", "r7i"),
    *("t3", "g4dn", "g5", "p3", "m4", "c4", "r4"),
]


def test_aws_types_cfw_picks_from_are_in_every_region():
    machines = shipped_data("aws")["machines"]
    listed = {t for t in machines["us-east-1"] if t.split(".")[0] in AWS_FAMILIES}
    for family in AWS_FAMILIES:
        assert any(t.startswith(family + ".") for t in listed), family
    for size in ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "16xlarge"):
        assert f"m6i.{size}" in listed and f"r7i.{size}" in listed
    for region, types in machines.items():
        assert listed <= set(types), (region, sorted(listed - set(types)))
        for t in listed:
            assert "spot" in types[t], (region, t)


def test_every_type_tibanna_picks_from_has_a_us_east_1_price():
    from cfw.backends.tibanna import translate

    for itype, _cpus, _mem, ranking_usd in translate._instances():
        price = prices.machine_price("aws", "us-east-1", itype)
        assert price.usd_per_hour == pytest.approx(ranking_usd, rel=0.01), itype


def test_google_prices_agree_with_the_machine_catalogue():
    """Every type cfw's Google kinds choose from is priced from its shape, in line with the
    catalogue's own ranking prices (us-central1, on demand)."""
    from cfw.backends._google import machines

    unpriced = []
    for name, known in machines.CATALOGUE.items():
        try:
            price = prices.machine_price("gcp", "us-central1", name)
        except prices.NoPrice:
            unpriced.append(name)
            continue
        assert price.usd_per_hour == pytest.approx(known.price, rel=0.01), name
        if not known.shared_core and name not in shipped_data("gcp")["machines"]["us-central1"]:
            shape = prices.google_shape(name)
            assert (shape.vcpus, shape.gpus) == (known.vcpus, known.gpus), name
            assert shape.memory_gb * 1024 == pytest.approx(known.memory_mib, abs=1), name
    # A3 comes as whole machines; only the 8-GPU type has an on-demand list price
    assert sorted(unpriced) == [
        "a3-highgpu-1g",
        "a3-highgpu-2g",
        "a3-highgpu-4g",
        "a3-megagpu-8g",
    ]
    gpus = shipped_data("gcp")["gpus"]["us-central1"]
    for model in machines.GPU_MODELS:
        if model.startswith("nvidia-h100"):
            continue  # built into A3 types, priced with them
        assert model in gpus, model


def test_the_example_environments_machines_have_prices():
    """Every machine an example config (and a kind's default) names, in its region."""
    from cfw.backends.azure_batch.config import AzureBatchConfig
    from cfw.backends.gke.config import GkeConfig
    from cfw.backends.tes.config import TesConfig

    def config(name):
        return yaml.safe_load((REPO / "environments" / f"{name}.yaml").read_text())

    wanted = []
    gke = config("gke")
    for machine in [*gke["machine_types"], GkeConfig.model_fields["system_machine_type"].default]:
        wanted += [("gcp", gke["region"], machine), ("gcp", "us-central1", machine)]
    wanted += [
        ("gcp", r, m) for r in ("us-central1", "europe-west4") for m in GkeConfig().machine_types
    ]
    batch = config("azure-batch")
    wanted += [("azure", batch["region"], pool["vm_size"]) for pool in batch["pools"]]
    default_pools = AzureBatchConfig.model_fields["pools"].default_factory()
    wanted += [("azure", r, p.vm_size) for r in ("eastus", "westeurope") for p in default_pools]
    tes = config("tes")
    wanted += [("aws", tes["region"], tes["instance_type"])]
    wanted += [("aws", "eu-west-1", TesConfig.model_fields["instance_type"].default)]
    for cloud, region, machine in wanted:
        for spot in (False, True):
            assert prices.machine_price(cloud, region, machine, spot=spot).usd_per_hour > 0
    # the GPU model the google-batch example gives to rules with only a gpu count
    region = config("google-batch")["region"]
    model = config("google-batch")["gpu_model"]
    assert prices.node_price("gcp", region, "n1-standard-4", gpu_model=model, gpus=1, spot=True)


# -- fixed costs -------------------------------------------------------------------------------
def test_every_kind_lists_its_fixed_costs_and_their_settings_exist():
    from cfw.backends.registry import get_kind, kind_names

    listed = prices.tables.kinds()
    assert set(kind_names()) == set(listed)
    for name, spec in listed.items():
        fields = get_kind(name).config_model.model_fields
        keys = set(spec["settings"])
        for item in spec["items"]:
            assert sum(k in item for k in ("free", "rate", "machine")) == 1, item
            when = item.get("when", [])
            for cond in [when] if isinstance(when, str) else when:
                keys.add(cond.lstrip("!").partition("=")[0])
            keys.update(item[k] for k in ("machine", "count") if isinstance(item.get(k), str))
            if "rate" in item:
                data = shipped_data(spec["cloud"])
                for region in data["regions"]:
                    assert (
                        prices.tables.table(spec["cloud"]).find("fixed", region, item["rate"])
                        or data["fixed"]["*"][item["rate"]]
                    ), (name, region, item["rate"])
        for key in keys:
            assert key.split(".")[0] in fields, (name, key)


def test_gke_idle_costs():
    costs = prices.fixed_costs("gke", "europe-west4")
    by_what = {c.what: c for c in costs}
    assert by_what["GKE cluster management fee"].usd_per_hour == 0.10
    assert "free tier" in by_what["GKE cluster management fee"].note
    node = prices.machine_price("gcp", "europe-west4", "e2-standard-2").usd_per_hour
    assert by_what["system node pool: 1 node of e2-standard-2"].usd_per_hour == node
    assert by_what["Cloud NAT gateway, for the system node"].usd_per_hour == 0.0014
    assert by_what["system node boot disk: 50 GB pd-balanced"].usd_per_hour == pytest.approx(
        50 * 0.11 / 730, abs=1e-6
    )
    bucket = by_what["GCS bucket"]
    assert (bucket.usd_per_hour, bucket.usd_per_gb_month) == (0.0, 0.02)
    assert by_what["job node pools (on demand, spot, GPU)"].usd_per_hour == 0.0
    total = prices.idle_usd_per_hour(costs)
    assert total == pytest.approx(0.10 + node + 0.0014 + 0.005 + 50 * 0.11 / 730, abs=1e-5)
    assert all(c.problem is None for c in costs)
    bigger = prices.fixed_costs("gke", "europe-west4", {"system_machine_type": "e2-standard-4"})
    assert prices.idle_usd_per_hour(bigger) > total


def test_a_fixed_cost_without_a_price_says_so_and_the_rest_stay():
    costs = prices.fixed_costs("gke", "us-central1", {"system_machine_type": "x9-weird-2"})
    [missing] = [c for c in costs if c.usd_per_hour is None]
    assert missing.problem.startswith("no price for x9-weird-2 in us-central1 (prices as of ")
    assert prices.idle_usd_per_hour(costs) == pytest.approx(0.10 + 0.0014 + 0.005 + 5 / 730, 1e-3)
    elsewhere = prices.fixed_costs("tes", "ap-south-1")
    assert any(c.problem and "in ap-south-1" in c.problem for c in elsewhere)


def test_tes_idle_costs_follow_its_settings():
    default = prices.fixed_costs("tes", "us-east-1")
    by_what = {c.what: c for c in default}
    assert by_what["Funnel server: EC2 t3.small"].usd_per_hour == 0.0208
    assert by_what["Funnel server public IPv4 address"].usd_per_hour == 0.005
    assert by_what["Secrets Manager secret per user"].usd_per_hour == pytest.approx(0.4 / 730, 1e-3)
    two = prices.fixed_costs(
        "tes", "us-east-1", {"users": ["a", "b"], "instance_type": "t3.medium"}
    )
    secrets = next(c for c in two if c.what.startswith("Secrets"))
    assert secrets.usd_per_hour == pytest.approx(0.8 / 730, 1e-3)
    assert any(c.what == "Funnel server: EC2 t3.medium" for c in two)
    ssm = prices.fixed_costs("tes", "us-east-1", {"credentials_store": "ssm"})
    assert not any(c.what.startswith("Secrets") for c in ssm)
    existing = prices.fixed_costs("tes", None, {"url": "https://tes.example.org"})
    assert [c.what for c in existing] == ["an existing TES server"]
    assert prices.idle_usd_per_hour(existing) == 0.0


def test_other_kinds_idle_costs():
    assert prices.idle_usd_per_hour(prices.fixed_costs("local", None)) == 0.0
    assert prices.idle_usd_per_hour(prices.fixed_costs("tibanna", "us-east-1")) == 0.0
    assert prices.idle_usd_per_hour(prices.fixed_costs("google-batch", "us-central1")) == 0.0
    no_nat = prices.fixed_costs("google-batch", "us-central1", {"external_ip": True})
    assert not any("NAT" in c.what for c in no_nat)
    plain = prices.fixed_costs("azure-batch", "westeurope")
    assert prices.idle_usd_per_hour(plain) == 0.0
    acr = prices.fixed_costs("azure-batch", "westeurope", {"registry": {"create_acr": True}})
    assert prices.idle_usd_per_hour(acr) == pytest.approx(1.667 / 24, abs=1e-6)
    with pytest.raises(ValueError, match="no fixed costs are listed for kind 'slurm'"):
        prices.fixed_costs("slurm", None)


# -- refreshed tables --------------------------------------------------------------------------
def _write_refreshed(directory: Path, cloud: str, as_of: str, **sections) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    data = {
        "cloud": cloud,
        "as_of": as_of,
        "source": "https://example.test/price-api",
        "regions": ["us-east-1"],
        **sections,
    }
    path = directory / f"{cloud}.json"
    path.write_text(json.dumps(data))
    prices.reload()
    return path


def test_a_newer_refreshed_table_wins_entry_by_entry(no_user_tables):
    path = _write_refreshed(
        no_user_tables,
        "aws",
        "2099-01-01",
        machines={"us-east-1": {"m5.large": {"on_demand": 0.1}}},
    )
    price = prices.machine_price("aws", "us-east-1", "m5.large")
    assert (price.usd_per_hour, price.as_of, price.source) == (
        0.1,
        "2099-01-01",
        "https://example.test/price-api",
    )
    # what the refreshed table lacks still comes from the shipped one, with its date
    spot = prices.machine_price("aws", "us-east-1", "m5.large", spot=True)
    assert (spot.usd_per_hour, spot.as_of) == (0.038, AS_OF["aws"])
    assert prices.machine_price("aws", "eu-west-1", "m5.large").as_of == AS_OF["aws"]
    table = prices.table("aws")
    assert table.as_of == "2099-01-01" and table.layers[0].origin == str(path)


def test_an_older_or_broken_refreshed_table_is_ignored(no_user_tables):
    _write_refreshed(
        no_user_tables, "aws", "2000-01-01", machines={"us-east-1": {"m5.large": {"on_demand": 9}}}
    )
    assert prices.machine_price("aws", "us-east-1", "m5.large").usd_per_hour == 0.096
    assert "older than the shipped table" in prices.table("aws").ignored[0]
    (no_user_tables / "azure.json").write_text("{not json")
    prices.reload()
    assert prices.machine_price("azure", "eastus", "Standard_D4s_v3").usd_per_hour == 0.192
    assert "unreadable" in prices.table("azure").ignored[0]


def test_the_prices_package_is_a_cheap_leaf():
    """stdlib and cfw.core.errors only; importing it loads no table."""
    package = REPO / "runner" / "cfw" / "core" / "prices"
    for module in package.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                allowed = name.startswith(("cfw.core.prices", "cfw.core.errors"))
                assert allowed or top in sys.stdlib_module_names, (module.name, name)
    probe = (
        "import sys, cfw.core.prices as p; "
        "assert p.tables._table.cache_info().currsize == 0; "
        "assert not [m for m in sys.modules if m.startswith(('cfw.backends', 'cfw.cli'))]"
    )
    subprocess.run([sys.executable, "-c", probe], check=True)


def test_tables_load_lazily_once():
    prices.reload()
    assert prices.tables._table.cache_info().currsize == 0
    prices.machine_price("aws", "us-east-1", "m5.large")
    prices.machine_price("aws", "us-east-2", "m5.large")
    assert prices.tables._table.cache_info().misses == 1
