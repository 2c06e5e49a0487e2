"""Price tests read only the tables shipped with cfw, whatever ~/.cache holds."""

from __future__ import annotations

import pytest

from cfw.core import prices


@pytest.fixture
def shipped_tables(tmp_path, monkeypatch):
    monkeypatch.setenv("CFW_PRICES_DIR", str(tmp_path / "no-refreshed-tables"))
    monkeypatch.delenv("CFW_PRICE_OVERRIDE", raising=False)
    prices.reload()
    yield
    prices.reload()
