"""The managed identity endpoint App Service (and so Azure Functions) gives an app with an
identity: IDENTITY_ENDPOINT and IDENTITY_HEADER in its environment, and a GET of the
endpoint with `resource` and the header answered with a bearer token for that resource.

No emulator of Entra ID runs here. The tokens are JWT-shaped (header.payload.signature,
unsigned) with the claims a service checks before anything else: `aud` (the resource the
token is for), `iss`, `oid` (who the caller is), `nbf` and `exp`. Azurite in
`--oauth basic` mode checks exactly those; the fake Batch service checks `aud`. A request
without the header, or with another one, is refused as App Service refuses it.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

TENANT = "00000000-0000-0000-0000-00000000aaaa"
API_VERSION = "2019-08-01"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(resource: str, object_id: str, lifetime: int = 3600) -> str:
    now = int(time.time())
    claims = {
        "aud": resource,
        "iss": f"https://sts.windows.net/{TENANT}/",
        "oid": object_id,
        "tid": TENANT,
        "iat": now - 60,
        "nbf": now - 60,
        "exp": now + lifetime,
    }
    header = {"alg": "RS256", "typ": "JWT"}
    return ".".join(
        [_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode()), _b64(b"unsigned")]
    )


def claims_of(token: str) -> dict:
    """The claims of a token minted here (or any JWT): its middle part."""
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


class IdentityEndpoint:
    """The app's identity endpoint on http://127.0.0.1 (App Service's is plain HTTP on the
    app's own host too), with its header secret and the resources it issued tokens for."""

    def __init__(self) -> None:
        self.header = uuid.uuid4().hex
        self.object_id = str(uuid.uuid4())  # the system-assigned identity's principal
        self.issued: Counter[str] = Counter()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if self.headers.get("X-IDENTITY-HEADER") != endpoint.header:
                    return self._answer(401, {"error": "invalid X-IDENTITY-HEADER"})
                if query.get("api-version") != API_VERSION or not query.get("resource"):
                    return self._answer(400, {"error": "api-version and resource are required"})
                resource = query["resource"]
                endpoint.issued[resource] += 1
                expires = int(time.time()) + 3600
                token = mint(resource, endpoint.object_id)
                body = {
                    "access_token": token,
                    "expires_on": str(expires),
                    "resource": resource,
                    "token_type": "Bearer",
                    "client_id": str(uuid.uuid5(uuid.NAMESPACE_URL, endpoint.object_id)),
                }
                return self._answer(200, body)

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/msi/token"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def environ(self) -> dict[str, str]:
        """What App Service sets in the app's environment."""
        return {"IDENTITY_ENDPOINT": self.url, "IDENTITY_HEADER": self.header}

    def __enter__(self) -> IdentityEndpoint:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
