"""Config of an `azure-batch` environment: a shared, autoscaling Batch pool per VM size."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from cfw.core import checks
from cfw.core.config import EnvConfig, Model

ACCOUNT_RE = re.compile(r"^[a-z0-9]{3,24}$")
POOL_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
CONTAINER_RE = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")
VM_SIZE_RE = re.compile(r"^(Standard|Basic)_[A-Z]+\d+[A-Za-z0-9_-]*$")
# what a user can name in BATCH_NODE_FILL_TYPE / node_fill_type
FILL_TYPES = ("Pack", "Spread")


class PoolConfig(Model):
    """One Batch pool: one VM size, autoscaled between zero and its caps."""

    vm_size: str = Field(..., description="Azure VM size of the pool's nodes, e.g. Standard_D4s_v3")
    id: str | None = Field(None, description="pool id (default: the VM size, lowercased)")
    task_slots_per_node: int | None = Field(
        None,
        ge=1,
        le=256,
        description="tasks a node runs at once; a task takes `threads` slots "
        "(default: tasks_per_node)",
    )
    slots_per_task: int | None = Field(
        None,
        ge=1,
        le=256,
        description="slots the autoscale formula assumes a task takes (1..task slots); it "
        "requests nodes for pending tasks / (slots // slots_per_task). Default: all of a "
        "node's slots (one task per node), which never under-provisions; set it to your "
        "usual `threads` to pack nodes (a job with more threads warns once per run)",
    )
    max_dedicated_nodes: int = Field(4, ge=0, le=1000, description="cap on dedicated nodes")
    max_low_priority_nodes: int = Field(
        0, ge=0, le=1000, description="cap on low-priority (spot) nodes"
    )
    prefer_low_priority: bool = Field(
        False, description="fill low-priority nodes before dedicated ones"
    )
    memory_mb: int | None = Field(
        None,
        ge=1,
        le=checks.MAX_MEM_MB,
        description="memory of one node; jobs asking more mem_mb go to another pool",
    )
    gpus: int = Field(0, ge=0, le=16, description="GPUs of one node (N-series sizes)")
    gpu_model: str | None = Field(None, description="GPU model of the nodes, e.g. T4, A100")

    @field_validator("vm_size")
    @classmethod
    def _vm_size(cls, value: str) -> str:
        if not VM_SIZE_RE.match(value):
            raise ValueError("expected an Azure VM size such as Standard_D4s_v3")
        return value

    @field_validator("id")
    @classmethod
    def _id(cls, value: str | None) -> str | None:
        if value is not None and not POOL_ID_RE.match(value):
            raise ValueError("expected 1-63 lowercase letters, digits and '-'")
        return value

    @model_validator(mode="after")
    def _some_nodes(self) -> PoolConfig:
        if self.max_dedicated_nodes + self.max_low_priority_nodes == 0:
            raise ValueError(
                f"pool {self.vm_size}: max_dedicated_nodes and max_low_priority_nodes are both 0; "
                "set one of them above 0"
            )
        return self

    @property
    def pool_id(self) -> str:
        return self.id or re.sub(r"[^a-z0-9-]+", "-", self.vm_size.lower()).strip("-")


class AutoscaleConfig(Model):
    window_minutes: int = Field(
        15, ge=5, le=180, description="how far back the formula looks at pending tasks"
    )
    evaluation_interval_minutes: int = Field(
        5, ge=5, le=168 * 60, description="how often Batch evaluates the formula (at least 5)"
    )


class NodeImageConfig(Model):
    publisher: str = Field("microsoft-dsvm", description="marketplace image publisher")
    offer: str = Field("ubuntu-hpc", description="marketplace image offer")
    sku: str = Field("2204", description="marketplace image SKU")
    version: str = Field("latest", description="marketplace image version")
    node_agent_sku_id: str = Field(
        "batch.node.ubuntu 22.04", description="Batch node agent matching the image"
    )


class RegistryConfig(Model):
    server: str | None = Field(
        None, description="private registry of the job image (BATCH_CONTAINER_REGISTRY)"
    )
    username: str | None = Field(
        None,
        description="registry user (BATCH_CONTAINER_REGISTRY_USER); without one the "
        "pool's identity pulls (AcrPull)",
    )
    password_env: str = Field(
        "BATCH_CONTAINER_REGISTRY_PASS",
        description="environment variable holding the registry password (never in a file)",
    )
    acr_id: str | None = Field(
        None,
        description="resource id of an existing Azure Container Registry: the pool's "
        "identity gets AcrPull on it",
    )
    create_acr: bool = Field(
        False, description="create an Azure Container Registry with the pool (AcrPull for it)"
    )

    @model_validator(mode="after")
    def _check(self) -> RegistryConfig:
        if self.create_acr and self.server:
            raise ValueError("registry: set either create_acr or server, not both")
        return self


class StartTaskConfig(Model):
    script: Path | None = Field(
        None, description="a local shell script the module uploads and every node runs at start"
    )
    sas_url_env: str = Field(
        "BATCH_NODE_START_TASK_SAS_URL",
        description="environment variable holding a SAS URL of the start script (a secret)",
    )
    command_line: str = Field(
        "/bin/bash -c 'bash ./start-task.sh'", description="how the node runs the script"
    )


class ResourceFileConfig(Model):
    source: str = Field(..., description="az://CONTAINER/PATH in the environment's storage")
    file_path: str = Field(..., description="where the file lands in the task's directory")

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        if not re.match(r"^az://[a-z0-9-]{3,63}/.+", value):
            raise ValueError("expected az://CONTAINER/PATH")
        return value


class AzureBatchConfig(EnvConfig):
    kind: Literal["azure-batch"] = "azure-batch"
    subscription_id: str | None = Field(
        None,
        description="Azure subscription (default: AZURE_SUBSCRIPTION_ID / ARM_SUBSCRIPTION_ID)",
    )
    tenant_id: str | None = Field(
        None, description="Entra tenant (default: AZURE_TENANT_ID / ARM_TENANT_ID)"
    )
    region: str | None = Field(
        None, description="Azure location, e.g. westeurope (default: AZURE_LOCATION)"
    )
    resource_group: str | None = Field(None, description="resource group (default: cfw-NAME)")
    batch_account_name: str | None = Field(
        None, description="Batch account, 3-24 lowercase letters/digits (default: from the id)"
    )
    storage_account_name: str | None = Field(
        None, description="storage account, 3-24 lowercase letters/digits (default: from the id)"
    )
    data_container: str = Field("data", description="blob container for sources and files")
    logs_container: str = Field("logs", description="blob container for tasks' stdout/stderr")
    storage_prefix: str | None = Field(
        None,
        description="Snakemake's default storage prefix (default: "
        "az://DATA_CONTAINER/USER/WORKFLOW_DIR)",
    )
    tasks_per_node: int = Field(
        1, ge=1, le=256, description="task slots per node of every pool (BATCH_TASKS_PER_NODE)"
    )
    node_fill_type: Literal["Pack", "Spread"] = Field(
        "Pack", description="Pack: fill a node before the next (BATCH_NODE_FILL_TYPE)"
    )
    pools: list[PoolConfig] = Field(
        default_factory=lambda: [PoolConfig(vm_size="Standard_D4s_v3")],
        description="one autoscaling pool per VM size",
    )
    autoscale: AutoscaleConfig = Field(default_factory=AutoscaleConfig)
    node_image: NodeImageConfig = Field(default_factory=NodeImageConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    start_task: StartTaskConfig = Field(default_factory=StartTaskConfig)
    output_files_auth: Literal["identity", "sas"] = Field(
        "identity",
        description="how nodes upload stdout/stderr: identity (the pool's managed identity) "
        "or sas (a write-only SAS minted per task at submit)",
    )
    resource_files: list[ResourceFileConfig] = Field(
        default_factory=list, description="files every task downloads before it starts"
    )
    sas_hours: int = Field(48, ge=1, le=168, description="lifetime of SAS tokens cfw mints")
    arm_endpoint: str = Field(
        "https://management.azure.com", description="Azure Resource Manager (sovereign clouds)"
    )

    @field_validator("subscription_id")
    @classmethod
    def _subscription(cls, value: str | None) -> str | None:
        return None if value is None else checks.check_guid(value, "subscription")

    @field_validator("tenant_id")
    @classmethod
    def _tenant(cls, value: str | None) -> str | None:
        return None if value is None else checks.check_guid(value, "tenant")

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:  # Azure takes the display name too: "West Europe" is westeurope
            checks.check_region("azure", value.lower().replace(" ", ""))
        except ValueError:
            checks.check_region("azure", value)
        return value

    @field_validator("batch_account_name", "storage_account_name")
    @classmethod
    def _account(cls, value: str | None) -> str | None:
        if value is not None and not ACCOUNT_RE.match(value):
            raise ValueError("expected 3-24 lowercase letters and digits")
        return value

    @field_validator("data_container", "logs_container")
    @classmethod
    def _container(cls, value: str) -> str:
        if not CONTAINER_RE.match(value):
            raise ValueError("expected 3-63 lowercase letters, digits and single '-'")
        return value

    @field_validator("storage_prefix")
    @classmethod
    def _prefix(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^az://[a-z0-9-]{3,63}(/.*)?$", value):
            raise ValueError("expected az://CONTAINER[/PATH]")
        return value

    @model_validator(mode="after")
    def _pools(self) -> AzureBatchConfig:
        if not self.pools:
            raise ValueError("pools: configure at least one pool (vm_size: ...)")
        ids = [p.pool_id for p in self.pools]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"pools: pool id {dupes[0]!r} is used twice; give one an id:")
        for pool in self.pools:
            if pool.slots_per_task is not None and pool.slots_per_task > self.slots(pool):
                raise ValueError(
                    f"pool {pool.pool_id}: slots_per_task {pool.slots_per_task} is more than "
                    f"its {self.slots(pool)} task slot(s) per node; set 1..{self.slots(pool)}"
                )
        if self.data_container == self.logs_container:
            raise ValueError("data_container and logs_container must differ")
        return self

    def slots(self, pool: PoolConfig) -> int:
        return pool.task_slots_per_node or self.tasks_per_node

    def slots_per_task(self, pool: PoolConfig) -> int:
        """Slots the pool's autoscale formula assumes each task takes (a job's `threads`)."""
        return pool.slots_per_task or self.slots(pool)

    def tasks_on_a_node(self, pool: PoolConfig) -> int:
        """Tasks of ``slots_per_task`` slots that fit on one node (Batch never splits a
        task's slots across nodes)."""
        return self.slots(pool) // self.slots_per_task(pool)
