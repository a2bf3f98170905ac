"""examples/custom_store.py, a store written from scratch over a JSON file, passes the contract kit."""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from jianyi_flow.storage.base import BatchingStore, HistoryScanner, MetadataStore, OutboxBacklog, Store
from jianyi_flow.testing import OFFICE_ACTOR, StoreContract, create, make_suggestion

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "custom_store.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("jianyi_flow_example_custom_store", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


example = _load()


class TestJsonFileStore(StoreContract):
    capabilities = (HistoryScanner, MetadataStore, OutboxBacklog)  # no batch(): its tests are skipped
    directory: Path

    @pytest.fixture(autouse=True)
    def _directory(self, tmp_path: Path) -> None:
        self.directory = tmp_path

    def make_store(self) -> Any:
        return example.JsonFileStore(self.directory / "store.json", durable=False)


def test_the_example_claims_what_it_implements(tmp_path: Path) -> None:
    store = example.JsonFileStore(tmp_path / "store.json", durable=False)
    for capability in (Store, HistoryScanner, MetadataStore, OutboxBacklog):
        assert isinstance(store, capability), capability
    assert not isinstance(store, BatchingStore)


def test_the_file_is_the_store(tmp_path: Path) -> None:
    """A second store opened on the same file sees everything the first committed."""
    first = example.JsonFileStore(tmp_path / "store.json", durable=False)
    change = create(make_suggestion("file-1", lead_unit="u1"), key="k1", notify=["office"])
    stored = first.commit(change)
    first.set_meta("campaign", "jy2024")
    second = example.JsonFileStore(tmp_path / "store.json")
    assert second.load("file-1") == change.suggestion
    assert second.history("file-1") == [stored] and stored.seq == 1 and second.last_seq() == 1
    assert second.idempotency(OFFICE_ACTOR.key, "k1") == change.idempotency
    assert second.get_meta("campaign") == "jy2024"
    assert [m.recipient for m in second.claim(5, change.event.at, dt.timedelta(minutes=1))] == ["office"]


def test_the_demo_runs(capsys: pytest.CaptureFixture[str]) -> None:
    example.demo()
    out = capsys.readouterr().out
    assert "transferred, lead u_traffic" in out
    assert "receive (seq 1), register (seq 2), transfer (seq 3)" in out
    assert "verified: True" in out
