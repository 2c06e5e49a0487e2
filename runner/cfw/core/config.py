"""Typed environment configs: the base every kind extends, loading, and one-line errors.

An environment's config is ``environments/<name>.yaml``. It is validated before anything
runs; a mistake is reported as one line naming the field, the bad value and what is
allowed.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from cfw.core import guard as guard_rules
from cfw.core.checks import shorten
from cfw.core.errors import UserError

NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
LABEL_KEY_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE_RE = re.compile(r"^[a-z0-9_-]{0,63}$")
_DURATION_RE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return timedelta(seconds=value)
    match = _DURATION_RE.match(str(value).strip().lower())
    if not match:
        raise ValueError("expected a duration such as 30m, 8h, 2d or 1w")
    amount, unit = match.groups()
    if int(amount) == 0:
        raise ValueError("a duration must be longer than zero")
    return timedelta(**{_UNITS[unit]: int(amount)})


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]


IDLE_OFF = "off"


def parse_idle(value: Any) -> timedelta | str:
    """A duration, or `off` (YAML reads a bare `off` as false)."""
    if value is False or str(value).strip().lower() == IDLE_OFF:
        return IDLE_OFF
    try:
        return parse_duration(value)
    except ValueError:
        raise ValueError("expected a duration such as 30m or 2h, or off") from None


IdleDuration = Annotated[
    timedelta | Literal["off"],
    BeforeValidator(parse_idle),
    PlainSerializer(lambda v: v if v == IDLE_OFF else format_duration(v), return_type=str),
]

_MINUTE = timedelta(minutes=1)


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class StateConfig(Model):
    """Where Terraform keeps the environment's state (remote for shared environments)."""

    backend: Literal["local", "s3", "gcs", "azurerm"] = Field(
        "local", description="Terraform backend type"
    )
    bucket: str | None = Field(None, description="s3/gcs: the state bucket")
    key: str | None = Field(None, description="s3: object key of the state file")
    prefix: str | None = Field(None, description="gcs: object prefix")
    region: str | None = Field(None, description="s3: the bucket's region")
    use_lockfile: bool = Field(True, description="s3: lock with a lock object in the bucket")
    dynamodb_table: str | None = Field(None, description="s3: lock table (legacy locking)")
    resource_group_name: str | None = None
    storage_account_name: str | None = None
    container_name: str | None = None

    @model_validator(mode="after")
    def _required_per_backend(self) -> StateConfig:
        need = {
            "local": [],
            "s3": ["bucket", "key"],
            "gcs": ["bucket"],
            "azurerm": ["resource_group_name", "storage_account_name", "container_name"],
        }[self.backend]
        missing = [name for name in need if not getattr(self, name)]
        if missing:
            raise ValueError(
                f"backend {self.backend!r} needs {', '.join(missing)} (set state.{missing[0]})"
            )
        return self

    @property
    def shared(self) -> bool:
        return self.backend != "local"

    def backend_config(self) -> dict[str, Any]:
        """The values handed to `terraform init -backend-config`."""
        fields = {
            "local": [],
            "s3": ["bucket", "key", "region", "use_lockfile", "dynamodb_table"],
            "gcs": ["bucket", "prefix"],
            "azurerm": ["resource_group_name", "storage_account_name", "container_name"],
        }[self.backend]
        values = {name: getattr(self, name) for name in fields}
        if self.backend == "azurerm":
            values["key"] = "cfw.tfstate"
        return {k: v for k, v in values.items() if v is not None}


class TerraformSettings(Model):
    binary: str = Field("terraform", description="the terraform executable")
    plugin_mirror: Path | None = Field(
        None, description="a provider filesystem mirror (air-gapped installs, tests)"
    )


