"""The TES API through py-tes: service info, CreateTask, ListTasks (tag filter, pages),
GetTask and CancelTask, with cfw's errors.

py-tes 1.1 has no tag filter in ``list_tasks`` and tries three URL layouts on every call
(``/ga4gh/tes/v1``, ``/v1``, ``/``); here the layout the server answers is found once, at
the start, and every later call is exactly one request. Credentials go in the
Authorization header only (never in a URL, a log or an error message).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from cfw.core.errors import CfwError, UserError, WorkFailed, missing_sdk

try:
    import requests
    import tes
    from tes.client import send_request
    from tes.utils import unmarshal
except ModuleNotFoundError as exc:  # pragma: no cover - the kind's extra is missing
    raise missing_sdk("py-tes" if exc.name in (None, "tes") else exc.name, "tes") from exc

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
