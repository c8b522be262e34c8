"""The SQL text the PostgreSQL index builds from tickets (the engine itself is tested in
tests/integration/test_postgres_index.py against a real server)."""

import pytest

from itsm_ml.errors import ConfigError
from itsm_ml.knowledge.postgres import PostgresIndex, any_of, lexemes


def test_lexemes_keep_each_words_positions_and_queries_match_any_distinct_word() -> None:
    assert lexemes(["vpn", "drops", "vpn"]) == "'vpn':1,3 'drops':2"
    assert any_of(["vpn", "drops", "vpn", "again"], limit=2) == "'vpn' | 'drops'"
    assert any_of([], limit=5) == ""


def test_a_table_name_that_is_not_an_identifier_is_refused_before_connecting() -> None:
    import pandas as pd

    with pytest.raises(ConfigError, match="table 'tickets; drop'"):
        PostgresIndex(table="tickets; drop").fit(pd.DataFrame({"text": ["vpn"]}))
