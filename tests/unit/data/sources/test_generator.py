"""Behaviour of the built-in generator: shape, realism, drift, and the adapters' view of it."""

from __future__ import annotations

import re
from datetime import date

import pandas as pd
import pytest

from itsm_ml.config import DriftKnobs, GeneratorSource, SurgeKnobs
from itsm_ml.data.sources.generator import (
    CHANGE_DATE_FORMAT,
    GENERATED_CHANGE_MAPPING,
    INCIDENT_DATE_FORMAT,
    generate_changes,
    generate_incidents,
    surges,
)
from itsm_ml.data.sources.generic import change_rows_to_canonical
from itsm_ml.data.sources.servicenow import table_frame_to_canonical
from itsm_ml.errors import ConfigError
from itsm_ml.schemas import UNPARSED_PREFIX

ROWS = 2_000
DRIFT_DATE = date(2025, 7, 1)
INCIDENT_TIMES = ("opened_at", "resolved_at", "closed_at")
CHANGE_TIMES = ("opened_at", "planned_start", "planned_end", "closed_at")
# Known once a ticket is resolved (close code and notes), or only on some tickets.
RESOLUTION = ("close_code", "close_notes", "knowledge", "problem_id")
SOLVED = ("Solution provided", "Workaround provided")


def _params(rows: int = ROWS, seed: int = 0, drift: DriftKnobs | None = None) -> GeneratorSource:
    return GeneratorSource(kind="generator", rows=rows, seed=seed, drift=drift or DriftKnobs())


def _times(frame: pd.DataFrame, column: str, fmt: str = INCIDENT_DATE_FORMAT) -> pd.Series:
    return pd.to_datetime(frame[column], format=fmt, errors="coerce")


def _tokens(texts: pd.Series) -> pd.Series:
    return texts.fillna("").str.lower().str.findall(r"[a-z0-9]+")


def _vocabulary(texts: pd.Series) -> set[str]:
    return {token for tokens in _tokens(texts) for token in tokens}


def _total_variation(a: pd.Series, b: pd.Series) -> float:
    share_a, share_b = a.value_counts(normalize=True), b.value_counts(normalize=True)
    return float(share_a.subtract(share_b, fill_value=0).abs().sum() / 2)


def _overlap_share(changes: pd.DataFrame) -> float:
    windows = pd.DataFrame(
        {
            "ci": changes["cmdb_ci"],
            "start": _times(changes, "planned_start", CHANGE_DATE_FORMAT),
            "end": _times(changes, "planned_end", CHANGE_DATE_FORMAT),
        }
    ).sort_values(["ci", "start"])
    earlier_end = windows.groupby("ci")["end"].cummax().groupby(windows["ci"]).shift()
    later_start = windows.groupby("ci")["start"].shift(-1)
    overlaps = (windows["start"] < earlier_end) | (later_start < windows["end"])
    return float(overlaps.mean())


@pytest.fixture(scope="module")
def incidents() -> pd.DataFrame:
    return generate_incidents(_params())


@pytest.fixture(scope="module")
def changes() -> pd.DataFrame:
    return generate_changes(_params())


def test_same_params_give_identical_frames_and_another_seed_differs() -> None:
    for generate in (generate_incidents, generate_changes):
        first, again, other = (
            generate(_params(500)),
            generate(_params(500)),
            generate(_params(500, 1)),
        )
        pd.testing.assert_frame_equal(first, again)
        assert not first.equals(other)
        assert (first["cmdb_ci"] != other["cmdb_ci"]).mean() > 0.5


def test_frames_look_like_csv_read_as_text(incidents: pd.DataFrame, changes: pd.DataFrame) -> None:
    for frame in (incidents, changes):
        assert len(frame) == ROWS
        assert all(isinstance(dtype, pd.StringDtype) for dtype in frame.dtypes)
        # missing cells are NA, never an empty or "nan" string
        assert not frame.isin(["", "nan", "None", "NaT"]).any().any()
        assert frame["number"].is_unique
    assert incidents["number"].iloc[0] == "INC0010001"
    assert changes["number"].iloc[0] == "CHG0030001"
    assert 0.05 < incidents["description"].isna().mean() < 0.4
    assert (
        incidents.drop(columns=["description", *INCIDENT_TIMES[1:], *RESOLUTION])
        .notna()
        .all()
        .all()
    )
    assert changes.notna().all().all()