class GuardConfig(Model):
    """The guard `cfw up` deploys with a cloud kind: with no runner alive, it cancels the
    jobs of runs whose heartbeat stopped, stops what bills while idle, and enforces ttl.

    Bounds: interval 1m to 1h in whole minutes (cloud schedulers count minutes);
    orphan_after at least 5m (five missed heartbeats) and at least twice interval (a run is
    judged on two checks at least, and the worst case, orphan_after plus one interval, stays
    within 1.5 orphan_after); idle_after at least interval, or off."""

    enabled: bool = Field(True, description="false: no guard (nothing in the cloud enforces ttl)")
    interval: Duration = Field(timedelta(minutes=5), description="how often the guard checks")
    orphan_after: Duration = Field(
        timedelta(minutes=15), description="cancel a run's jobs when its heartbeat is this old"
    )
    idle_after: IdleDuration = Field(
        timedelta(minutes=30),
        description="stop what bills after this long with no run and no job (off: never)",
    )

    @model_validator(mode="before")
    @classmethod
    def _switch(cls, data: Any) -> Any:
        """`guard: off` (false) and `guard: on` (true) are short for enabled."""
        return {"enabled": data} if isinstance(data, bool) else data

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: timedelta) -> timedelta:
        if not _MINUTE <= value <= timedelta(hours=1) or value % _MINUTE:
            raise ValueError("expected whole minutes from 1m to 1h")
        return value

    @field_validator("orphan_after")
    @classmethod
    def _orphan_after(cls, value: timedelta, info: ValidationInfo) -> timedelta:
        interval = info.data.get("interval") or _MINUTE
        floor = max(5 * _MINUTE, 2 * interval)
        if value < floor:
            raise ValueError(
                f"expected at least {format_duration(floor)}: twice guard.interval "
                f"({format_duration(interval)}), and 5m"
            )
        return value

    @field_validator("idle_after")
    @classmethod
    def _idle_after(cls, value: timedelta | str, info: ValidationInfo) -> timedelta | str:
        interval = info.data.get("interval") or _MINUTE
        if value != IDLE_OFF and value < interval:
            raise ValueError(
                f"expected at least guard.interval ({format_duration(interval)}), or off"
            )
        return value

    @property
    def idle_timeout(self) -> timedelta | None:
        return None if self.idle_after == IDLE_OFF else self.idle_after

    def settings(self, expires_at: datetime | None = None) -> guard_rules.Settings:
        """What cfw.core.guard.decide takes; expires_at from the cfw-expires-at label
        (guard_rules.parse_expires_at) or the environment's record."""
        return guard_rules.Settings(
            enabled=self.enabled,
            interval=self.interval,
            orphan_after=self.orphan_after,
            idle_after=self.idle_timeout,
            expires_at=expires_at,
        )


class SpotConfig(Model):
    """What cfw does when a preemptible job's machine is reclaimed: resubmit it on spot
    up to ``retries`` times (Snakemake's --preemptible-retries wins), then, with
    ``fallback: on-demand``, once on on-demand capacity where the environment has some
    that fits; ``fail``: the job fails, naming its preemptions. Snakemake sees one job."""

    retries: int = Field(
        3, ge=0, le=20, description="resubmissions on spot after a preemption (0: none)"
    )
    fallback: Literal["on-demand", "fail"] = Field(
        "on-demand", description="after the last spot preemption: once on demand, or fail"
    )


class EnvConfig(Model):
    """Settings every kind shares."""

    kind: str
    name: str | None = Field(None, description="defaults to the config file's name")
    ttl: Duration | None = Field(
        None, description="after this long the guard stops what bills and `cfw reap` destroys"
    )
    teardown: Literal["manual", "after-run"] = Field(
        "manual", description="after-run: `cfw run` tears the environment down when done"
    )
    image: str | None = Field(None, description="container image jobs run in")
    labels: dict[str, str] = Field(default_factory=dict, description="extra labels/tags")
    jobs: int | None = Field(None, ge=1, le=100000, description="parallel jobs for `cfw run`")
    state: StateConfig = Field(default_factory=StateConfig)
    terraform: TerraformSettings = Field(default_factory=TerraformSettings)
    guard: GuardConfig = Field(default_factory=GuardConfig)
    budget_usd: float | None = Field(
        None,
        gt=0,
        description="stop a run when its estimated job cost passes this many US dollars: "
        "no new job is submitted (`cfw run --budget` overrides it)",
    )
    spot: SpotConfig = Field(default_factory=SpotConfig)
    pending_timeout: Duration = Field(
        timedelta(minutes=30),
        description="fail a job that has waited this long for capacity while none of the "
        "run's jobs runs (the service's reason says why)",
    )
    budget_action: Literal["finish", "cancel"] = Field(
        "finish",
        description="when the budget is passed: let running jobs finish, or cancel them",
    )

    @model_validator(mode="before")
    @classmethod
    def _old_names(cls, data: Any) -> Any:
        """`unschedulable_timeout` (gke, kubernetes) is the old name of pending_timeout."""
        if isinstance(data, dict) and "unschedulable_timeout" in data:
            data = dict(data)
            old = data.pop("unschedulable_timeout")
            data.setdefault("pending_timeout", old)
        return data

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not NAME_RE.match(value):
            raise ValueError(
                "expected 1-20 characters: lowercase letters, digits and '-', "
                "starting with a letter"
            )
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        for key, label in value.items():
            if not LABEL_KEY_RE.match(key):
                raise ValueError(
                    f"label key {shorten(key)}: expected lowercase letters, digits, '_' or '-', "
                    "starting with a letter (at most 63)"
                )
            if not LABEL_VALUE_RE.match(str(label)):
                raise ValueError(
                    f"label {key}={shorten(label)}: expected lowercase letters, digits, '_' "
                    "or '-' (at most 63)"
                )
            if key.startswith("cfw-"):
                raise ValueError(f"label key {key!r}: the cfw- prefix is reserved for cfw")
        return value


