"""The TES API through py-tes: service info, CreateTask, ListTasks (tag filter, pages),
GetTask and CancelTask, with cfw's errors; and :func:`connect`, the client a run uses: its
credentials (TES_TOKEN, FUNNEL_SERVER_USER/FUNNEL_SERVER_PASSWORD, or the provisioned
server's, read from AWS) and the certificate it trusts (the provisioned server's own).

py-tes 1.1 has no tag filter in ``list_tasks`` and tries three URL layouts on every call
(``/ga4gh/tes/v1``, ``/v1``, ``/``); here the layout the server answers is found once, at
the start, and every later call is exactly one request. Credentials go in the
Authorization header only (never in a URL, a log or an error message).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from cfw.backends.sdk import require
from cfw.backends.tes.config import TesConfig
from cfw.core.errors import CfwError, UserError, WorkFailed

requests = require("requests", "tes")
tes = require("tes", "tes")
send_request = require("tes.client", "tes").send_request
unmarshal = require("tes.utils", "tes").unmarshal

log = logging.getLogger("cfw.tes")
_LAYOUTS = ("/ga4gh/tes/v1", "/v1", "")
AUTH_HINT = "set TES_TOKEN, or FUNNEL_SERVER_USER and FUNNEL_SERVER_PASSWORD"


class NotFound(CfwError):
    """The server does not know the task (404)."""


class AuthRejected(UserError):
    """The server refused the request's credentials, or wants some (401/403)."""

    def __init__(self, message: str, hint: str | None = None, status: int = 401):
        super().__init__(message, hint)
        self.status = status


@dataclass(frozen=True)
class Auth:
    """How requests authenticate; ``source`` says where the credentials came from."""

    source: str = "none"
    token: str | None = field(default=None, repr=False)
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def sends_credentials(self) -> bool:
        return bool(self.token or self.password)


class _Client(tes.HTTPClient):
    """py-tes's client with a pinned URL layout, certificate verification and call counts."""

    def _request_params(self, data=None, params=None):
        kwargs = super()._request_params(data=data, params=params)
        kwargs["verify"] = getattr(self, "cfw_verify", True)
        return kwargs


def plain_http_to_remote(url: str) -> bool:
    """True when ``url`` is http:// to a host other than this machine."""
    parsed = urlparse(url)
    if parsed.scheme != "http":
        return False
    host = parsed.hostname or ""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


class TesApi:
    def __init__(self, url: str, auth: Auth, verify: bool | str = True, timeout: int = 30):
        self.url = url.rstrip("/")
        for layout in _LAYOUTS[:2]:  # a URL given with its API path: keep only the host part
            if layout and self.url.endswith(layout):
                self.url = self.url[: -len(layout)]
        self.auth = auth
        self.http = _Client(
            url=self.url,
            user=auth.user if auth.password else None,
            password=auth.password,
            token=auth.token,
            timeout=timeout,
        )
        self.http.cfw_verify = verify
        self.base: str | None = None
        self.calls: dict[str, int] = {}

    # -- plumbing -----------------------------------------------------------------------------
    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def _request(
        self,
        name: str,
        paths: list[str],
        method: str = "get",
        *,
        params: dict[str, Any] | None = None,
        data: str | None = None,
        **path_args: str,
    ) -> requests.Response:
        self._count(name)
        kwargs = self.http._request_params(data=data, params=params)
        try:
            return send_request(paths=paths, method=method, kwargs_requests=kwargs, **path_args)
        except requests.HTTPError as exc:
            if exc.response is not None:
                raise self._error(name, exc.response) from None
            # py-tes wraps connection failures in an HTTPError without a response
            raise self._unreachable(str(exc)) from None
        except requests.RequestException as exc:
            raise self._unreachable(repr(exc)) from None

    def _unreachable(self, detail: str) -> WorkFailed:
        if "SSL" in detail or "CERTIFICATE" in detail.upper():
            reason = "its TLS certificate is not the one trusted"
        elif "timed out" in detail.lower() or "Timeout" in detail:
            reason = "timed out"
        else:
            reason = "no connection"
        return WorkFailed(
            f"cannot reach the TES server at {self.url} ({reason})",
            "check the URL, the network and allowed_cidrs",
        )

    def _error(self, name: str, response: requests.Response | None) -> CfwError:
        status = response.status_code if response is not None else 0
        if status in (401, 403):
            what = (
                "rejected the credentials"
                if self.auth.sends_credentials
                else "requires credentials"
            )
            return AuthRejected(
                f"the TES server at {self.url} {what} (HTTP {status}, "
                f"credentials from {self.auth.source})",
                AUTH_HINT,
                status=status,
            )
        if status == 404:
            return NotFound(f"{name}: not found on the TES server (HTTP 404)")
        detail = (response.text or "")[:200].strip() if response is not None else ""
        return WorkFailed(
            f"TES {name} failed with HTTP {status}" + (f": {detail}" if detail else "")
        )

    def _paths(self, suffix: str) -> list[str]:
        if self.base is None:
            self.discover()
        return [f"{self.base}{suffix}"]

    # -- API ----------------------------------------------------------------------------------
    def discover(self) -> dict[str, Any]:
        """GetServiceInfo; pins the URL layout the server answers on (one to three requests)."""
        last: CfwError | None = None
        for layout in _LAYOUTS:
            base = f"{self.url}{layout}"
            try:
                response = self._request("GetServiceInfo", [f"{base}/service-info"])
            except NotFound as exc:
                last = exc
                continue
            self.base = base
            self.http.urls = [base]
            try:
                return response.json()
            except ValueError:
                return {}
        raise UserError(
            f"no TES API found at {self.url} ({last})",
            "give the server's base URL, e.g. https://tes.example.org",
        )

    def create(self, task: dict[str, Any]) -> str:
        model = unmarshal(task, tes.Task)
        ok, problem = model.is_valid()
        if not ok:
            raise WorkFailed(f"the TES task is not valid: {problem}")
        response = self._request("CreateTask", self._paths("/tasks"), "post", data=model.as_json())
        return unmarshal(response.json(), tes.models.CreateTaskResponse).id

    def list_page(
        self,
        *,
        tags: dict[str, str],
        view: str = "MINIMAL",
        page_size: int = 256,
        page_token: str | None = None,
        name_prefix: str | None = None,
    ) -> tuple[list[Any], str | None]:
        params: dict[str, Any] = {"view": view, "page_size": page_size}
        if page_token:
            params["page_token"] = page_token
        if name_prefix:
            params["name_prefix"] = name_prefix
        if tags:
            params["tag_key"] = list(tags)
            params["tag_value"] = list(tags.values())
        response = self._request("ListTasks", self._paths("/tasks"), params=params)
        parsed = unmarshal(response.json(), tes.models.ListTasksResponse)
        return list(parsed.tasks or []), parsed.next_page_token or None

    def get(self, task_id: str, view: str = "MINIMAL") -> Any:
        response = self._request(
            "GetTask", self._paths("/tasks/{task_id}"), params={"view": view}, task_id=task_id
        )
        return unmarshal(response.json(), tes.Task)

    def cancel(self, task_id: str) -> bool:
        """CancelTask; False when the server does not know the task (already gone)."""
        try:
            self._request(
                "CancelTask", self._paths("/tasks/{task_id}:cancel"), "post", task_id=task_id
            )
        except NotFound:
            return False
        return True


