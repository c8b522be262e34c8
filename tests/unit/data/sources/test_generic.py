from __future__ import annotations

import pandas as pd

from itsm_ml.config import ChangeCsvSource, TicketCsvSource
from itsm_ml.data.sources.generic import change_rows_to_canonical, ticket_rows_to_canonical


def test_tickets_without_ids_get_row_ids_and_labels_get_their_prefix() -> None:
    rows = pd.DataFrame(
        {"title": ["a", "b"], "group": ["g1", "g2"], "prio": ["1", "2"], "who": ["x", "y"]},
        dtype="string",
    )
    source = TicketCsvSource(
        kind="ticket_csv",
        path="t.csv",
        text=("title",),
        features={"caller": "who", "team_size": "prio"},
        labels={"assignment_group": "group", "label_priority": "prio"},
    )
    frame = ticket_rows_to_canonical(rows, source)
    assert frame.ticket_id.tolist() == ["row-000001", "row-000002"]
    assert frame.label_assignment_group.tolist() == ["g1", "g2"]
    assert frame.label_priority.tolist() == ["1", "2"]  # already prefixed: not doubled
    assert frame.team_size.tolist() == ["1", "2"]  # an unknown feature is kept as text
    assert frame.opened_at.isna().all() and str(frame.opened_at.dtype) == "datetime64[ns]"


def test_changes_parse_unix_time_numbers_and_outcomes() -> None:
    rows = pd.DataFrame(
        {
            "id": ["c1", "c2", "c3"],
            "t": ["1420046511", "1420144596", "x"],
            "la": ["2", "n/a", "5"],
            "bug": ["1", "0", "2"],
        },
        dtype="string",
    )
    source = ChangeCsvSource(
        kind="change_csv",
        path="c.csv",
        id="id",
        opened_at="t",
        time_format="unix",
        numeric={"la": "la"},
        outcome="bug",
    )
    frame = change_rows_to_canonical(rows, source)
    assert frame.opened_at.iloc[0] == pd.Timestamp("2014-12-31 17:21:51")
    assert frame.label_failed.iloc[:2].tolist() == [True, False]
    assert frame._unparsed_opened_at.iloc[2] == "x"
    assert frame._unparsed_la.iloc[1] == "n/a"
    assert frame._unparsed_label_failed.iloc[2] == "2"
