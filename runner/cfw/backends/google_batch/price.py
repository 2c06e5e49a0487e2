"""What a Google Batch job pays: the whole VM Batch creates for it. Pure; an estimate.

The VM is the machine type translate chooses (machines.choose: the rule's or the config's
type or prefix, else the cheapest general-purpose type that fits), with its attached GPUs;
a preemptible job runs on a Spot VM. Its boot disk is not priced.
"""

from __future__ import annotations

from cfw.backends._google import machines
from cfw.backends.base import EnvContext, JobSpec
from cfw.backends.google_batch.config import GoogleBatchConfig
from cfw.core.prices import JobPrice, quote

CLOUD = "gcp"


def job_price(spec: JobSpec, ctx: EnvContext[GoogleBatchConfig]) -> JobPrice:
    config = ctx.config
    choice = machines.choose(
        threads=spec.threads,
        mem_mb=spec.mem_mb,
        machine_type=spec.machine_type or config.machine_type,
        gpus=spec.gpu,
        gpu_model=(spec.gpu_model or config.gpu_model) if spec.gpu > 0 else None,
    )
    return quote(
        CLOUD,
        ctx.outputs.get("region") or config.region,
        choice.machine_type,
        spot=spec.preemptible,
        gpu_model=choice.gpu_model,
        gpus=choice.gpus,
    )
