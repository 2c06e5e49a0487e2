"""The guard's Azure Function (modules/azure-guard): its package
(cfw.backends.azure_batch.guard_zip: v1 programming model, deterministic, only what one
check imports, pinned requirements), its entry called in-process as the Functions host
calls it, with the app settings the root module gives it and nothing but the app's
managed identity (the App Service identity endpoint, tests/support/managed_identity.py):
against the fake Batch service and Azurite (HTTPS, `--oauth basic`), an orphaned run's
tasks are terminated and its job deleted, past the ttl every task is, idle has nothing to
stop (the pools' autoscale does), and the record is where `cfw status` reads it. What
`cfw up` renders of it: with the guard and without, and no secret in it."""

from __future__ import annotations

import importlib.metadata
import io
import json
import logging
import os
import re
import subprocess
import sys
import types
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cfw.backends.azure_batch import guard_zip
from cfw.backends.azure_batch.backend import AzureBatchBackend
from cfw.backends.azure_batch.config import AzureBatchConfig
from cfw.backends.azure_batch.guard import NOTHING_TO_STOP
from cfw.backends.azure_batch.kind import KIND
from cfw.core import guard_entry, heartbeat
from cfw.orchestration.guarding import guard_record
from support.builders import context, job_spec
from support.managed_identity import IdentityEndpoint
from support.render import render_example

pytest_plugins = ["support.azure"]

REPO = Path(__file__).resolve().parents[2]
POOLS = [{"vm_size": "Standard_D4s_v3", "task_slots_per_node": 4}]
DEAD, LIVE = "0302aa00beef", "0302bb00cafe"
ENV_ID = "ab-0a1b2c"
TERMINATE = "/jobs/{job}/tasks/{task}/terminate"
BATCH_KEY = "ZmFrZS1iYXRjaC1hY2NvdW50LWtleS1mb3ItdGVzdHMtb25seQ=="


# -- the package ------------------------------------------------------------------------------
def names_of(data: bytes) -> list[zipfile.ZipInfo]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.infolist()


def test_the_package_is_deterministic_in_the_v1_model_with_pinned_requirements():
    first, second = guard_zip.build_zip(), guard_zip.build_zip()
    assert first == second
    infos = names_of(first)
    names = [i.filename for i in infos]
    assert names == sorted(names)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos} == {0o644}
    root = {n for n in names if not n.startswith("cfw/")}
    assert root == {
        "host.json",
        "requirements.txt",
        "cfw_guard/function.json",
        "cfw_guard/__init__.py",
    }
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        host = json.loads(archive.read("host.json"))
        binding = json.loads(archive.read("cfw_guard/function.json"))
        requirements = archive.read("requirements.txt").decode().split()
        entry = archive.read("cfw_guard/__init__.py").decode()
    assert host["version"] == "2.0" and host["extensionBundle"]["version"] == "[4.*, 5.0.0)"
    [trigger] = binding["bindings"]
    assert trigger["type"] == "timerTrigger" and trigger["direction"] == "in"
    assert trigger["schedule"] == "%CFW_GUARD_SCHEDULE%"  # an app setting the module sets
    assert binding["scriptFile"] == "__init__.py" and "def main(timer)" in entry
    assert "from cfw.core.guard_entry import run" in entry
    # pinned, and to what this checkout is tested with
    for line in requirements:
        name, _, version = line.partition("==")
        assert version, f"{line} is not pinned"
        if name != "azure-functions":  # the Functions worker's library, not installed here
            assert importlib.metadata.version(name) == version, name
    assert {r.partition("==")[0] for r in requirements} >= {
        "azure-batch",
        "azure-identity",
        "azure-storage-blob",
        "azure-functions",
    }
    files = {n for n in names if n.startswith("cfw/")}
    assert "cfw/backends/azure_batch/guard.py" in files and "cfw/core/guard_entry.py" in files
    assert not any(
        n.startswith("cfw/backends/")
        and n.split("/")[2] not in ("__init__.py", "base.py", "sdk.py", "azure_batch")
        for n in files
    )  # one kind's only
    assert "cfw/backends/azure_batch/config.py" not in files and len(files) < 20
    assert guard_zip.filename() == f"cfw_guard-{guard_zip.digest()[:16]}.zip"


