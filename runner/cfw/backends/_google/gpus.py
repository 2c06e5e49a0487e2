"""GPU model names both Google kinds (gke, google-batch) accept for a rule's gpu_model.

Compute Engine names accelerators ``nvidia-tesla-t4``, ``nvidia-a100-80gb``, ...; people
write ``t4``, ``a100`` or ``tesla-t4``. ``canonical`` maps either to Google's name. Pure:
no SDK.
"""

from __future__ import annotations

# Compute Engine's accelerator types (cloud.google.com/compute/docs/gpus), 2025
ACCELERATORS = (
    "nvidia-tesla-t4",
    "nvidia-tesla-p4",
    "nvidia-tesla-p100",
    "nvidia-tesla-v100",
    "nvidia-tesla-a100",
    "nvidia-a100-80gb",
    "nvidia-l4",
    "nvidia-h100-80gb",
    "nvidia-h100-mega-80gb",
)
# short names that are not the accelerator type minus its nvidia-/nvidia-tesla- prefix
_EXTRA = {
    "a100-40gb": "nvidia-tesla-a100",
    "h100": "nvidia-h100-80gb",
    "h100-mega": "nvidia-h100-mega-80gb",
}


def _aliases() -> dict[str, str]:
    table: dict[str, str] = {}
    for name in ACCELERATORS:
        short = name.removeprefix("nvidia-").removeprefix("tesla-")
        tesla = (f"tesla-{short}",) if name.startswith("nvidia-tesla-") else ()
        for alias in (name, short, f"nvidia-{short}", *tesla):
            table[alias] = name
    return {**table, **_EXTRA}


ALIASES: dict[str, str] = _aliases()


def canonical(model: str) -> str | None:
    """Google's accelerator type for a model name or short alias; None when unknown."""
    return ALIASES.get(model.strip().lower())


def short_names() -> str:
    """The short names, for a hint: t4, p4, ..."""
    return ", ".join(n.removeprefix("nvidia-").removeprefix("tesla-") for n in ACCELERATORS)


def short(model: str) -> str:
    """A model name without case, spaces and its nvidia-/tesla- prefixes: ``a10``."""
    name = model.strip().lower().replace(" ", "-")
    return name.removeprefix("nvidia-").removeprefix("tesla-")


def same_model(a: str | None, b: str | None) -> bool:
    """Whether two names name one GPU model, on every kind that has GPUs: Google's name
    (``nvidia-tesla-t4``), a short one (``t4``, ``T4``, ``tesla-t4``), or, for models
    Google does not offer (Azure's A10), the name without its nvidia-/tesla- prefix."""
    if not a or not b:
        return False
    known_a, known_b = canonical(a), canonical(b)
    if known_a and known_b:
        return known_a == known_b
    return short(a) == short(b)