def test_rows_are_sorted_by_opened_at_and_numbered_in_that_order(
    incidents: pd.DataFrame, changes: pd.DataFrame
) -> None:
    for frame in (incidents, changes):
        assert _times(frame, "opened_at").is_monotonic_increasing
        assert frame["number"].is_monotonic_increasing


def test_every_timestamp_parses_with_the_declared_format(
    incidents: pd.DataFrame, changes: pd.DataFrame
) -> None:
    for frame, columns, fmt in (
        (incidents, INCIDENT_TIMES, INCIDENT_DATE_FORMAT),
        (changes, CHANGE_TIMES, CHANGE_DATE_FORMAT),
    ):
        for column in columns:
            parsed = _times(frame, column, fmt)
            assert (parsed.isna() == frame[column].isna()).all(), column


def test_incident_times_are_ordered_and_open_ones_are_recent(incidents: pd.DataFrame) -> None:
    opened, resolved, closed = (_times(incidents, c) for c in INCIDENT_TIMES)
    params = _params()
    assert opened.min() >= pd.Timestamp(params.start)
    assert opened.max() < pd.Timestamp(params.end)
    assert (resolved.dropna() >= opened[resolved.notna()]).all()
    assert (closed.dropna() >= resolved[closed.notna()]).all()
    in_progress = incidents["state"] == "In Progress"
    assert 0 < in_progress.mean() < 0.05
    assert incidents.loc[in_progress, ["resolved_at", "closed_at"]].isna().all().all()
    assert opened[in_progress].min() > pd.Timestamp(params.end) - pd.Timedelta(days=90)
    assert incidents.loc[incidents["state"] == "Closed", "closed_at"].notna().all()
    assert (incidents["state"] == "Closed").mean() > 0.9


def test_change_windows_follow_opening_and_emergencies_have_short_lead(
    changes: pd.DataFrame,
) -> None:
    opened, start, end, closed = (_times(changes, c, CHANGE_DATE_FORMAT) for c in CHANGE_TIMES)
    assert (start > opened).all()
    assert (end > start).all()
    assert (closed >= end).all()
    lead = (start - opened).groupby(changes["type"]).median()
    assert lead["emergency"] < pd.Timedelta(hours=12) < pd.Timedelta(days=3) < lead["normal"]
    mix = changes["type"].value_counts(normalize=True)
    assert mix["standard"] > mix["normal"] > mix["emergency"] > 0.05
    assert (pd.to_numeric(changes["size"]) > 0).all()


def test_priority_follows_servicenow_impact_urgency_matrix(incidents: pd.DataFrame) -> None:
    matrix = {
        ("1 - High", "1 - High"): "1 - Critical",
        ("1 - High", "2 - Medium"): "2 - High",
        ("1 - High", "3 - Low"): "3 - Moderate",
        ("2 - Medium", "1 - High"): "2 - High",
        ("2 - Medium", "2 - Medium"): "3 - Moderate",
        ("2 - Medium", "3 - Low"): "4 - Low",
        ("3 - Low", "1 - High"): "3 - Moderate",
        ("3 - Low", "2 - Medium"): "4 - Low",
        ("3 - Low", "3 - Low"): "5 - Planning",
    }
    pairs = zip(incidents["impact"], incidents["urgency"], strict=True)
    expected = pd.Series([matrix[pair] for pair in pairs], index=incidents.index)
    assert (incidents["priority"] == expected).all()
    assert incidents["priority"].nunique() == 5


def test_sla_is_a_resolution_time_threshold_per_priority(incidents: pd.DataFrame) -> None:
    resolved = incidents["resolved_at"].notna()
    hours = (_times(incidents, "resolved_at") - _times(incidents, "opened_at")).dt.total_seconds()
    table = pd.DataFrame(
        {"priority": incidents["priority"], "hours": hours, "met": incidents["made_sla"] == "true"}
    )[resolved]
    for _, rows in table.groupby("priority"):
        assert rows.loc[rows["met"], "hours"].max() < rows.loc[~rows["met"], "hours"].min()
    assert 0.5 < table["met"].mean() < 0.95
    median = table.groupby("priority")["hours"].median()
    assert median["1 - Critical"] < median["3 - Moderate"] < median["5 - Planning"]