# -- loading ------------------------------------------------------------------------------


def read_yaml(path: Path, shown: str | None = None) -> dict[str, Any]:
    shown = shown or str(path)
    try:
        raw = path.read_bytes()
        if b"\0" in raw:
            raise UserError(
                f"{shown} is not a text file (it holds binary data)",
                "write the environment's settings as YAML text, one `key: value` per line",
            )
        data = yaml.safe_load(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{shown} is not UTF-8 text (byte {exc.start} is not)",
            "write the environment's settings as YAML text, one `key: value` per line",
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise UserError(f"{shown}:{where}: {problem}", "fix the YAML syntax") from exc
    except OSError as exc:
        raise UserError(f"cannot read {shown}: {exc.strerror}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(
            f"{shown}: expected a mapping of settings, got {type(data).__name__}",
            "write one `key: value` per line, starting with kind:",
        )
    return data


def validate(model: type[EnvConfig], data: dict[str, Any], source: str) -> EnvConfig:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise UserError(describe_validation_error(exc, model, source)) from exc


def describe_validation_error(exc: ValidationError, model: type[BaseModel], source: str) -> str:
    errors = _merge_unions(exc.errors(include_url=False))
    first = _describe_one(errors[0], model)
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return f"{source}: {first}" + (more if len(errors) > 1 else "")


# pydantic names the member of a union (`literal['auto']`, `bool`, `int`) in an error's loc
_UNION_MEMBER = re.compile(r"^(bool|int|float|str|none|[a-z_-]+\[.*\])$")
_EXPECTS = {
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "int_parsing": "a whole number",
    "int_type": "a whole number",
    "float_parsing": "a number",
    "float_type": "a number",
    "string_type": "text",
}


def _merge_unions(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One error per field: a union's members (`auto` or a boolean) are one field."""
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for error in errors:
        loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and _UNION_MEMBER.match(p)))
        expected = _expected(error)
        if loc in merged:
            first = merged[loc]
            if expected and first.get("_expects") is not None:
                first["_expects"].append(expected)
            continue
        merged[loc] = {**error, "loc": loc, "_expects": [expected] if expected else None}
    out = []
    for error in merged.values():
        expects = error.pop("_expects")
        if expects and len(expects) > 1:
            error = {**error, "type": "union_error", "_expected": " or ".join(expects)}
        out.append(error)
    return out


def _expected(error: dict[str, Any]) -> str | None:
    if error["type"] == "literal_error":
        return error.get("ctx", {}).get("expected")
    return _EXPECTS.get(error["type"])


def _describe_one(error: dict[str, Any], model: type[BaseModel]) -> str:
    loc = error["loc"]
    field = _loc_to_str(loc) or "(top level)"
    kind = error["type"]
    value = error.get("input")
    shown = shorten(value)
    if kind == "extra_forbidden":
        parent = _model_at(model, loc[:-1])
        allowed = ", ".join(sorted(parent.model_fields)) if parent else "see the docs"
        return f"unknown field {shorten(field)}; allowed fields here: {allowed}"
    if kind == "missing":
        return f"field {field!r} is required but missing"
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return f"field {field!r}: {shown} is not allowed; expected {expected}"
    if kind == "union_error":
        return f"field {field!r}: {shown} is not allowed; expected {error['_expected']}"
    message = error["msg"].removeprefix("Value error, ")
    if isinstance(value, dict | list):
        return f"field {field!r}: {message}"
    return f"field {field!r}: {shown} is not valid: {message}"


def _loc_to_str(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(part)
        if field is None:
            return None
        current = _inner_model(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def set_dotted(data: dict[str, Any], assignment: str) -> None:
    """Apply a `--set a.b=value` override (the value is parsed as YAML)."""
    if "=" not in assignment:
        raise UserError(
            f"--set {shorten(assignment)}: expected KEY=VALUE",
            "for example --set region=europe-west4",
        )
    key, raw = assignment.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise UserError(
            f"--set {shorten(assignment)}: the key is empty", "for example --set ttl=8h"
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    target = data
    for part in parts[:-1]:
        node = target.setdefault(part, {})
        if not isinstance(node, dict):
            raise UserError(f"--set {shorten(assignment)}: {part!r} is not a section")
        target = node
    target[parts[-1]] = value
