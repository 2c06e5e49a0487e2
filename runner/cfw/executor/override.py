"""Flat prices of your own instead of the kinds' (negotiated rates), or a test's fake price
table, on any kind, local included: ``CFW_PRICE_OVERRIDE`` names a JSON file::

    {"as_of": "2025-01-01", "usd_per_hour": 1.5, "spot_usd_per_hour": 0.5,
     "rules": {"align": {"usd_per_hour": 3.0}}, "fixed_usd_per_hour": 0.1}

Every job pays ``usd_per_hour`` (``spot_usd_per_hour`` when preemptible), per rule where
``rules`` says so, for its whole machine; the environment costs ``fixed_usd_per_hour``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cfw.backends.base import JobSpec
from cfw.core.errors import UserError
from cfw.core.prices import ON_DEMAND, SPOT, JobPrice, Price

OVERRIDE_VAR = "CFW_PRICE_OVERRIDE"


@dataclass(frozen=True)
class PriceOverride:
    """Flat prices from a file: every job at ``usd_per_hour`` (``spot_usd_per_hour`` when
    preemptible), per rule where ``rules`` says, and a fixed cost per hour."""

    usd_per_hour: float
    spot_usd_per_hour: float
    rules: Mapping[str, Mapping[str, float]]
    fixed_usd_per_hour: float
    as_of: str
    machine: str
    source: str

    @classmethod
    def load(cls, path: Path) -> PriceOverride:
        where = f"{OVERRIDE_VAR}={path}"
        try:
            data = json.loads(Path(path).read_text())
            if not isinstance(data, dict):
                raise ValueError("expected a JSON object")
            usd = float(data.get("usd_per_hour", 0.0))
            rules = {
                str(rule): {k: float(v) for k, v in dict(values).items()}
                for rule, values in dict(data.get("rules") or {}).items()
            }
            return cls(
                usd_per_hour=usd,
                spot_usd_per_hour=float(data.get("spot_usd_per_hour", usd)),
                rules=rules,
                fixed_usd_per_hour=float(data.get("fixed_usd_per_hour", 0.0)),
                as_of=str(data.get("as_of") or "unknown"),
                machine=str(data.get("machine") or "override"),
                source=str(path),
            )
        except (OSError, ValueError, TypeError) as exc:
            raise UserError(
                f"{where}: cannot read the price override: {exc}",
                'write JSON such as {"as_of": "2025-01-01", "usd_per_hour": 1.0}, '
                f"or unset {OVERRIDE_VAR}",
            ) from None

    def price(self, spec: JobSpec) -> JobPrice:
        rule = self.rules.get(spec.rule, {})
        on_demand = rule.get("usd_per_hour", self.usd_per_hour)
        spot = rule.get("spot_usd_per_hour", on_demand if spec.rule in self.rules else None)
        spot = self.spot_usd_per_hour if spot is None else spot

        def price(usd: float, capacity: str) -> Price:
            return Price(usd, self.machine, "override", capacity, self.as_of, self.source)

        if spec.preemptible:
            return JobPrice(
                self.machine, SPOT, 1.0, price(spot, SPOT), price(on_demand, ON_DEMAND), None,
                self.as_of,
            )  # fmt: skip
        return JobPrice(
            self.machine, ON_DEMAND, 1.0, price(on_demand, ON_DEMAND), None, None, self.as_of
        )


def override(environ: Mapping[str, str] | None = None) -> PriceOverride | None:
    path = (os.environ if environ is None else environ).get(OVERRIDE_VAR)
    return PriceOverride.load(Path(path)) if path else None
