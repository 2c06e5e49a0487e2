"""`cfw prices`: what it prints (always "estimate"), --json (only JSON on stdout), its
mistakes (one line), and --refresh offline (one line, exit 1) and against a local server
that answers in the Azure Retail Prices API's format."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cfw.core.prices.tables import shipped_data
from conftest import REPO, run_cfw

DATA = REPO / "tests" / "data" / "prices"


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    return {"CFW_PRICES_DIR": str(tmp_path / "user-prices"), "CFW_GOOGLE_API_KEY": ""}


def one_line_error(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and lines[0].startswith("error: ")
    return lines[0]


def test_prices_lists_every_table_with_its_date_source_and_estimate(tmp_path, env):
    result = run_cfw(["prices"], cwd=tmp_path, env=env)
    assert result.code == 0, result.stderr
    for cloud in ("aws", "gcp", "azure"):
        data = shipped_data(cloud)
        assert f"{cloud}: " in result.stdout
        assert f"as of {data['as_of']}" in result.stdout
        assert data["source"] in result.stdout
    assert "m5.large" in result.stdout and "Standard_D4s_v3" in result.stdout
    # every block of prices is headed as estimates
    headers = [line for line in result.stdout.splitlines() if "USD per" in line]
    assert headers and all("estimate" in line for line in headers)
    assert result.stdout.count("estimates: public list prices") == 3


def test_prices_of_one_cloud_region_and_prefix(tmp_path, env):
    result = run_cfw(["prices", "aws", "--region", "eu-west-1", "-m", "m5."], cwd=tmp_path, env=env)
    assert result.code == 0, result.stderr
    rows = {
        line.split()[0]: line.split()[1:]
        for line in result.stdout.splitlines()
        if line.startswith("    ") and "." in line.split()[0]
    }
    assert rows["m5.large"] == ["0.1070", "0.0430"]
    assert "m5.24xlarge" in rows and "c5.large" not in rows
    assert "eu-west-1, USD per hour (estimates):" in result.stdout
    gcp = run_cfw(["prices", "google", "-r", "europe-west4", "-m", "n2-highmem-4"], tmp_path, env)
    assert gcp.code == 0, gcp.stderr
    assert "n2-highmem-4" in gcp.stdout and "europe-west4" in gcp.stdout
    exact = run_cfw(
        ["prices", "gcp", "-r", "us-east1", "-m", "n2-standard-8", "--json"], tmp_path, env
    )
    priced = json.loads(exact.stdout)["clouds"]["gcp"]["machines"]["us-east1"]["n2-standard-8"]
    assert priced["on_demand"] == pytest.approx(8 * 0.031611 + 32 * 0.004237)


def test_prices_json_is_only_json_with_every_row(tmp_path, env):
    result = run_cfw(["prices", "--json"], cwd=tmp_path, env=env)
    assert result.code == 0 and result.stderr == ""
    payload = json.loads(result.stdout)
    assert payload["estimate"] is True and "not a bill" in payload["terms"]
    aws = payload["clouds"]["aws"]
    assert aws["machines"] == shipped_data("aws")["machines"]
    assert aws["tables"] == [
        {"origin": "shipped", "as_of": aws["as_of"], "source": shipped_data("aws")["source"]}
    ]
    assert set(payload["clouds"]) == {"aws", "gcp", "azure"}
    one = json.loads(
        run_cfw(["prices", "gcp", "--region", "us-east1", "--json"], tmp_path, env).stdout
    )
    assert set(one["clouds"]["gcp"]["families"]) == {"us-east1"}
    assert set(one["clouds"]["gcp"]["fixed"]) == {"*", "us-east1"}


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["prices", "oracle"], "'oracle' is not a cloud cfw has prices for"),
        (["prices", "aws", "--region", "mars-1"], "no price table has region 'mars-1'"),
        (["prices", "gcp", "--refresh"], "the Cloud Billing Catalog API needs an API key"),
    ],
)
def test_prices_mistakes_exit_2_with_one_line(args, fragment, tmp_path, env):
    result = run_cfw(args, cwd=tmp_path, env=env)
    assert result.code == 2, result.stderr
    assert fragment in one_line_error(result)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("args", [["prices", "azure", "--refresh"], ["prices", "--refresh"]])
def test_refresh_offline_fails_with_one_line(args, tmp_path, env):
    env["CFW_PRICES_AZURE_URL"] = f"http://127.0.0.1:{closed_port()}/api/retail/prices"
    result = run_cfw(args, cwd=tmp_path, env=env)
    assert result.code == 1
    line = one_line_error(result)
    assert "cannot reach 127.0.0.1:" in line and "the shipped price tables stay in use" in line
    assert not (Path(env["CFW_PRICES_DIR"]) / "azure.json").exists()


@pytest.fixture
def azure_prices_server():
    """Serves the recorded Retail Prices pages, the first one linking to the second."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            base = f"http://127.0.0.1:{self.server.server_port}/api/retail/prices"
            if "$skip=100" in self.path:
                page = json.loads((DATA / "azure_retail_page2.json").read_text())
            else:
                page = json.loads((DATA / "azure_retail_page1.json").read_text())
                page["NextPageLink"] = page["NextPageLink"].replace(
                    "https://prices.azure.com:443/api/retail/prices", base
                )
            body = json.dumps(page).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/api/retail/prices"
    server.shutdown()
    server.server_close()


def test_refresh_writes_a_table_that_cfw_prices_then_shows(tmp_path, env, azure_prices_server):
    env["CFW_PRICES_AZURE_URL"] = azure_prices_server
    result = run_cfw(["prices", "azure", "--refresh", "--region", "westeurope"], tmp_path, env)
    assert result.code == 0, result.stderr
    assert result.stdout == ""
    assert "azure: 3 list prices as of" in result.stderr and "(estimates)" in result.stderr
    path = Path(env["CFW_PRICES_DIR"]) / "azure.json"
    assert path.is_file()
    shown = json.loads(
        run_cfw(["prices", "azure", "-r", "westeurope", "--json"], tmp_path, env).stdout
    )
    azure = shown["clouds"]["azure"]
    assert azure["tables"][0]["origin"] == str(path)
    assert azure["machines"]["westeurope"]["Standard_D4s_v3"] == {"on_demand": 0.23, "spot": 0.0461}
    text = run_cfw(["prices", "azure", "-r", "westeurope"], tmp_path, env).stdout
    assert f"refreshed: {path}" in text and "shipped with cfw" in text
