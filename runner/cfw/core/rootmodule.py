"""What an environment's root module holds, derived from one list: the kind's Terraform
values (terraform.tfvars.json) and the interface of the modules it composes.

``modules/*/variables.tf`` stays the one typed, validated interface. The root module only
passes values through: each of its variables is a key of the tfvars (or a ``TF_VAR_*`` the
kind names), declared without a type and described as the module describes it; each module
argument is the root variable of the same name unless the kind renames it; the root's
outputs are the modules' outputs, as the modules describe them. Provider constraints come
from one table, and the root's ``required_version`` is the strictest of its modules'.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cache

from cfw.core.assets import modules_dir

# every provider a module uses, in one style: lower and upper bound
PROVIDERS: dict[str, dict[str, str]] = {
    "aws": {"source": "hashicorp/aws", "version": ">= 5.90, < 6.0"},
    "google": {"source": "hashicorp/google", "version": ">= 6.0, < 7.0"},
    "azurerm": {"source": "hashicorp/azurerm", "version": ">= 4.0, < 5.0"},
    "kubernetes": {"source": "hashicorp/kubernetes", "version": ">= 2.30, < 3.0"},
}
TERRAFORM_VERSION = ">= 1.5, < 2.0"
# variables every root module declares itself (templates/root/_common.j2), typed
IDENTITY_VARIABLES = ("name", "env_id", "labels")

_BLOCK = re.compile(r'^(variable|output) "([^"]+)" \{\n(.*?)^\}', re.M | re.S)
_DESCRIPTION = re.compile(r'^  description\s*=\s*(".*")\s*$', re.M)
_SENSITIVE = re.compile(r"^  sensitive\s*=\s*true\s*$", re.M)
_DEFAULT_NULL = re.compile(r"^  default\s*=\s*null\s*$", re.M)
_REQUIRED_VERSION = re.compile(r'^\s*required_version\s*=\s*"([^"]+)"', re.M)
_PROVIDER = re.compile(
    r'^\s*(\w+)\s*=\s*\{\s*\n\s*source\s*=\s*"([^"]+)"\s*\n\s*version\s*=\s*"([^"]+)"', re.M
)


@dataclass(frozen=True)
class Variable:
    name: str
    description: str
    sensitive: bool = False
    nullable_default: bool = False  # the module's default is null: the root's may be too


@dataclass(frozen=True)
class Output:
    name: str
    description: str
    value: str
    sensitive: bool = False


@dataclass(frozen=True)
class ModuleInterface:
    variables: dict[str, Variable]
    outputs: dict[str, Output]
    required_version: str | None
    providers: dict[str, tuple[str, str]]  # name -> (source, version constraint)


@dataclass(frozen=True)
class ModuleCall:
    """One module the root composes: ``module "BLOCK" { source = "./modules/SOURCE" }``."""

    source: str
    block: str
    # module variable -> the HCL expression it gets, where that is not var.<same name>
    renames: Mapping[str, str] = field(default_factory=dict)
    outputs: bool = True  # pass its outputs through as the root's


@dataclass(frozen=True)
class RootSpec:
    """What a kind declares about its root module; the rest comes from tfvars and modules."""

    modules: tuple[ModuleCall, ...] = ()
    providers: tuple[str, ...] = ()
    # root variables no module takes by that name (provider settings): their descriptions
    variables: Mapping[str, str] = field(default_factory=dict)
    # root variables that may come as TF_VAR_* (secrets) instead of tfvars
    env_inputs: tuple[str, ...] = ()
    # outputs beyond the modules': name -> (description, value expression)
    outputs: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    def with_module(self, call: ModuleCall, variables: Mapping[str, str]) -> RootSpec:
        """This root with one more module (a guard) and the root variables it takes."""
        return replace(
            self, modules=(*self.modules, call), variables={**self.variables, **variables}
        )


@dataclass(frozen=True)
class ModuleBlock:
    block: str
    source: str
    args: tuple[tuple[str, str], ...]  # (argument, expression), in the module's order


@dataclass(frozen=True)
class RootPlan:
    """What templates/root/_common.j2 renders."""

    required_version: str
    providers: dict[str, dict[str, str]]
    variables: tuple[Variable, ...]
    modules: tuple[ModuleBlock, ...]
    outputs: tuple[Output, ...]


def _parse_blocks(text: str, kind: str) -> dict[str, str]:
    return {name: body for what, name, body in _BLOCK.findall(text) if what == kind}


def _description(body: str, where: str) -> str:
    match = _DESCRIPTION.search(body)
    if not match:
        raise RuntimeError(f"{where} has no description")
    return json.loads(match.group(1))


@cache
def module_interface(name: str) -> ModuleInterface:
    """The variables, outputs and version constraints of ``modules/NAME`` (canonical HCL, as
    `terraform fmt` writes it)."""
    root = modules_dir() / name
    if not root.is_dir():
        raise RuntimeError(f"module {name} is missing from cfw's modules")
    variables, outputs = {}, {}
    for path in sorted(root.glob("*.tf")):
        text = path.read_text()
        for var, body in _parse_blocks(text, "variable").items():
            variables[var] = Variable(
                var,
                _description(body, f"modules/{name}: variable {var}"),
                sensitive=bool(_SENSITIVE.search(body)),
                nullable_default=bool(_DEFAULT_NULL.search(body)),
            )
        for out, body in _parse_blocks(text, "output").items():
            outputs[out] = Output(
                out,
                _description(body, f"modules/{name}: output {out}"),
                value="",
                sensitive=bool(_SENSITIVE.search(body)),
            )
    versions = (root / "versions.tf").read_text() if (root / "versions.tf").exists() else ""
    required = _REQUIRED_VERSION.search(versions)
    providers = {p: (src, ver) for p, src, ver in _PROVIDER.findall(versions)}
    return ModuleInterface(variables, outputs, required.group(1) if required else None, providers)


def lower_bound(constraint: str) -> tuple[int, ...]:
    """The version a ``>= X`` constraint starts at (0 when it has none)."""
    match = re.search(r">=\s*([\d.]+)", constraint)
    return tuple(int(p) for p in match.group(1).split(".")) if match else (0,)


def strictest(constraints: Iterable[str]) -> str:
    return max(constraints, key=lower_bound)


def plan_root(spec: RootSpec, inputs: Iterable[str]) -> RootPlan:
    """The root module of SPEC, given the names of the values cfw passes (the tfvars keys).

    Raises RuntimeError for a kind whose declaration does not add up (a value no module
    takes and the kind does not describe, say): a bug in cfw, caught by the golden tests."""
    interfaces = {call.source: module_interface(call.source) for call in spec.modules}
    names = [n for n in dict.fromkeys([*inputs, *spec.env_inputs]) if n not in IDENTITY_VARIABLES]
    variables = []
    for name in sorted(names):
        declared = next(
            (i.variables[name] for i in interfaces.values() if name in i.variables), None
        )
        if name in spec.variables:
            variables.append(Variable(name, spec.variables[name]))
        elif declared is not None:
            optional = name in spec.env_inputs and declared.nullable_default
            variables.append(Variable(name, declared.description, declared.sensitive, optional))
        else:
            renamed = [
                (call, arg)
                for call in spec.modules
                for arg, expr in call.renames.items()
                if expr == f"var.{name}"
            ]
            if not renamed:
                raise RuntimeError(
                    f"root variable {name!r} is not described and no module takes it"
                )
            call, arg = renamed[0]
            declared = interfaces[call.source].variables[arg]
            variables.append(Variable(name, declared.description, declared.sensitive))
    available = {*names, *IDENTITY_VARIABLES}
    blocks, outputs = [], []
    for call in spec.modules:
        interface = interfaces[call.source]
        args = []
        for arg in interface.variables:
            if arg in call.renames:
                args.append((arg, call.renames[arg]))
            elif arg in available:
                args.append((arg, f"var.{arg}"))
        unknown = set(call.renames) - set(interface.variables)
        if unknown:
            raise RuntimeError(f"module {call.source} has no variable {sorted(unknown)[0]!r}")
        blocks.append(ModuleBlock(call.block, call.source, tuple(args)))
        if call.outputs:
            outputs += [
                Output(o.name, o.description, f"module.{call.block}.{o.name}", o.sensitive)
                for o in interface.outputs.values()
            ]
    outputs += [Output(n, d, v) for n, (d, v) in spec.outputs.items()]
    seen: set[str] = set()
    for output in outputs:
        if output.name in seen:
            raise RuntimeError(f"two outputs of the root module are named {output.name!r}")
        seen.add(output.name)
    required = strictest(
        [
            TERRAFORM_VERSION,
            *(i.required_version for i in interfaces.values() if i.required_version),
        ]
    )
    return RootPlan(
        required_version=required,
        providers={p: PROVIDERS[p] for p in spec.providers},
        variables=tuple(variables),
        modules=tuple(blocks),
        outputs=tuple(outputs),
    )


def module_names(spec: RootSpec) -> list[str]:
    return [call.source for call in spec.modules]
