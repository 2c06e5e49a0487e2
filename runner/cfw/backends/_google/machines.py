"""Compute Engine machine types: a small catalogue, and the choice of a type for a job.

A rule's ``machine_type`` is an exact type (``n2-standard-8``) or a prefix (``n2``,
``n1-highmem``); for a prefix cfw takes the cheapest type of the catalogue that has at
least ``threads`` vCPUs and enough memory for ``mem_mb``. GPUs choose the family: the
models that attach to N1 VMs force an N1 type (as Snakemake's Life Sciences executor did),
A100, L4 and H100 come built into A2, G2 and A3 types.

The catalogue is a SNAPSHOT, typed in by hand from Google's public pages "Machine families
resource and comparison guide" (cloud.google.com/compute/docs/machine-resource), "GPU
machine types" (cloud.google.com/compute/docs/gpus) and the on-demand prices of
us-central1 on "VM instance pricing" (cloud.google.com/compute/vm-instance-pricing), as
they stood in 2025. Prices are used only to rank types against each other (regions and
spot prices shift them a little); cfw never shows them as a cost. Types missing here can
still be named exactly; refresh the tables when Google adds families.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cfw.backends._google.gpus import canonical, short_names
from cfw.core.errors import UserError

# VMs keep some memory for the OS, Docker and the Batch agent: a type fits a job when
# this share of its memory covers the job's mem_mb.
USABLE_MEMORY = 0.9
# A rule without mem_mb gets a type of the standard shape: 3.75 GB per thread, as
# n1-standard (the highcpu shapes have as little as 0.9 GB per vCPU).
MIB_PER_THREAD = 3840


@dataclass(frozen=True)
class MachineType:
    name: str
    vcpus: int
    memory_mib: int
    price: float  # USD per hour, on demand, us-central1 (for ranking only)
    gpu_model: str | None = None  # GPUs built into the type (A2, G2, A3)
    gpus: int = 0
    shared_core: bool = False  # e2-micro/small/medium: named exactly, never chosen for a prefix

    @property
    def usable_mib(self) -> int:
        return int(self.memory_mib * USABLE_MEMORY)


@dataclass(frozen=True)
class GpuModel:
    name: str
    family: str  # "n1": attached to an N1 VM; otherwise the family whose types carry it
    counts: tuple[int, ...]
    max_vcpus: dict[int, int] | None = None  # N1: most vCPUs a VM with that many GPUs may have


@dataclass(frozen=True)
class Choice:
    machine_type: str
    vcpus: int | None  # None: an exact type this catalogue does not know
    memory_mib: int | None
    gpu_model: str | None = None
    gpus: int = 0


# -- the snapshot --------------------------------------------------------------------------
# family: (USD per vCPU-hour, USD per GB-hour, {shape: (GB per vCPU, vCPU counts)})
_FAMILIES: dict[str, tuple[float, float, dict[str, tuple[float, tuple[int, ...]]]]] = {
    "e2": (
        0.021811,
        0.002923,
        {
            "standard": (4, (2, 4, 8, 16, 32)),
            "highmem": (8, (2, 4, 8, 16)),
            "highcpu": (1, (2, 4, 8, 16, 32)),
        },
    ),
    "n1": (
        0.031611,
        0.004237,
        {
            "standard": (3.75, (1, 2, 4, 8, 16, 32, 64, 96)),
            "highmem": (6.5, (2, 4, 8, 16, 32, 64, 96)),
            "highcpu": (0.9, (2, 4, 8, 16, 32, 64, 96)),
        },
    ),
    "n2": (
        0.031611,
        0.004237,
        {
            "standard": (4, (2, 4, 8, 16, 32, 48, 64, 80, 96, 128)),
            "highmem": (8, (2, 4, 8, 16, 32, 48, 64, 80, 96, 128)),
            "highcpu": (1, (2, 4, 8, 16, 32, 48, 64, 80, 96)),
        },
    ),
    "n2d": (
        0.027502,
        0.003686,
        {
            "standard": (4, (2, 4, 8, 16, 32, 48, 64, 80, 96, 128, 224)),
            "highmem": (8, (2, 4, 8, 16, 32, 48, 64, 80, 96)),
            "highcpu": (1, (2, 4, 8, 16, 32, 48, 64, 80, 96, 128, 224)),
        },
    ),
    "t2d": (0.027502, 0.003686, {"standard": (4, (1, 2, 4, 8, 16, 32, 48, 60))}),
    "c2": (0.03398, 0.00455, {"standard": (4, (4, 8, 16, 30, 60))}),
    "c2d": (
        0.029563,
        0.003959,
        {
            "standard": (4, (2, 4, 8, 16, 32, 56, 112)),
            "highmem": (8, (2, 4, 8, 16, 32, 56, 112)),
            "highcpu": (2, (2, 4, 8, 16, 32, 56, 112)),
        },
    ),
}

# name, vCPUs, memory GB, USD/hour, built-in GPU model, GPU count
_GPU_TYPES: tuple[tuple[str, int, float, float, str, int], ...] = (
    ("a2-highgpu-1g", 12, 85, 3.673385, "nvidia-tesla-a100", 1),
    ("a2-highgpu-2g", 24, 170, 7.34677, "nvidia-tesla-a100", 2),
    ("a2-highgpu-4g", 48, 340, 14.69354, "nvidia-tesla-a100", 4),
    ("a2-highgpu-8g", 96, 680, 29.38708, "nvidia-tesla-a100", 8),
    ("a2-megagpu-16g", 96, 1360, 55.739504, "nvidia-tesla-a100", 16),
    ("a2-ultragpu-1g", 12, 170, 5.06879789, "nvidia-a100-80gb", 1),
    ("a2-ultragpu-2g", 24, 340, 10.13759578, "nvidia-a100-80gb", 2),
    ("a2-ultragpu-4g", 48, 680, 20.27519156, "nvidia-a100-80gb", 4),
    ("a2-ultragpu-8g", 96, 1360, 40.55038312, "nvidia-a100-80gb", 8),
    ("g2-standard-4", 4, 16, 0.70683228, "nvidia-l4", 1),
    ("g2-standard-8", 8, 32, 0.85362817, "nvidia-l4", 1),
    ("g2-standard-12", 12, 48, 1.00042405, "nvidia-l4", 1),
    ("g2-standard-16", 16, 64, 1.14721994, "nvidia-l4", 1),
    ("g2-standard-24", 24, 96, 2.00084810, "nvidia-l4", 2),
    ("g2-standard-32", 32, 128, 1.73440329, "nvidia-l4", 1),
    ("g2-standard-48", 48, 192, 4.00169621, "nvidia-l4", 4),
    ("g2-standard-96", 96, 384, 8.00339242, "nvidia-l4", 8),
    ("a3-highgpu-1g", 26, 234, 11.0612, "nvidia-h100-80gb", 1),
    ("a3-highgpu-2g", 52, 468, 22.1225, "nvidia-h100-80gb", 2),
    ("a3-highgpu-4g", 104, 936, 44.2450, "nvidia-h100-80gb", 4),
    ("a3-highgpu-8g", 208, 1872, 88.2515, "nvidia-h100-80gb", 8),
    ("a3-megagpu-8g", 208, 1872, 92.5, "nvidia-h100-mega-80gb", 8),
)

# shared-core E2 types: 2 vCPUs that share a physical core, at a fraction of the time
_SHARED: tuple[tuple[str, float, float], ...] = (
    ("e2-micro", 1, 0.008376),
    ("e2-small", 2, 0.016751),
    ("e2-medium", 4, 0.033503),
)

GPU_MODELS: dict[str, GpuModel] = {
    m.name: m
    for m in (
        GpuModel("nvidia-tesla-t4", "n1", (1, 2, 4), {1: 48, 2: 48, 4: 96}),
        GpuModel("nvidia-tesla-v100", "n1", (1, 2, 4, 8), {1: 12, 2: 24, 4: 48, 8: 96}),
        GpuModel("nvidia-tesla-p100", "n1", (1, 2, 4), {1: 16, 2: 32, 4: 96}),
        GpuModel("nvidia-tesla-p4", "n1", (1, 2, 4), {1: 24, 2: 48, 4: 96}),
        GpuModel("nvidia-tesla-a100", "a2", (1, 2, 4, 8, 16)),
        GpuModel("nvidia-a100-80gb", "a2", (1, 2, 4, 8)),
        GpuModel("nvidia-l4", "g2", (1, 2, 4, 8)),
        GpuModel("nvidia-h100-80gb", "a3", (1, 2, 4, 8)),
        GpuModel("nvidia-h100-mega-80gb", "a3", (8,)),
    )
}


def _build() -> dict[str, MachineType]:
    types: dict[str, MachineType] = {}
    for family, (per_cpu, per_gb, shapes) in _FAMILIES.items():
        for shape, (gb_per_cpu, counts) in shapes.items():
            for cpus in counts:
                gb = cpus * gb_per_cpu
                name = f"{family}-{shape}-{cpus}"
                types[name] = MachineType(name, cpus, int(gb * 1024), cpus * per_cpu + gb * per_gb)
    for name, cpus, gb, price, model, gpus in _GPU_TYPES:
        types[name] = MachineType(name, cpus, int(gb * 1024), price, model, gpus)
    for name, gb, price in _SHARED:
        types[name] = MachineType(name, 2, int(gb * 1024), price, shared_core=True)
    return types


CATALOGUE: dict[str, MachineType] = _build()
# the families a rule without machine_type may get: offered in every region (T2D, C2 and
# C2D are not, so they are chosen only when a prefix names them)
GENERAL_FAMILIES = ("e2", "n2d", "n2", "n1")
_CUSTOM_RE = re.compile(r"^(?:[a-z][a-z0-9]*-)?custom-(?P<cpus>\d+)-(?P<mib>\d+)(?:-ext)?$")
_EXACT_RE = re.compile(r"^[a-z][a-z0-9]*-[a-z]+-\d+[a-z]*(?:-[a-z]+)?$")  # c3-standard-4-lssd


# -- lookups -------------------------------------------------------------------------------
def matches(name: str, prefix: str) -> bool:
    """``n2`` matches ``n2-standard-8`` but not ``n2d-standard-8``."""
    return name == prefix or name.startswith(prefix + "-")


def exact(name: str) -> MachineType | None:
    """The type named exactly, from the catalogue or a custom type's name; None otherwise."""
    if name in CATALOGUE:
        return CATALOGUE[name]
    custom = _CUSTOM_RE.match(name)
    if custom:
        return MachineType(name, int(custom["cpus"]), int(custom["mib"]), 0.0)
    return None