def test_the_package_imports_on_its_own(tmp_path):
    """As the Functions host imports it: the zip's root and the SDKs its requirements
    install, no cfw installed and no pydantic (-S: no site, so neither this checkout nor
    the editable install is on the path)."""
    path = guard_zip.write(tmp_path)
    stale = tmp_path / "cfw_guard-0000000000000000.zip"
    stale.write_bytes(b"old")
    assert guard_zip.write(tmp_path) == path and not stale.exists()  # only the current one
    import azure.batch

    site = str(Path(azure.batch.__file__).resolve().parents[2])
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "import importlib, cfw, cfw_guard\n"
        "module = importlib.import_module('cfw.backends.azure_batch.guard')\n"
        "assert callable(module.from_environ) and callable(cfw_guard.main)\n"
        "assert 'pydantic' not in sys.modules, 'the guard imports cfw config'\n"
        "print(cfw.__file__)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-S", "-c", code, str(path), site],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": os.environ.get("PATH", "")},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith(str(path)), proc.stdout


# -- the function, in-process ------------------------------------------------------------------
def function_entry() -> types.ModuleType:
    """cfw_guard/__init__.py of the package, loaded as the Functions host loads it."""
    module = types.ModuleType("cfw_guard")
    exec(
        compile(guard_zip.entries()["cfw_guard/__init__.py"], "cfw_guard/__init__.py", "exec"),
        module.__dict__,
    )
    return module


class Timer:
    """What the host passes a timer function (azure.functions.TimerRequest's one field the
    entry reads)."""

    past_due = False


def app_settings(fake, azurite, **settings: str) -> dict[str, str]:
    """The Function's environment as the root module and modules/azure-guard set it (the
    names are read from them: test_the_settings_are_the_ones_the_module_sets)."""
    return {
        "CFW_GUARD_ADAPTER": "cfw.backends.azure_batch.guard:from_environ",
        "CFW_GUARD_ENV_ID": ENV_ID,
        "CFW_GUARD_BATCH_URL": fake.base_url,
        "CFW_GUARD_BLOB_ENDPOINT": azurite["endpoint"],
        "CFW_GUARD_CONTAINER": "data",
        "CFW_GUARD_SCHEDULE": "0 */5 * * * *",
        "CFW_GUARD_INTERVAL": "300",
        "CFW_GUARD_ORPHAN_AFTER": "900",
        "CFW_GUARD_IDLE_AFTER": "1800",
        "CFW_GUARD_EXPIRES_AT": "never",
        "CFW_GUARD_PACKAGE": guard_zip.digest(),
        "SCM_DO_BUILD_DURING_DEPLOYMENT": "true",
        "ENABLE_ORYX_BUILD": "true",
        **settings,
    }


@pytest.fixture
def identity(monkeypatch):
    """The app's system-assigned identity, as App Service provides it; no other credential
    in the environment."""
    for name in list(os.environ):
        if name.startswith(("AZURE_", "AZ_BATCH_", "MSI_", "ARM_")):
            monkeypatch.delenv(name)
    with IdentityEndpoint() as endpoint:
        for name, value in endpoint.environ().items():
            monkeypatch.setenv(name, value)
        yield endpoint


@pytest.fixture
def storage(azurite_oauth):
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(azurite_oauth["connection_string"])
    for name in ("data", "logs"):
        box = service.get_container_client(name)
        if box.exists():
            for blob in box.list_blobs():
                box.delete_blob(blob.name)
        else:
            box.create_container()
    return azurite_oauth


