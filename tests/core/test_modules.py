"""Every Terraform module in modules/ has the standard structure, checked the same way.

Files: main.tf, variables.tf, outputs.tf, versions.tf and a README.md whose one example
call a user can copy. `terraform fmt -check`; every file parses (Terraform's parser and
python-hcl2, checkov's); every variable has `type`, then `description`, and collections are
`nullable = false`; every output is described; every `var.`, `local.` and resource
reference resolves and every variable is used; one resource is named `this`; versions are
pinned with an upper bound; checkov passes, each skip inline with its reason and naming a
check that applies. What one module must create is tests/<kind>/test_module.py's.

The providers of most modules cannot be downloaded here, so `terraform validate` of a
module is not among these checks (the rendered roots validate where they can).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from cfw.backends.registry import get_kind, kind_names
from cfw.core.rootmodule import module_names
from support.checkov import module_report, unreasoned
from support.hcl import blocks, load, load_module, loads, resources, unq

MODULES_DIR = Path(__file__).resolve().parents[2] / "modules"
MODULES = sorted(p.name for p in MODULES_DIR.iterdir() if p.is_dir())
FILES = ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md")
COLLECTION = re.compile(r"\$\{(list|map|set)\(")
# a reference to a resource or data source: <provider>_<type>.<name>
RESOURCE_REF = re.compile(
    r"\b((?:data\.)?(?:aws|azurerm|google|terraform|random|time|null|archive)_[a-z0-9_]+"
    r"\.[a-z0-9_]+)\b"
)
UPPER_BOUNDED = re.compile(r"^(~> \d+\.\d+|>= \d+(\.\d+)*, < \d+(\.\d+)*)$")
SKIP_COMMENT = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(:?)(.*)")


@pytest.fixture(params=MODULES)
def name(request) -> str:
    return request.param


def module_dir(name: str) -> Path:
    return MODULES_DIR / name


def text_of(name: str) -> str:
    return "\n".join(p.read_text() for p in sorted(module_dir(name).glob("*.tf")))


def code_of(name: str) -> str:
    """The module's .tf text without comments (a reference in a comment is not one)."""
    return re.sub(r"#.*", "", text_of(name))


def test_every_kind_module_is_here():
    assert MODULES
    for kind in kind_names():
        for module in module_names(get_kind(kind).root):
            assert module in MODULES, f"{kind} composes {module}, which is not in modules/"


def test_standard_files(name):
    missing = [f for f in FILES if not (module_dir(name) / f).is_file()]
    assert not missing, f"{name} lacks {missing}"


def test_formatted_and_every_file_parses(name):
    directory = module_dir(name)
    proc = subprocess.run(
        ["terraform", "fmt", "-check", "-diff", "-recursive", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    files = sorted(directory.glob("*.tf"))
    assert len(files) >= 4
    for path in files:
        # fmt parses the whole file: a syntax error fails it
        parsed = subprocess.run(
            ["terraform", "fmt", "-write=false", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert parsed.returncode == 0, f"{path.name}: {parsed.stderr}"
        assert load(path), f"{path.name} parsed to nothing"


def test_variables_typed_then_described(name):
    variables = blocks(load_module(module_dir(name)), "variable")
    assert variables
    for var, body in variables.items():
        keys = [k for k in body if k != "__is_block__"]
        assert keys[:2] == ["type", "description"], f"variable {var}: type, then description"
        assert unq(body["description"]).strip(), f"variable {var}: an empty description"
        if COLLECTION.match(str(body["type"])):
            assert body.get("nullable") is False, f"collection {var}: nullable = false"


def test_outputs_described(name):
    outputs = blocks(load_module(module_dir(name)), "output")
    assert outputs
    for output, body in outputs.items():
        assert unq(body.get("description") or "").strip(), f"output {output}: no description"


def test_references_resolve_and_every_variable_is_used(name):
    module = load_module(module_dir(name))
    variables = set(blocks(module, "variable"))
    declared = set(resources(module, (("resource", ""), ("data", "data."), ("ephemeral", ""))))
    locals_ = {k for block in module.get("locals", []) for k in block}
    code = code_of(name)
    used_vars = set(re.findall(r"\bvar\.([a-z0-9_]+)", code))
    assert used_vars <= variables, f"undeclared variables: {used_vars - variables}"
    assert variables <= used_vars, f"unused variables: {variables - used_vars}"
    used_locals = set(re.findall(r"\blocal\.([a-z0-9_]+)", code))
    assert used_locals <= locals_, f"undeclared locals: {used_locals - locals_}"
    used_resources = set(RESOURCE_REF.findall(code))
    assert used_resources <= declared, f"undeclared resources: {used_resources - declared}"
    # the one main resource of a module is named `this`
    assert any(address.endswith(".this") for address in declared), f"{name}: no `this`"


def test_versions_pinned_with_an_upper_bound(name):
    [terraform] = load(module_dir(name) / "versions.tf")["terraform"]
    assert re.fullmatch(r">= 1\.\d+, < 2\.0", unq(terraform["required_version"]))
    for block in terraform.get("required_providers", []):
        for provider, spec in block.items():
            if provider == "__is_block__":
                continue
            assert unq(spec["source"]) == f"hashicorp/{provider}", provider
            assert UPPER_BOUNDED.match(unq(spec["version"])), f"{provider}: {spec['version']}"


def test_readme_shows_one_example_call(name):
    readme = (module_dir(name) / "README.md").read_text()
    examples = re.findall(r"```hcl\n(.*?)```", readme, re.S)
    assert readme.count("```hcl") == 1 and len(examples) == 1, "one ```hcl example"
    [example] = examples
    parsed = subprocess.run(
        ["terraform", "fmt", "-"], input=example, capture_output=True, text=True, check=False
    )
    assert parsed.returncode == 0, f"the README's example does not parse: {parsed.stderr}"
    [call] = blocks(loads(example), "module").values()
    assert unq(call["source"]) == f"./modules/{name}"
    passed = {k for k in call if k not in ("source", "__is_block__")}
    declared = blocks(load_module(module_dir(name)), "variable")
    required = {var for var, body in declared.items() if "default" not in body}
    assert passed <= set(declared), f"the example passes unknown {passed - set(declared)}"
    assert required <= passed, f"the example lacks required {required - passed}"


def test_checkov_clean_with_inline_reasoned_skips(name):
    directory = module_dir(name)
    report = module_report(directory)
    assert report["summary"]["parsing_errors"] == 0
    # no failed check; every skip inline in its resource, with a reason of > 25 characters
    assert unreasoned(report, directory, min_reason=26) == []
    skips = SKIP_COMMENT.findall(text_of(name))
    for check, colon, reason in skips:
        assert colon and len(reason.strip()) > 20, f"{check} is skipped without a reason"
    applied = {c["check_id"] for c in report["results"]["skipped_checks"]}
    stale = {s[0] for s in skips} - applied
    assert not stale, f"skip comments name checks that do not apply: {stale}"