def is_exact(name: str) -> bool:
    """An exact type name (known here or not), as opposed to a family prefix."""
    return exact(name) is not None or (
        bool(_EXACT_RE.match(name)) and not any(t.startswith(name + "-") for t in CATALOGUE)
    )


def check(machine_type: str) -> None:
    """Raise ValueError unless ``machine_type`` is an exact type or a known prefix."""
    if is_exact(machine_type):
        return
    if not any(matches(t, machine_type) and not m.shared_core for t, m in CATALOGUE.items()):
        families = ", ".join(sorted({t.split("-")[0] for t in CATALOGUE}))
        raise ValueError(
            f"{machine_type!r} is neither a machine type (n2-standard-8) nor a prefix of one "
            f"this cfw knows (families: {families}; n1-highmem style prefixes work too)"
        )


# -- the choice ----------------------------------------------------------------------------
def _fits(m: MachineType, threads: int, mem_mb: int | None) -> bool:
    return m.vcpus >= threads and (mem_mb is None or m.usable_mib >= mem_mb)


def _cheapest(
    candidates: list[MachineType], threads: int, mem_mb: int | None, what: str
) -> MachineType:
    need_mb = mem_mb if mem_mb is not None else int(threads * MIB_PER_THREAD * USABLE_MEMORY)
    fitting = [m for m in candidates if _fits(m, threads, need_mb)]
    if not fitting:
        need = f"{threads} vCPUs" + (f" and {mem_mb} MB of memory" if mem_mb else "")
        largest = max(candidates, key=lambda m: (m.vcpus, m.memory_mib), default=None)
        biggest = f"; the largest is {largest.name}" if largest else ""
        raise UserError(
            f"no machine type {what} has {need}{biggest}",
            "lower the rule's threads/mem_mb or choose another machine_type",
        )
    return min(fitting, key=lambda m: (m.price, m.vcpus, m.name))