def runner_env(azurite) -> dict[str, str]:
    """What a runner on a laptop uses (keys): it submits the tasks, not the guard."""
    return {
        "AZ_BATCH_ACCOUNT_KEY": BATCH_KEY,
        "AZ_BATCH_ACCOUNT_NAME": "acct",
        "AZURE_STORAGE_KEY": azurite["key"],
    }


def env_ctx(fake, azurite, tmp_path: Path, run_id: str, env: str = ENV_ID):
    cfg = AzureBatchConfig(name="ab", region="westeurope", pools=POOLS)
    outputs = KIND.output_placeholders(cfg, None)
    outputs.update(
        batch_account_url=fake.base_url,
        storage_blob_endpoint=azurite["endpoint"],
        storage_container_urls={c: f"{azurite['endpoint']}/{c}" for c in ("data", "logs")},
        identity_id="/subscriptions/s/resourceGroups/g/providers/x/nodes",
        identity_client_id="11111111-2222-3333-4444-555555555555",
    )
    return context(
        "azure-batch", cfg, name="ab", env=env, outputs=outputs, state_dir=tmp_path, run_id=run_id
    )


def submit(fake, azurite, tmp_path, run_id: str, jobid: int, env: str = ENV_ID) -> str:
    backend = AzureBatchBackend(
        env_ctx(fake, azurite, tmp_path, run_id, env), environ=runner_env(azurite)
    )
    spec = job_spec("step", jobid, run_id=run_id, command="echo", image="img")
    return backend.submit(spec, KIND.translate(spec, backend.ctx), {})


def beat(azurite, tmp_path, fake, run_id: str) -> None:
    """A heartbeat of RUN_ID written now by the storage's clock (as its runner writes it)."""
    ctx = env_ctx(fake, azurite, tmp_path, run_id)
    store, prefix = KIND.heartbeat_store(ctx, runner_env(azurite))
    now = datetime.now(UTC)
    record = heartbeat.start(run_id, kind="azure-batch", env="ab", cfw_version="1", now=now)
    heartbeat.write(store, prefix, record)


def pool_calls(fake) -> list:
    """Requests about pools (data plane or Resource Manager): a resize or an autoscale
    switch would be one."""
    return [r for r in fake.requests if "/pools" in r[1] or r[1].startswith("/subscriptions/")]


def ended(fake, ext: str) -> bool:
    """The task completed, or its job is gone (deleted with it)."""
    job_id, _, task_id = ext.partition("/")
    job = fake.jobs.get(job_id)
    return job is None or job.state == "deleting" or job.tasks[task_id].state == "completed"


def call(monkeypatch, caplog, settings: dict[str, str], at: datetime) -> dict:
    """One call of the schedule at AT (the clock moved forward instead of waited for),
    with exactly the app settings in the environment; what the function logged."""
    for name, value in settings.items():
        monkeypatch.setenv(name, value)

    class Clock(datetime):
        @classmethod
        def now(cls, tz=None):
            return at

    monkeypatch.setattr(guard_entry, "datetime", Clock)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        function_entry().main(Timer())
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("cfw guard: ")]
    return json.loads(line.removeprefix("cfw guard: "))