def test_counts_seasonality_and_callers_are_realistic(incidents: pd.DataFrame) -> None:
    reassigned = incidents["reassignment_count"].astype(int).groupby(incidents["category"]).mean()
    assert reassigned["software"] > 1.5 * reassigned["printing"]
    assert (incidents["reopen_count"] == "0").mean() > 0.9
    opened = _times(incidents, "opened_at")
    assert (opened.dt.dayofweek < 5).mean() > 0.85
    assert opened.dt.hour.between(8, 17).mean() > 0.7
    callers = incidents["caller_id"].value_counts()
    assert callers.iloc[:10].sum() > 0.05 * len(incidents)  # uniform callers would give ~0.3%
    assert incidents["contact_type"].value_counts(normalize=True).iloc[-1] > 0.02
    desk = incidents["contact_type"].isin(["phone", "walk-in"])
    assert (incidents.loc[~desk, "opened_by"] == incidents.loc[~desk, "caller_id"]).all()


def test_catalogue_is_shared_and_of_realistic_size(
    incidents: pd.DataFrame, changes: pd.DataFrame
) -> None:
    assert 10 <= incidents["business_service"].nunique() <= 14
    assert incidents.groupby("business_service")["cmdb_ci"].nunique().between(3, 8).all()
    assert 8 <= incidents["category"].nunique() <= 12
    assert incidents.groupby("category")["subcategory"].nunique().min() >= 3
    assert 12 <= incidents["assignment_group"].nunique() <= 18
    ci_services = set(zip(incidents["business_service"], incidents["cmdb_ci"], strict=True))
    assert set(zip(changes["business_service"], changes["cmdb_ci"], strict=True)) <= ci_services


def test_groups_are_learnable_but_not_trivially_separable(incidents: pd.DataFrame) -> None:
    by_category = pd.crosstab(incidents["category"], incidents["assignment_group"])
    accuracy = by_category.max(axis=1).sum() / len(incidents)
    majority = incidents["assignment_group"].value_counts(normalize=True).iloc[0]
    assert majority < 0.5 < accuracy < 0.92
    # Text alone: each token votes with the groups it was seen with (in-sample, so optimistic)
    tokens = pd.DataFrame(
        {"token": _tokens(incidents["short_description"]), "group": incidents["assignment_group"]}
    ).explode("token")
    votes = tokens.join(pd.crosstab(tokens["token"], tokens["group"]), on="token")
    predicted = votes.drop(columns=["token", "group"]).groupby(level=0).sum().idxmax(axis=1)
    text_accuracy = (predicted == incidents["assignment_group"]).mean()
    assert majority + 0.1 < text_accuracy < 0.9


def test_known_requests_go_to_one_group_and_vague_tickets_stay_unsure(
    incidents: pd.DataFrame,
) -> None:
    short = incidents["short_description"].str.lower()
    groups = incidents["assignment_group"]
    for wording in ("locked out", "voicemail pin", "vpn token", "distribution list"):
        routed = groups[short.str.contains(wording, regex=False)]
        assert len(routed) >= 15, wording
        assert routed.value_counts(normalize=True).iloc[0] > 0.9, wording
    vague = short.str.contains("it doesn't work|please call me back|can someone call me")
    shares = groups[vague].value_counts(normalize=True)
    assert vague.sum() >= 30
    # the desk keeps most, and no group gets them reliably enough to route them unseen
    assert shares.index[0] == "Service Desk" and 0.3 < shares.iloc[0] < 0.75