def _check_exact(known: MachineType, threads: int, mem_mb: int | None) -> None:
    """An exact type must hold the job: it is never silently shrunk to fit."""
    hint = (
        "choose a larger type, or a prefix such as "
        f"{known.name.rsplit('-', 1)[0]} to let cfw pick one that fits"
    )
    if threads > known.vcpus:
        raise UserError(
            f"machine_type {known.name} has {known.vcpus} vCPUs, fewer than the rule's "
            f"threads={threads}",
            hint,
        )
    if mem_mb is not None and known.usable_mib < mem_mb:
        raise UserError(
            f"machine_type {known.name} has {known.memory_mib} MiB of memory "
            f"({known.usable_mib} usable), less than the rule's mem_mb={mem_mb}",
            hint,
        )


def _of_prefix(prefix: str | None, families: tuple[str, ...]) -> list[MachineType]:
    pool = [m for m in CATALOGUE.values() if not m.shared_core and m.gpus == 0]
    if prefix:
        return [m for m in pool if matches(m.name, prefix)]
    return [m for m in pool if m.name.split("-")[0] in families]


def choose(
    *, threads: int, mem_mb: int | None, machine_type: str | None, gpus: int, gpu_model: str | None
) -> Choice:
    """The machine type (and GPUs) of one job."""
    if gpus > 0 and gpu_model:
        return _choose_gpu(threads, mem_mb, machine_type, gpus, gpu_model)
    if machine_type and is_exact(machine_type):
        known = exact(machine_type)
        if known is None:
            return Choice(machine_type, None, None)
        _check_exact(known, threads, mem_mb)
        return Choice(known.name, known.vcpus, known.memory_mib)
    what = f"of prefix {machine_type}" if machine_type else "of the general-purpose families"
    best = _cheapest(_of_prefix(machine_type, GENERAL_FAMILIES), threads, mem_mb, what)
    return Choice(best.name, best.vcpus, best.memory_mib)