def test_the_function_cancels_an_orphaned_run_with_its_identity_only(
    fake_batch, storage, identity, tmp_path, monkeypatch, caplog
):
    dead = [submit(fake_batch, storage, tmp_path, DEAD, i) for i in range(3)]
    other = submit(fake_batch, storage, tmp_path, "0302cc00d00d", 1, env="ab-ffffff")
    fake_batch.start(*dead[0].split("/"))
    beat(storage, tmp_path, fake_batch, DEAD)
    keyed = fake_batch.auth["SharedKey"]

    later = datetime.now(UTC) + timedelta(minutes=20)  # the runner died 20 minutes ago
    result = call(monkeypatch, caplog, app_settings(fake_batch, storage), later)

    assert result["errors"] == []
    assert result["done"] == [f"stale: cancelled 3 jobs of run {DEAD}: {', '.join(sorted(dead))}"]
    assert fake_batch.count("POST", TERMINATE) == 3
    job = fake_batch.jobs.get(dead[0].split("/")[0])
    assert job is None or job.state == "deleting"  # the run's job goes, as its end would
    assert fake_batch.task(*other.split("/")).state == "active"  # another environment's
    # the function's calls: bearer tokens of its identity, for Batch and for storage only
    assert fake_batch.auth["SharedKey"] == keyed and fake_batch.auth["Bearer"] > 0
    assert set(identity.issued) == {"https://batch.core.windows.net/", "https://storage.azure.com"}
    # the record, where `cfw status` reads it (the runner's view, with its own credentials)
    record = guard_record(
        KIND.guard_adapter(env_ctx(fake_batch, storage, tmp_path, "st"), runner_env(storage))
    )
    assert record.checked_at == later.replace(microsecond=0)
    assert [(e.action, e.run_id) for e in record.history] == [("cancel", DEAD)]


def test_past_the_ttl_the_function_cancels_every_task(
    fake_batch, storage, identity, tmp_path, monkeypatch, caplog
):
    live = [submit(fake_batch, storage, tmp_path, LIVE, i) for i in range(2)]
    beat(storage, tmp_path, fake_batch, LIVE)  # a live run: the ttl ends it all the same
    expired = app_settings(fake_batch, storage, CFW_GUARD_EXPIRES_AT="20260101t000000z")

    result = call(monkeypatch, caplog, expired, datetime.now(UTC))

    assert result["errors"] == [] and result["runs"][0]["live"]
    assert result["done"] == [
        f"ttl: cancelled 2 jobs of run {LIVE}: {', '.join(sorted(live))}",
        f"ttl: {NOTHING_TO_STOP}",
    ]
    assert fake_batch.count("POST", TERMINATE) == 2
    assert all(ended(fake_batch, ext) for ext in live)
    assert result["stopped_since"] is not None  # remembered: the next check stops nothing
    assert not pool_calls(fake_batch)


def test_idle_the_function_has_nothing_to_stop_the_autoscale_does(
    fake_batch, storage, identity, tmp_path, monkeypatch, caplog
):
    settings = app_settings(fake_batch, storage)  # idle_after 30 minutes
    start = datetime.now(UTC)
    seen = call(monkeypatch, caplog, settings, start)
    later = call(monkeypatch, caplog, settings, start + timedelta(minutes=5))
    idle = call(monkeypatch, caplog, settings, start + timedelta(minutes=35))

    assert seen["actions"] == later["actions"] == [] and seen["stopped_since"] is None
    assert [(a["action"], a["cause"]) for a in idle["actions"]] == [("stop", "idle")]
    assert idle["done"] == [f"idle: {NOTHING_TO_STOP}"] and idle["errors"] == []
    assert idle["stopped_since"] is not None
    assert not pool_calls(fake_batch)  # pools are left to their formula: no resize, no disable


# -- what `cfw up` renders ---------------------------------------------------------------------
GUARD_ENV = re.compile(r"guard_environment = \{\n(.*?)\n  \}", re.S)


def test_the_settings_are_the_ones_the_module_sets(tmp_path):
    out = render_example("azure-batch", tmp_path / "out")
    main = (out / "main.tf").read_text()
    from_root = set(re.findall(r"^\s+(CFW_\w+)\s+=", GUARD_ENV.search(main).group(1), re.M))
    module = (REPO / "modules" / "azure-guard" / "main.tf").read_text()
    block = module.split("app_settings = merge(var.environment, {", 1)[1].split("})", 1)[0]
    from_module = set(re.findall(r"^\s+([A-Z_]+)\s+=", block, re.M))
    assert from_root | from_module == set(
        app_settings(types.SimpleNamespace(base_url=""), {"endpoint": ""})
    )


