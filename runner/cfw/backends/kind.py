"""What an environment kind declares to the core: its config, module, template and backend.

:class:`Kind` is the one contract the orchestration and the executor see. It is generic
in the kind's config model, so that every hook takes the kind's own config. A kind module
imports no cloud SDK; the backend class and the translate function (which may) are loaded
lazily, and a missing SDK becomes an install hint.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from cfw.backends import sdk
from cfw.backends.base import Backend, Capabilities, EnvContext, JobSpec, StorageSpec, check_job
from cfw.core.config import EnvConfig
from cfw.core.errors import CfwError, UserError
from cfw.core.guard_check import Adapter
from cfw.core.heartbeat import HeartbeatStore
from cfw.core.prices import FixedCost, JobPrice, PoolPrice
from cfw.core.rootmodule import RootSpec

C = TypeVar("C", bound=EnvConfig)


@dataclass(frozen=True)
class Identity:
    """The names and labels that tie every resource to one environment."""

    name: str
    kind: str
    env_id: str
    created_at: datetime
    expires_at: datetime | None

    def labels(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        expires = self.expires_at.strftime("%Y%m%dt%H%M%Sz") if self.expires_at else "never"
        return {
            **dict(extra or {}),
            "cfw-env": self.name,
            "cfw-id": self.env_id,
            "cfw-expires-at": expires,
        }


class Users(Protocol):
    """Who may use a shared environment (`cfw users`), where a kind has users."""

    def list(self) -> list[str]: ...

    def add(self, user: str) -> None: ...

    def remove(self, user: str) -> bool: ...  # False: was not a member


class Kind(Generic[C]):
    name: ClassVar[str]
    label: ClassVar[str]  # how messages name its jobs' service: "Tibanna", "Azure Batch"
    summary: ClassVar[str]
    config_model: type[C]
    root: ClassVar[RootSpec] = RootSpec()  # the modules its root module composes
    capabilities: ClassVar[Capabilities] = Capabilities()
    backend_path: ClassVar[str]  # "package.module:Class"
    translate_path: ClassVar[str]  # "package.module:function", pure, no SDK import needed
    # "package.module:function": the request as the SDK's own message, for kinds whose
    # translate turns one into JSON (what explain prints); None: submit translate's payload
    submit_path: ClassVar[str | None] = None
    extra: ClassVar[str | None] = None  # pip extra with the SDKs
    default_jobs: ClassVar[int] = 100

    @property
    def template(self) -> str:
        return f"root/{self.name}.tf.j2"

    # -- config -----------------------------------------------------------------------------
    def defaults(self, environ: Mapping[str, str]) -> dict[str, Any]:
        """Config values taken from the usual environment variables of this cloud."""
        return {}

    def preflight(self, config: C, environ: Mapping[str, str]) -> None:
        """Raise UserError, before anything is created, when something required is missing."""

    def terraform_env(self, config: C, environ: Mapping[str, str]) -> dict[str, str]:
        """Extra environment for Terraform: provider credentials and secret variables
        (``TF_VAR_*``), which must never be written to terraform.tfvars.json."""
        return {}

    # -- rendering --------------------------------------------------------------------------
    def root_spec(self, config: C) -> RootSpec:
        """What the environment's root module composes (by default the kind's ``root``)."""
        return self.root

    def tfvars(self, config: C, ident: Identity, workdir: Path) -> dict[str, Any]:
        return {"name": ident.name, "labels": ident.labels(config.labels)}

    def render_files(self, config: C, outdir: Path) -> None:
        """Write the files the rendered root module refers to by a path relative to itself
        (``path.module``), next to it in ``outdir``; most kinds have none."""

    def adopt_after_failure(self, config: C, error: str) -> str | None:
        """After a failed apply: what to say when the failure is a shared resource that
        another environment created meanwhile, which a re-render adopts (then `up` renders
        and applies once more); None: the failure stands."""
        return None

    def output_placeholders(self, config: C, ident: Identity | None) -> dict[str, Any]:
        """What `--explain` shows for outputs known only after `up`."""
        return {}

    def after_apply(
        self, config: C, outputs: Mapping[str, Any], environ: Mapping[str, str]
    ) -> None:
        """After `terraform apply`: create what Terraform does not (e.g. Kubernetes objects).
        Must be idempotent: a repeated `up` calls it again. Raise CfwError on failure."""

    # -- running ----------------------------------------------------------------------------
    def storage(
        self,
        config: C,
        outputs: Mapping[str, Any],
        workdir: Path,
        environ: Mapping[str, str],
        scratch: Path,
    ) -> StorageSpec:
        """Where sources and files go; ``scratch`` is a private directory of the environment."""
        raise NotImplementedError

    def default_image(self, config: C) -> str:
        from snakemake import __version__ as smk_version

        return config.image or f"snakemake/snakemake:v{smk_version}"

    def backend_class(self) -> type[Backend[C]]:
        return self._load(self.backend_path)

    def backend(self, ctx: EnvContext[C]) -> Backend[C]:
        """The backend of a run on this environment."""
        return self.backend_class()(ctx)

    def translate(self, spec: JobSpec, ctx: EnvContext[C]) -> dict[str, Any]:
        """The exact payload the service's API would receive (secrets by reference), after
        refusing what the kind cannot give the job. Pure: no network, no SDK client."""
        check_job(spec, self.capabilities, self.label)
        return self._load(self.translate_path)(spec, ctx)

    def on_spot(self, spec: JobSpec, ctx: EnvContext[C]) -> bool:
        """Whether the job runs on spot/preemptible capacity: it asked, the kind gives it."""
        return spec.preemptible and self.capabilities.spot

    def on_demand_problem(self, spec: JobSpec, ctx: EnvContext[C]) -> str | None:
        """Why a preempted spot job cannot be resubmitted on on-demand capacity; None: it
        can. By default it can where the job translates without spot."""
        try:
            self.translate(dataclasses.replace(spec, preemptible=False, spot_retries=None), ctx)
        except CfwError as exc:
            return exc.message
        return None

    def submission(self, spec: JobSpec, ctx: EnvContext[C]) -> Any:
        """What a run hands the backend's submit: translate's payload, or with a
        ``submit_path`` the same request built as the SDK's message, not turned into JSON
        and parsed back for every job."""
        if self.submit_path is None:
            return self.translate(spec, ctx)
        check_job(spec, self.capabilities, self.label)
        return self._load(self.submit_path)(spec, ctx)

    def _load(self, path: str) -> Any:
        return sdk.load(path, self.extra or self.name)

    # -- prices (estimates) -----------------------------------------------------------------
    def price(self, spec: JobSpec, ctx: EnvContext[C]) -> JobPrice | None:
        """What the job pays per hour while it runs: its share of the machine it gets (the
        whole VM where a job gets one of its own, its slots' or resources' share of a node
        where jobs share nodes), at the capacity it gets. Called for a job ``translate``
        accepted; pure, like translate. None: the kind bills nothing per job (local)."""
        return None

    def pool_prices(self, config: C) -> list[PoolPrice]:
        """The node price of each pool the environment has (`cfw plan`, `cfw up`); empty
        for kinds whose jobs each get a VM of their own."""
        return []

    def price_region(self, config: C) -> str | None:
        """The region the environment's prices are looked up in."""
        return getattr(config, "region", None)

    def fixed_costs(self, config: C) -> list[FixedCost]:
        """What the environment costs while idle (prices/data/kinds.json, priced in its
        region with its settings)."""
        from cfw.core.prices import fixed_costs

        return fixed_costs(self.name, self.price_region(config), config.model_dump())

    # -- teardown ---------------------------------------------------------------------------
    def before_destroy(
        self, config: C, outputs: Mapping[str, Any], environ: Mapping[str, str]
    ) -> None:
        """Undo what was added beside Terraform (users of a group, ...) so destroy succeeds."""

    def kept_on_destroy(
        self, config: C, outputs: Mapping[str, Any], environ: Mapping[str, str]
    ) -> dict[str, str]:
        """Terraform addresses `down` removes from the state instead of destroying (something
        other environments still use), each with the reason; called after before_destroy."""
        return {}

    def leftovers(
        self,
        config: C,
        ident: Identity,
        outputs: Mapping[str, Any],
        environ: Mapping[str, str],
    ) -> list[str]:
        """Resources still carrying this environment's id after destroy (empty = clean)."""
        return []

    def remove_leftovers(
        self,
        config: C,
        ident: Identity,
        outputs: Mapping[str, Any],
        environ: Mapping[str, str],
        say: Callable[[str], None],
    ) -> list[str]:
        """Remove what :meth:`leftovers` found (only what carries this environment's id),
        saying each with SAY, then look again: one line for each thing still there, naming
        it, why it could not be removed and a command that removes it (empty = clean).
        Here: nothing is removed; each is to be deleted by hand."""
        return [
            f"{item}: cfw does not remove leftovers of {self.name} environments; delete it by hand"
            for item in self.leftovers(config, ident, outputs, environ)
        ]

    # -- the guard: heartbeats, `cfw cancel`, `cfw guard --once` ----------------------------
    def heartbeat_store(
        self, ctx: EnvContext[C], environ: Mapping[str, str]
    ) -> tuple[HeartbeatStore, str] | None:
        """Where runs on this environment keep their heartbeats and the guard its record
        (cfw.core.heartbeat): a store and the prefix in it, the environment's own storage
        (its bucket, container, ...) so that the cloud guard and every machine see them.
        None: the kind keeps none (no heartbeats; `cfw cancel` goes by its jobs alone).
        Called by the executor before a run's first job; it may open an SDK client."""
        return None

    def guard_adapter(self, ctx: EnvContext[C], environ: Mapping[str, str]) -> Adapter | None:
        """What the guard sees and does on this environment (cfw.core.guard_check.Adapter):
        its store, the active jobs carrying its cfw-id, cancel (by run label, idempotent) and
        stop. Used by `cfw guard NAME --once`, `cfw cancel`, `cfw status` and `cfw down`
        (which cancels every job before destroying). Each kind's adapter is in its package's
        guard.py (``adapter_for``), built lazily here. None: the kind has none. An adapter
        whose ``store`` is None keeps no heartbeats: `cfw guard --once` and `cfw cancel`
        without RUN refuse on it."""
        return None

    def status_details(self, config: C, outputs: Mapping[str, Any]) -> dict[str, Any]:
        """Extra facts for `cfw status` (pool allocation, node counts, ...)."""
        return {}

    def users(self, config: C, outputs: Mapping[str, Any], environ: Mapping[str, str]) -> Users:
        """The environment's users (kinds whose capabilities say ``users``)."""
        raise UserError(
            f"kind {self.name} has no users to manage",
            "`cfw users` works on kinds with users, such as tibanna",
        )