def test_priority_follows_what_the_desk_hears_at_open(incidents: pd.DataFrame) -> None:
    short, description = incidents["short_description"], incidents["description"].fillna("")
    high_impact = (incidents["impact"] == "1 - High").astype(bool)
    wide = short.str.contains(r"^(?:VIP - )?(?:Outage|Down for everyone):")
    # callers exaggerate: the wording hints at the level, it does not decide it
    assert 3 * high_impact.mean() < high_impact[wide].mean() < 0.9
    low_urgency = (incidents["urgency"] == "3 - Low").astype(bool)
    relaxed = description.str.endswith(("No rush.", "When you have time."))
    pressed = description.str.endswith(("Cannot work at all.", "Deadline today."))
    assert low_urgency[relaxed].mean() > 0.7 > 0.35 > low_urgency[pressed].mean() > 0
    high_urgency = (incidents["urgency"] == "1 - High").astype(bool)
    assert high_urgency[short.str.startswith("VIP - ")].mean() > 2 * high_urgency.mean()
    by_channel = high_urgency.groupby(incidents["contact_type"]).mean()
    assert by_channel["phone"] > by_channel["self-service"]
    # Learnable from these cues alone (in-sample, so optimistic), far from a lookup.
    cues = pd.DataFrame(
        {
            "scope": short.str.extract(r"^(?:VIP - )?([A-Z][a-z ]+): ", expand=False),
            "closing": description.str.extract(r"([A-Z][^.]*\.)$", expand=False),
            "vip": short.str.startswith("VIP - "),
        }
    ).fillna("-")
    mode = incidents.groupby([cues[c] for c in cues])["priority"].transform(
        lambda p: p.value_counts().index[0]
    )
    accuracy = (mode == incidents["priority"]).mean()
    majority = incidents["priority"].value_counts(normalize=True).iloc[0]
    assert majority + 0.05 < accuracy < 0.7


def test_close_notes_are_there_exactly_when_the_ticket_was_resolved(
    incidents: pd.DataFrame,
) -> None:
    resolved = incidents["close_code"].notna()
    assert (incidents["close_notes"].notna() == resolved).all()
    assert 0 < (~resolved).sum() == (incidents["state"] == "In Progress").sum()
    # a note says how its ticket closed: no wording serves two close codes
    assert incidents.groupby("close_notes")["close_code"].nunique().max() == 1


def test_close_codes_follow_the_category(incidents: pd.DataFrame) -> None:
    codes = incidents["close_code"]
    assert set(codes.dropna()) == {
        "Solution provided",
        "Workaround provided",
        "Resolved by caller",
        "Known error",
        "Duplicate",
        "No resolution provided",
        "User error",
    }
    shares = pd.crosstab(incidents["category"], codes, normalize="index")
    # password trouble often clears before anyone acts; hardware waits behind a loaner;
    # software crashes are known errors
    by_caller, workaround = shares["Resolved by caller"], shares["Workaround provided"]
    assert by_caller["access"] > 2 * by_caller["hardware"]
    assert workaround["hardware"] > 3 * workaround["access"]
    assert shares["Known error"]["software"] > 3 * shares["Known error"]["access"]
    assert 0.4 < (codes == "Solution provided").mean() < 0.65  # the most common still


def test_tickets_alike_share_what_fixed_them(incidents: pd.DataFrame) -> None:
    # What a knowledge model needs: the solved tickets of one known request, however worded,
    # share a few fixes of their own.
    short = incidents["short_description"].str.lower()
    solved = incidents["close_code"] == "Solution provided"
    fixes = {
        wording: set(incidents.loc[solved & short.str.contains(rf"\b{wording}\b"), "close_notes"])
        for wording in ("locked out", "voicemail pin", "vpn token", "distribution list")
    }
    for wording, notes in fixes.items():
        assert 1 <= len(notes) <= 3, (wording, notes)
    everything = [note for notes in fixes.values() for note in notes]
    assert len(everything) == len(set(everything))


def test_knowledge_articles_are_cited_on_part_of_the_solved_tickets(
    incidents: pd.DataFrame,
) -> None:
    cited = incidents["knowledge"].notna()
    solved = incidents["close_code"].isin(SOLVED)
    assert not (cited & ~solved).any()
    assert 0.3 < cited[solved].mean() < 0.5
    articles = incidents.loc[cited, "knowledge"]
    assert articles.str.fullmatch(r"KB\d{7}").all()
    # an article per kind of fix, cited again and again
    assert articles.nunique() < 60 and articles.value_counts().iloc[0] >= 10
    locked_out = incidents["short_description"].str.lower().str.contains(r"\blocked out\b")
    assert articles[locked_out & cited].nunique() == 1


