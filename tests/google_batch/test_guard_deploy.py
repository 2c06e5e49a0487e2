"""What `cfw up google-batch` and `cfw up gke` deploy of the guard (modules/gcp-guard,
cfw.backends._google.guard_deploy): with guard.enabled the rendered root calls the module
with the zip written beside it (same bytes as guard_zip builds, named by its hash), the
adapter's variables (no secret), least-privilege permissions and the service account ids;
with `enabled: false` there is no guard in the root, no value and no zip, and `cfw up` says
that nothing cloud-side enforces the ttl. The golden renders are tests/core/test_render.py's;
the zip and the function itself tests/google_batch/test_guard_function.py's."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cfw.backends._google import guard_deploy, guard_zip
from cfw.backends.registry import get_kind, resolve
from cfw.core.assets import example_environments_dir
from cfw.orchestration.guarding import unguarded_line
from cfw.orchestration.lifecycle import Lifecycle
from support.render import GOLDEN_OVERRIDES, golden_identity

KINDS = {"google-batch": "cfw.backends.google_batch.guard", "gke": "cfw.backends.gke.guard"}
SECRETISH = re.compile(r"(?i)(secret|token|password|private_key|credential)")


def render(kind: str, outdir: Path, *extra: str) -> Path:
    project = example_environments_dir().parent
    overrides = [*GOLDEN_OVERRIDES.get(kind, []), *extra]
    resolved = resolve(project, kind, overrides=overrides, environ={})
    lifecycle = Lifecycle(project, environ={})
    tf = lifecycle.terraform(resolved, outdir)
    lifecycle.render(resolved, golden_identity(kind, resolved.config.ttl), outdir, tf)
    return outdir


def guard_locals(main: str) -> str:
    start = main.index("# The guard (modules/gcp-guard)")
    return main[start : main.index('module "', start)]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_up_deploys_the_guard_with_its_zip_and_least_privilege(kind, tmp_path):
    out = render(kind, tmp_path / kind)
    values = json.loads((out / "terraform.tfvars.json").read_text())
    main = (out / "main.tf").read_text()
    assert 'module "guard" {\n  source = "./modules/gcp-guard"' in main
    assert (out / "modules" / "gcp-guard" / "main.tf").is_file()

    package = values["guard_package"]
    assert package["filename"] == "guard/cfw_guard.zip"  # relative to the root module
    assert (out / package["filename"]).read_bytes() == guard_zip.build_zip(KINDS[kind])
    assert package["sha256"] == guard_zip.digest(KINDS[kind])
    assert values["guard_settings"] == {
        "interval_minutes": 5,
        "orphan_after_seconds": 900,
        "idle_after_seconds": 1800,
        "expires_at": values["labels"]["cfw-expires-at"],
    }
    ids = values["guard_account_ids"]
    assert all(re.fullmatch(r"[a-z][a-z0-9-]{4,28}[a-z0-9]", i) for i in ids.values())
    assert ids["function"] != ids["scheduler"] and "0a1b2c" in ids["function"]

    wiring = guard_locals(main)
    assert re.search(rf'CFW_GUARD_ADAPTER\s+= "{KINDS[kind]}:from_environ"', wiring)
    assert not SECRETISH.search(wiring)  # names and durations only
    permissions = re.search(r"guard_permissions = \[(.*?)\]", wiring, re.S)[1]
    granted = set(re.findall(r'"([a-z.A-Z]+)"', permissions))
    assert granted and all(not p.endswith((".create", ".setIamPolicy")) for p in granted)
    assert not any(p.startswith(("iam.", "resourcemanager.")) for p in granted)


def test_google_batch_may_list_and_delete_jobs_and_write_only_the_heartbeat_folder(tmp_path):
    main = (render("google-batch", tmp_path / "gb") / "main.tf").read_text()
    wiring = guard_locals(main)
    assert 'guard_permissions = ["batch.jobs.delete", "batch.jobs.list"]' in wiring
    assert 'guard_store_prefix = ".cfw/"' in wiring  # the module's IAM condition
    assert 'CFW_GUARD_STORE   = "gs://${module.google_batch.bucket}"' in wiring


def test_gke_may_get_and_scale_the_cluster_and_keeps_no_heartbeat_in_the_bucket(tmp_path):
    main = (render("gke", tmp_path / "gke") / "main.tf").read_text()
    wiring = guard_locals(main)
    assert (
        'guard_permissions = ["container.clusters.get", "container.clusters.update", '
        '"container.operations.get"]' in wiring
    )
    assert "guard_store_prefix = null" in wiring  # ConfigMaps: no object access at all
    assert 'CFW_GUARD_CLUSTER   = "projects/${var.project}/locations/' in wiring


def test_gke_after_apply_binds_the_guards_account_to_its_own_small_role(monkeypatch):
    """The function's account may list and delete the namespace's Jobs and keep ConfigMaps:
    not create Jobs, not read Secrets (the runner Role's)."""
    from cfw.backends._kube import client as kube_client
    from cfw.backends._kube.rbac import GUARD_ROLE
    from cfw.backends.gke import cloud
    from cfw.backends.gke.config import GkeConfig
    from support.fake_kube import FakeKube

    fake = FakeKube()
    try:
        monkeypatch.setattr(
            cloud, "connect", lambda c, o: kube_client.connect(fake.url, None, lambda: fake.token)
        )
        guard = "cfwg-0a1b2c-gke@my-project.iam.gserviceaccount.com"
        outputs = {
            "namespace": "cfw-jobs",
            "service_account": "cfw-jobs",
            "jobs_service_account_email": "cfwj-0a1b2c-gke@my-project.iam.gserviceaccount.com",
            "guard_service_account_email": guard,
            "cfw_labels": {"cfw-id": "gke-0a1b2c"},
        }
        get_kind("gke").after_apply(GkeConfig(project="my-project"), outputs, {})
        binding = fake.get("rolebindings", "cfw-jobs", GUARD_ROLE)
        assert binding["subjects"] == [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": guard}
        ]
        fake.user = guard
        allowed = {
            (verb, resource)
            for verb in ("list", "delete", "create", "get", "update")
            for resource in ("jobs", "configmaps", "secrets")
            if fake.authorize(verb, "batch" if resource == "jobs" else "", resource, "cfw-jobs")[0]
        }
        assert allowed == {
            ("list", "jobs"),
            ("delete", "jobs"),
            *{(v, "configmaps") for v in ("create", "get", "list", "update")},
        }
    finally:
        fake.close()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_with_the_guard_off_nothing_is_deployed_and_up_says_so(kind, tmp_path):
    out = render(kind, tmp_path / kind, "guard.enabled=false", "ttl=8h")
    values = json.loads((out / "terraform.tfvars.json").read_text())
    main = (out / "main.tf").read_text()
    assert not [k for k in values if k.startswith("guard_")]
    assert "gcp-guard" not in main and "guard_" not in main
    assert not (out / guard_deploy.SUBDIR).exists()

    config = resolve(
        example_environments_dir().parent,
        kind,
        overrides=[*GOLDEN_OVERRIDES.get(kind, []), "guard.enabled=false", "ttl=8h"],
        environ={},
    ).config
    line = unguarded_line(get_kind(kind), config, kind)
    assert line and "nothing cloud-side cancels the jobs" in line and "enforces its ttl" in line


def test_service_account_ids_keep_the_random_part_and_fit():
    assert guard_deploy.account_ids("gcp-batch-0a1b2c") == {
        "function": "cfwg-0a1b2c-gcp-batch",
        "scheduler": "cfws-0a1b2c-gcp-batch",
    }
    long = guard_deploy.account_ids("a-very-long-environment-name-indeed-0a1b2c")
    assert all(len(i) <= 30 and "0a1b2c" in i and not i.endswith("-") for i in long.values())


def test_down_looks_for_what_of_the_guard_is_left(tmp_path):
    """After destroy, `cfw down google-batch` GETs the function, the schedule and both
    service accounts by the names the root gives them; a 404 is gone."""
    from cfw.backends.google_batch.cloud import leftovers
    from support.fake_google import FakeGoogle

    main = (render("google-batch", tmp_path / "gb") / "main.tf").read_text()
    assert 'guard_name = "${var.resource_name}-guard"' in main
    name = guard_deploy.name_of("gcp-batch-0a1b2c")
    urls = guard_deploy.leftover_urls("example-project", "us-central1", name, "gcp-batch-0a1b2c")
    fake = FakeGoogle()
    try:
        clients = fake.clients()
        still = {urls[f"guard function {name}"], urls[f"guard schedule {name}"]}
        clients._http_get = lambda url: 200 if url in still else 404
        known = {"bucket": "gcp-batch-0a1b2c-data", "service_account": "sa@x", "network": "n"}
        assert leftovers(clients, "google-batch-0a1b2c", known, urls) == [
            "guard function gcp-batch-0a1b2c-guard",
            "guard schedule gcp-batch-0a1b2c-guard",
        ]
        assert any("/serviceAccounts/cfwg-0a1b2c-gcp-batch@" in u for u in urls.values())
        clients._http_get = lambda url: 404
        assert leftovers(clients, "google-batch-0a1b2c", known, urls) == []
    finally:
        fake.stop()
