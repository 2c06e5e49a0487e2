"""Snakemake's own executor-plugin conformance test, on cfw's executor and the local kind.

Every Snakemake executor plugin runs `snakemake.common.tests.TestWorkflowsLocalStorageBase`
in its CI: Snakemake's 'simple' and 'groups' workflows, through the executor that
`get_executor()` names, in Snakemake's own process (its API, not its CLI). cfw's executor
has no shared filesystem (`implies_no_shared_fs`), so the workflows' files go through a
default storage: cfw's local-disk storage plugin, rooted in the test's directory, as
`cfw run` on the local kind gives it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from snakemake.common.tests import TestWorkflowsLocalStorageBase
from snakemake_interface_common.plugin_registry.plugin import TaggedSettings

from snakemake_executor_plugin_cfw import ExecutorSettings
from snakemake_storage_plugin_cfw import StorageProviderSettings

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


class TestCfwExecutorOnLocal(TestWorkflowsLocalStorageBase):
    __test__ = True

    @pytest.fixture(autouse=True)
    def _isolated(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
        """The storage, Snakemake's source archives and the job sandboxes live in the test's
        directory; cfw's records (.cfw/) in the workflow's (set by _copy_test_files)."""
        self.tmp = tmp_path
        self.monkeypatch = monkeypatch
        (tmp_path / "storage").mkdir()
        (tmp_path / "sandboxes").mkdir()

    def get_executor(self) -> str:
        return "cfw"

    def get_executor_settings(self) -> ExecutorSettings:
        return ExecutorSettings(env="local")

    def get_assume_shared_fs(self) -> bool:
        return False

    def get_default_storage_provider(self) -> str:
        return "cfw"

    def get_default_storage_prefix(self) -> str:
        return str(self.tmp / "storage")

    def get_default_storage_provider_settings(self) -> dict[str, TaggedSettings]:
        tagged = TaggedSettings()
        tagged.register_settings(StorageProviderSettings(sources_dir=str(self.tmp / "sources")))
        return {"cfw": tagged}

    def _copy_test_files(self, test_path, tmp_path):
        super()._copy_test_files(test_path, tmp_path)
        environments = Path(tmp_path) / "environments"
        environments.mkdir()
        (environments / "local.yaml").write_text(
            f"kind: local\nsandbox_root: {self.tmp / 'sandboxes'}\n"
        )
        # cfw's executor keeps its records in .cfw/ of the current directory; Snakemake's
        # API changes into the workflow directory while it runs, and so does the test, so
        # that nothing of cfw's lands in the directory pytest was started from
        self.monkeypatch.chdir(tmp_path)

    def run_workflow(self, test_name, tmp_path, deployment_method=frozenset()):
        super().run_workflow(test_name, tmp_path, deployment_method)
        workdir = Path(tmp_path) / test_name
        # the outputs are in the storage, where the jobs stored them
        assert (self.tmp / "storage" / "test3.out").is_file(), sorted(self.tmp.rglob("*.out"))
        runs = list((workdir / ".cfw" / "local" / "runs").glob("*/jobs.jsonl"))
        assert runs, "cfw recorded no run of the workflow"
        events = [line for path in runs for line in path.read_text().splitlines()]
        assert any('"succeeded"' in line for line in events)
        assert not any('"failed"' in line for line in events)