def test_recurring_faults_link_their_incidents_to_one_problem() -> None:
    incidents = generate_incidents(_params(12_000))
    linked = incidents[incidents["problem_id"].notna()]
    assert linked["problem_id"].str.fullmatch(r"PRB\d{7}").all()
    problems = linked.groupby("problem_id")
    assert 5 <= problems.ngroups <= 10 and problems.size().min() >= 4
    assert len(linked) < 0.03 * len(incidents)
    # one fault: one CI and subcategory, during a stretch of the year
    assert (problems["cmdb_ci"].nunique() == 1).all()
    assert (problems["subcategory"].nunique() == 1).all()
    opened = _times(linked, "opened_at").groupby(linked["problem_id"])
    assert (opened.max() - opened.min() < pd.Timedelta(days=183)).all()
    # closed as known errors with the problem's workaround, in one of two wordings
    resolved = linked[linked["close_code"].notna()]
    assert (resolved["close_code"] == "Known error").all()
    assert (resolved.groupby("problem_id")["close_notes"].nunique() <= 2).all()


def test_changes_wait_out_the_year_end_freeze_but_emergencies_and_exceptions() -> None:
    params = GeneratorSource(
        kind="generator", rows=6_000, start=date(2024, 7, 1), end=date(2025, 6, 30)
    )
    changes = generate_changes(params)
    start = _times(changes, "planned_start", CHANGE_DATE_FORMAT)
    end = _times(changes, "planned_end", CHANGE_DATE_FORMAT)
    freeze_start, freeze_end = pd.Timestamp("2024-12-19"), pd.Timestamp("2025-01-05")
    inside = (start < freeze_end) & (end > freeze_start)
    per_day = start.dt.floor("D").value_counts()
    autumn = per_day[(per_day.index >= "2024-09-01") & (per_day.index < "2024-12-01")].mean()
    frozen = per_day[(per_day.index >= freeze_start) & (per_day.index < freeze_end)].mean()
    catch_up = per_day[(per_day.index >= freeze_end) & (per_day.index < "2025-01-19")].mean()
    assert frozen < 0.3 * autumn < autumn < catch_up
    kinds = changes["type"][inside]
    assert (kinds == "emergency").mean() > 0.4 > (changes["type"] == "emergency").mean()
    assert (kinds != "emergency").any()  # the CAB's exceptions
    failed = changes["close_code"] != "successful"
    assert failed[inside].mean() > failed[~inside].mean()


def test_change_failures_are_plausible_and_follow_risk_factors() -> None:
    changes = generate_changes(_params(6_000))
    failed = changes["close_code"] != "successful"
    assert 0.08 < failed.mean() < 0.2
    assert set(changes["close_code"]) == {"successful", "successful with issues", "unsuccessful"}
    by_type = failed.groupby(changes["type"]).mean()
    assert by_type["emergency"] > 1.5 * by_type["standard"]
    size = pd.to_numeric(changes["size"])
    assert failed[size >= size.quantile(0.8)].mean() > failed[size <= size.median()].mean()


def test_many_changes_overlap_on_the_same_ci(changes: pd.DataFrame) -> None:
    assert 0.05 < _overlap_share(changes) < 0.7


def test_drift_shifts_categories_and_brings_new_words_and_groups_after_the_date() -> None:
    drift = DriftKnobs(after=DRIFT_DATE, category_shift=0.5, new_vocabulary=0.3, new_groups=3)
    drifted, stationary = (
        generate_incidents(_params(4_000, drift=drift)),
        generate_incidents(_params(4_000)),
    )
    for frame, drifts in ((drifted, True), (stationary, False)):
        after = _times(frame, "opened_at") >= pd.Timestamp(DRIFT_DATE)
        assert 0.3 < after.mean() < 0.7
        tvd = _total_variation(frame["category"][after], frame["category"][~after])
        text = frame["short_description"] + " " + frame["description"].fillna("")
        new_words = _vocabulary(text[after]) - _vocabulary(text[~after])
        new_groups = set(frame["assignment_group"][after]) - set(frame["assignment_group"][~after])
        if drifts:
            assert tvd > 0.1
            assert len(new_words) >= 10
            assert len(new_groups) == 3
            assert frame["assignment_group"][after].isin(new_groups).mean() > 0.05
        else:
            assert tvd < 0.08
            assert new_words == set()
            assert new_groups == set()
    # records opened before the date do not depend on the knobs
    before = _times(stationary, "opened_at") < pd.Timestamp(DRIFT_DATE)
    pd.testing.assert_frame_equal(drifted[before], stationary[before])