def test_the_render_has_the_guard_only_when_enabled(tmp_path):
    out = render_example("azure-batch", tmp_path / "on")
    main = (out / "main.tf").read_text()
    values = json.loads((out / "terraform.tfvars.json").read_text())
    assert 'module "guard" {\n  source = "./modules/azure-guard"' in main
    zipped = out / values["guard_package"]["filename"]
    assert zipped.read_bytes() == guard_zip.build_zip()
    assert values["guard_package"]["sha256"] == guard_zip.digest()
    assert values["guard_settings"]["interval_minutes"] == 5
    assert (out / "modules" / "azure-guard" / "main.tf").is_file()

    from cfw.backends.registry import resolve
    from cfw.orchestration.lifecycle import Lifecycle
    from support.render import golden_identity

    resolved = resolve(REPO, "azure-batch", overrides=["guard.enabled=false"], environ={})
    lifecycle = Lifecycle(REPO, environ={})
    off = tmp_path / "off"
    tf = lifecycle.terraform(resolved, off)
    lifecycle.render(resolved, golden_identity("azure-batch", None), off, tf)
    text = (off / "main.tf").read_text()
    assert "azure-guard" not in text and "guard_" not in text
    assert not (off / "guard").exists()
    assert not any(
        k.startswith("guard_") for k in json.loads((off / "terraform.tfvars.json").read_text())
    )


KEYS = re.compile(
    r"access_key|connection_string|_sas\b|sas_url|account_key"
    r"|AccountKey|SharedAccessSignature|AZURE_STORAGE_KEY|AZ_BATCH_ACCOUNT_KEY",
    re.I,
)


def test_no_secret_in_the_rendered_guard_or_its_app_settings(tmp_path):
    """Keys in the deploying machine's environment stay out of every rendered file and the
    zip; the app settings (the root's guard_environment and the module's own) are names
    and URLs, and neither refers to a key, a connection string or a SAS."""
    from cfw.backends.registry import resolve
    from cfw.orchestration.lifecycle import Lifecycle
    from support.render import golden_identity

    secrets = {
        "AZURE_STORAGE_KEY": "c3RvcmFnZS1rZXktbmV2ZXItaW4tZmlsZXM=",
        "AZ_BATCH_ACCOUNT_KEY": BATCH_KEY,
        "AZURE_STORAGE_CONNECTION_STRING": "AccountName=a;AccountKey=c29tZS1rZXk=",
        "AZURE_CLIENT_SECRET": "client-secret-value",
        "BATCH_NODE_START_TASK_SAS_URL": "https://sa.blob.core.windows.net/s/x.sh?sv=1&sig=SIGNED",
    }
    resolved = resolve(REPO, "azure-batch", environ=secrets)
    lifecycle = Lifecycle(REPO, environ=secrets)
    out = tmp_path / "out"
    lifecycle.render(
        resolved, golden_identity("azure-batch", None), out, lifecycle.terraform(resolved, out)
    )
    texts = []
    for path in out.rglob("*"):
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                texts += [archive.read(n).decode() for n in archive.namelist()]
        elif path.is_file():
            texts.append(path.read_text())
    assert any("cfw_guard" in t for t in texts)
    for value in [*secrets.values(), "c29tZS1rZXk=", "SIGNED"]:
        assert not any(value in t for t in texts), value
    main = (out / "main.tf").read_text()
    assert not KEYS.search(GUARD_ENV.search(main).group(1))
    module = re.sub(r"#.*", "", (REPO / "modules" / "azure-guard" / "main.tf").read_text())
    function = module.split('resource "azurerm_linux_function_app" "this"', 1)[1].split(
        "\nresource "
    )[0]
    settings = module.split("app_settings = merge(var.environment, {", 1)[1].split("})", 1)[0]
    assert not KEYS.search(function) and not KEYS.search(settings)
    assert "storage_uses_managed_identity                  = true" in function
    assert "shared_access_key_enabled       = false" in module  # the host's account has none