# -- the client a run uses ------------------------------------------------------------------
def resolve_auth(config: TesConfig, outputs: Mapping[str, Any], environ: Mapping[str, str]) -> Auth:
    """Bearer TES_TOKEN, else FUNNEL_SERVER_USER/FUNNEL_SERVER_PASSWORD, else the provisioned
    server's credentials (read from Secrets Manager or SSM now), else none."""
    if environ.get("TES_TOKEN"):
        return Auth(source="TES_TOKEN", token=environ["TES_TOKEN"])
    user, password = environ.get("FUNNEL_SERVER_USER"), environ.get("FUNNEL_SERVER_PASSWORD")
    if password:
        if not user:
            raise UserError(
                "FUNNEL_SERVER_PASSWORD is set but FUNNEL_SERVER_USER is not",
                "set both, or neither",
            )
        return Auth(
            source="FUNNEL_SERVER_USER/FUNNEL_SERVER_PASSWORD", user=user, password=password
        )
    names = outputs.get("basic_auth_names") or {}
    if config.provision and names:
        from cfw.backends.tes import cloud

        user = user or outputs.get("basic_auth_user")
        if user not in names:
            raise UserError(
                f"FUNNEL_SERVER_USER={user!r} is not a user of this server",
                f"use one of: {', '.join(names)}",
            )
        store = outputs.get("basic_auth_store", "secretsmanager")
        return Auth(
            source=f"{store} {names[user]}",
            user=user,
            password=cloud.read_password(store, names[user], outputs["region"], environ),
        )
    return Auth()


def server_verify(
    config: TesConfig, outputs: Mapping[str, Any], state_dir: Path, environ: Mapping[str, str]
) -> bool | str:
    """What requests verifies the server's certificate with: the provisioned server's own
    (pinned, from SSM), the configured CA bundle, or the system's CAs."""
    if not config.provision:
        return config.ca_bundle or True
    from cfw.backends.tes import cloud

    pem = cloud.read_certificate(outputs["tls_certificate_parameter"], outputs["region"], environ)
    if pem is None:
        raise UserError(
            "the Funnel server has not published its TLS certificate yet (it is still starting)",
            "wait a minute or two and try again",
        )
    path = state_dir / "tes-server.pem"
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(pem)
    return str(path)


def connect(
    config: TesConfig,
    outputs: Mapping[str, Any],
    state_dir: Path,
    environ: Mapping[str, str] | None = None,
) -> TesApi:
    environ = os.environ if environ is None else environ
    url = outputs["tes_url"]
    auth = resolve_auth(config, outputs, environ)
    api = TesApi(url, auth, verify=server_verify(config, outputs, state_dir, environ))
    if auth.sends_credentials and plain_http_to_remote(url):
        log.warning(
            "cfw: the TES server %s is plain http: credentials (%s) cross the network "
            "unencrypted; use https",
            url,
            auth.source,
        )
    return api


def describe_server(config: TesConfig, outputs: Mapping[str, Any]) -> dict[str, Any]:
    """For `cfw status NAME`: where the server is and whether it answers."""
    details: dict[str, Any] = {
        "tes url": outputs.get("tes_url"),
        "storage": config.storage.prefix or outputs.get("storage_prefix"),
    }
    if outputs.get("basic_auth_names"):
        details["credentials"] = f"{outputs.get('basic_auth_store')}: " + ", ".join(
            outputs["basic_auth_names"].values()
        )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            info = connect(config, outputs, Path(tmp)).discover()
        details["server"] = f"{info.get('name', '?')} {info.get('version', '')}".strip()
    except CfwError as exc:
        details["server"] = f"not answering: {exc}"
    return details