def test_changes_see_the_new_groups_only_after_the_date() -> None:
    drift = DriftKnobs(after=DRIFT_DATE, new_groups=2)
    for knobs, expected in ((drift, 2), (DriftKnobs(), 0)):
        changes = generate_changes(_params(4_000, drift=knobs))
        after = _times(changes, "opened_at", CHANGE_DATE_FORMAT) >= pd.Timestamp(DRIFT_DATE)
        groups = changes["assignment_group"]
        assert len(set(groups[after]) - set(groups[~after])) == expected


def test_frames_pass_through_the_project_adapters(
    incidents: pd.DataFrame, changes: pd.DataFrame
) -> None:
    tickets = table_frame_to_canonical(incidents, INCIDENT_DATE_FORMAT)
    canonical_changes = change_rows_to_canonical(changes, GENERATED_CHANGE_MAPPING)
    for frame, id_column in ((tickets, "ticket_id"), (canonical_changes, "change_id")):
        unparsed = [c for c in frame.columns if c.startswith(UNPARSED_PREFIX)]
        assert unparsed
        assert frame[unparsed].isna().all().all(), unparsed
        assert frame[id_column].is_unique
        assert frame[id_column].notna().all()
    assert tickets["label_assignment_group"].notna().all()
    assert tickets["text"].notna().all()
    assert tickets["label_made_sla"].notna().all()
    resolved = tickets["label_closed_code"].notna()
    assert (tickets["label_resolution_notes"].notna() == resolved).all()
    assert tickets["label_knowledge"].notna().any() and tickets["label_problem_id"].notna().any()
    assert canonical_changes["label_failed"].notna().all()
    assert canonical_changes["size"].gt(0).all()
    assert re.fullmatch(r"CHG\d{7}", canonical_changes["change_id"].iloc[-1])


@pytest.mark.parametrize("rows", [1, 3])
def test_tiny_frames_over_a_single_day_are_valid(rows: int) -> None:
    params = GeneratorSource(
        kind="generator", rows=rows, start=date(2025, 1, 1), end=date(2025, 1, 2)
    )
    incidents, changes = generate_incidents(params), generate_changes(params)
    assert len(incidents) == len(changes) == rows
    assert _times(incidents, "opened_at").dt.date.eq(date(2025, 1, 1)).all()
    assert change_rows_to_canonical(changes, GENERATED_CHANGE_MAPPING)["label_failed"].notna().all()


def test_surges_add_bursts_of_one_service_and_leave_ordinary_tickets_alone() -> None:
    knobs = SurgeKnobs(count=4, tickets=15, hours=2.0)
    params = GeneratorSource(kind="generator", rows=ROWS, seed=3, surges=knobs)
    with_surges = generate_incidents(params)
    plain = generate_incidents(_params(seed=3))
    extra = with_surges[with_surges.number.str.startswith("INC9")]
    assert len(with_surges) == ROWS + 4 * 15 and len(extra) == 60
    ordinary = with_surges[~with_surges.number.str.startswith("INC9")].reset_index(drop=True)
    assert ordinary.parent_incident.isna().all()
    pd.testing.assert_frame_equal(ordinary.drop(columns="parent_incident"), plain)
    assert _times(with_surges, "opened_at").is_monotonic_increasing
    where = surges(params)
    assert where == surges(params) and len({s.start for s in where}) == 4
    opened = _times(extra, "opened_at")
    for surge in where:
        inside = extra[(opened >= surge.start) & (opened <= surge.end)]
        assert len(inside) == 15
        assert set(inside.business_service) == {surge.service}
        assert inside.caller_id.nunique() > 5  # many callers, one fault
        assert inside.cmdb_ci.nunique() == 1 and inside.short_description.nunique() == 1
        # One parent incident per surge: the desk's link early warning is judged by.
        assert inside.parent_incident.nunique() == 1
    assert extra.parent_incident.nunique() == 4 and with_surges.parent_incident.notna().sum() == 60


def test_surges_are_refused_on_changes() -> None:
    params = GeneratorSource(kind="generator", rows=ROWS, surges=SurgeKnobs(count=1))
    with pytest.raises(ConfigError, match="surges are bursts of incidents"):
        generate_changes(params)
