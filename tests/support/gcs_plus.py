"""The GCS emulator (gcp-storage-emulator) plus the paging of objects.list that it lacks.

GCS answers objects.list with at most ``maxResults`` items (1000 at most) in name order and
a ``nextPageToken`` when more follow; the emulator returns every object at once, so a client
that forgot to follow the page tokens would pass against it. Here a listing is cut into
pages as GCS cuts it: sorted by name, the token opaque (the last name returned, encoded),
the next page starting after it; with a delimiter, the prefixes come with the first page.

Run it like the emulator: ``python tests/support/gcs_plus.py start -H 127.0.0.1 --port P -M``.
"""

from __future__ import annotations

import base64
import json
import sys

from gcp_storage_emulator.handlers import objects

MAX_RESULTS = 1000
_ls = objects.ls


def ls(request, response, storage, *args, **kwargs):
    _ls(request, response, storage, *args, **kwargs)
    if response.status.value != 200:
        return
    body = json.loads(response._content)
    items = sorted(body.get("items") or [], key=lambda item: item["name"])
    size = _int(request.query.get("maxResults"), MAX_RESULTS)
    token = (request.query.get("pageToken") or [""])[0]
    if token:
        after = base64.urlsafe_b64decode(token.encode()).decode()
        items = [item for item in items if item["name"] > after]
        body["prefixes"] = []  # given with the first page
    size = min(max(size, 1), MAX_RESULTS)
    body["items"] = items[:size]
    if len(items) > size:
        body["nextPageToken"] = base64.urlsafe_b64encode(items[size - 1]["name"].encode()).decode()
    response.json(body)


def _int(values, default: int) -> int:
    try:
        return int(values[0]) if values else default
    except ValueError:
        return default


objects.ls = ls  # before the server module builds its routes from it

if __name__ == "__main__":
    from gcp_storage_emulator.__main__ import main

    sys.exit(main())