def gpu_model(name: str) -> GpuModel:
    """The model of a rule's gpu_model: Google's name or a short one (t4, a100, l4)."""
    model = GPU_MODELS.get(canonical(name) or "")
    if model is None:
        raise UserError(
            f"gpu_model {name!r} is not a GPU model Google Batch offers",
            f"use one of: {', '.join(GPU_MODELS)} (or short names: {short_names()})",
        )
    return model


def _choose_gpu(
    threads: int, mem_mb: int | None, machine_type: str | None, gpus: int, name: str
) -> Choice:
    model = gpu_model(name)
    model_name = model.name
    if gpus not in model.counts:
        raise UserError(
            f"{model_name} comes in counts of {', '.join(map(str, model.counts))}, not {gpus}",
            "set the rule's gpu/nvidia_gpu to one of those",
        )
    if model.family == "n1":
        # attached GPUs: an N1 VM; a machine_type of another family is overridden, as
        # Snakemake's docs described
        wanted = machine_type if machine_type and matches(machine_type, "n1") else None
        if wanted and is_exact(wanted):
            known = exact(wanted)
            if known is None:
                return Choice(wanted, None, None, model_name, gpus)
            _check_exact(known, threads, mem_mb)
            limit = (model.max_vcpus or {}).get(gpus)
            if limit is not None and known.vcpus > limit:
                raise UserError(
                    f"machine_type {wanted} has {known.vcpus} vCPUs, more than the limit of "
                    f"{limit} vCPUs for {gpus} {model_name} GPU(s) on an N1 VM",
                    f"choose an N1 type with at most {limit} vCPUs, more GPUs, or the prefix "
                    f"{wanted.rsplit('-', 1)[0]} to let cfw pick one",
                )
            return Choice(known.name, known.vcpus, known.memory_mib, model_name, gpus)
        pool = _of_prefix(wanted or "n1", ("n1",))
        if model.max_vcpus:
            pool = [m for m in pool if m.vcpus <= model.max_vcpus[gpus]]
        best = _cheapest(
            pool, threads, mem_mb, f"of prefix {wanted or 'n1'} with {gpus} {model_name}"
        )
        return Choice(best.name, best.vcpus, best.memory_mib, model_name, gpus)
    pool = [m for m in CATALOGUE.values() if m.gpu_model == model_name and m.gpus == gpus]
    if machine_type in {m.name for m in pool}:
        known = CATALOGUE[machine_type]
        _check_exact(known, threads, mem_mb)
        return Choice(known.name, known.vcpus, known.memory_mib, model_name, gpus)
    # a prefix of the right family narrows the choice; any other machine_type is overridden
    narrowed = [m for m in pool if machine_type and matches(m.name, machine_type)]
    best = _cheapest(narrowed or pool, threads, mem_mb, f"with {gpus} {model_name}")
    return Choice(best.name, best.vcpus, best.memory_mib, model_name, gpus)
