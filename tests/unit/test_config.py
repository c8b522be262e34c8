from __future__ import annotations

import re
import shutil
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pytest
import yaml
from dvc.utils.hydra import apply_overrides

from itsm_ml.config import (
    GeneratorSource,
    Params,
    TicketCsvSource,
    load_params,
    parse_params,
    resolve_path,
)
from itsm_ml.errors import ConfigError

ROOT = Path(__file__).parents[2]


def test_project_params_are_valid() -> None:
    params = load_params(ROOT / "params.yaml")
    assert isinstance(params.tickets.source, GeneratorSource)
    assert params.tickets.validation.max_quarantine_share == 0.01


def test_kind_selects_the_source_model() -> None:
    params = parse_params(
        {
            "tickets": {
                "source": {
                    "kind": "ticket_csv",
                    "path": "x.csv",
                    "text": ["a"],
                    "labels": {"group": "g"},
                }
            },
            "changes": {"source": {"kind": "generator"}},
        }
    )
    assert isinstance(params.tickets.source, TicketCsvSource)


def test_errors_name_the_key_and_the_problem() -> None:
    with pytest.raises(ConfigError, match=r"tickets\.source\.generator\.rowz: Extra inputs"):
        parse_params(
            {
                "tickets": {"source": {"kind": "generator", "rowz": 5}},
                "changes": {"source": {"kind": "generator"}},
            }
        )
    with pytest.raises(ConfigError, match="lower_snake_case"):
        parse_params(
            {
                "tickets": {
                    "source": {"kind": "ticket_csv", "path": "x", "labels": {"Group": "g"}}
                },
                "changes": {"source": {"kind": "generator"}},
            }
        )


def test_split_shares_must_leave_training_data() -> None:
    with pytest.raises(ConfigError, match="at least 10% for training"):
        parse_params(
            {
                "tickets": {"source": {"kind": "generator"}},
                "changes": {"source": {"kind": "generator"}},
                "split": {"valid_share": 0.5, "test_share": 0.45},
            }
        )


def test_dataset_paths_need_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ITSM_ML_DATASETS", raising=False)
    with pytest.raises(ConfigError, match="ITSM_ML_DATASETS, which is not set"):
        resolve_path("$ITSM_ML_DATASETS/a.csv")
    monkeypatch.setenv("ITSM_ML_DATASETS", "/data")
    assert resolve_path("$ITSM_ML_DATASETS/a.csv") == Path("/data/a.csv")
    assert resolve_path("rel/a.csv", Path("/root")) == Path("/root/rel/a.csv")


def test_missing_params_file_says_where(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "params.yaml")


@pytest.mark.parametrize(
    ("change_risk", "message"),
    [
        ({"bands": {"high": {"recall": 0.5, "precision": 0.5}}}, "exactly one of `recall`"),
        ({"bands": {"low": {"recall": 0.5}}}, "'low' is the band below all others"),
        ({"bands": {}}, "at least one band"),
        (
            {
                "conflicts": {
                    "blackout_windows": [{"name": "x", "start": "2025-12-20", "end": "2025-12-01"}]
                }
            },
            "blackout 'x': end 2025-12-01 00:00:00 is not after start",
        ),
        (
            {"conflicts": {"business_hours": {"start": "18:00", "end": "08:00"}}},
            "must be after start",
        ),
        ({"conflicts": {"business_hours": {"days": ["Monday"]}}}, r"days\.0"),
    ],
)
def test_change_risk_settings_are_checked(change_risk: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_params(
            {
                "tickets": {"source": {"kind": "generator"}},
                "changes": {"source": {"kind": "generator"}},
                "change_risk": change_risk,
            }
        )


def test_project_change_risk_params_read_as_intended() -> None:
    settings = load_params(ROOT / "params.yaml").change_risk
    assert settings.history.delay_days == 30
    assert [(name, band.recall) for name, band in settings.bands.items()] == [
        ("very high", 0.25),
        ("high", 0.5),
        ("medium", 0.8),
    ]
    assert settings.conflicts.business_hours.weekdays == (0, 1, 2, 3, 4)


# `dvc exp run -S key=value` rewrites params.yaml: DVC's queue calls
# dvc.utils.hydra.apply_overrides, which loads the file with ruamel's round-trip loader
# (parse_yaml_for_update), sets the key through OmegaConf and dumps everything with ruamel
# (YAML 1.2). PyYAML (YAML 1.1) then reads the unquoted 18:00 as 1080, yes as True, ... The
# tests below call that same function, so they follow whatever the installed DVC does.


def dvc_set(path: Path, key: str, value: str) -> None:
    """What `dvc exp run -S key=value` does to the params file before it runs anything."""
    apply_overrides(path, [f"{key}={value}"])


def with_value(raw: dict[str, Any], key: str, value: object) -> dict[str, Any]:
    *parents, last = key.split(".")
    node = raw
    for part in parents:
        node = node[part]
    node[last] = value
    return raw


@pytest.mark.parametrize(
    ("key", "text", "value"),
    [
        ("triage.target_precision", "0.8", 0.8),
        ("drift.persistence", "3", 3),
        ("split.seed", "7", 7),
        ("models.routing.owner", "it-operations", "it-operations"),
    ],
)
def test_project_params_survive_dvc_exp_run_set(
    tmp_path: Path, key: str, text: str, value: object
) -> None:
    original = ROOT / "params.yaml"
    rewritten = shutil.copy(original, tmp_path / "params.yaml")
    dvc_set(rewritten, key, text)
    expected = parse_params(with_value(yaml.safe_load(original.read_text()), key, value))
    assert load_params(rewritten) == expected


REWRITE_HAZARDS = """
tickets:
  source: {kind: generator, start: "2025-01-01", end: 2025-12-31, drift: {after: "2025-10-01"}}
changes:
  source: {kind: generator, start: 2025-01-01 00:00:00, end: "2025-12-31", drift: {after: null}}
split:
  seed: 0
change_risk:
  conflicts:
    business_hours: {days: [Mon, Tue, Wed, Thu, Fri], start: "08:00", end: "18:30"}
    blackout_windows:
      - {name: year-end freeze, start: "2025-12-19", end: 2026-01-05}
      - {name: release night, start: "2025-06-13 20:00", end: 2025-06-14 06:00:00}
      - {name: audit, start: "2025-03-03T08:00:00", end: "2025-03-04"}
"""


def test_dates_and_times_survive_dvc_exp_run_set(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(REWRITE_HAZARDS)
    dvc_set(path, "split.seed", "1")
    hours = yaml.safe_load(path.read_text())["change_risk"]["conflicts"]["business_hours"]
    assert (hours["start"], hours["end"]) == ("08:00", 1110)  # the hazard is real: 18:30 = 1110
    expected = parse_params(with_value(yaml.safe_load(REWRITE_HAZARDS), "split.seed", 1))
    assert load_params(path) == expected
    conflicts = expected.change_risk.conflicts
    assert (conflicts.business_hours.start, conflicts.business_hours.end) == (time(8), time(18, 30))
    assert [(w.start, w.end) for w in conflicts.blackout_windows] == [
        (datetime(2025, 12, 19), datetime(2026, 1, 5)),
        (datetime(2025, 6, 13, 20), datetime(2025, 6, 14, 6)),
        (datetime(2025, 3, 3, 8), datetime(2025, 3, 4)),
    ]
    assert isinstance(expected.changes.source, GeneratorSource)
    assert expected.changes.source.start == date(2025, 1, 1)


def parse_change_risk(change_risk: dict[str, Any]) -> Params:
    return parse_params(
        {
            "tickets": {"source": {"kind": "generator"}},
            "changes": {"source": {"kind": "generator"}},
            "change_risk": change_risk,
        }
    )


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("18:00", time(18)),
        (1080, time(18)),  # 18:00 unquoted, YAML 1.1 base 60: minutes
        (480, time(8)),  # 8:00 unquoted (08:00 unquoted stays the string "08:00")
        ("8:00", time(8)),
        (" 17:30 ", time(17, 30)),
        ("18:00:00", time(18)),
        (64800, time(18)),  # 18:00:00 unquoted: seconds
        (time(18), time(18)),
    ],
)
def test_business_hours_read_what_yaml_makes_of_a_time(given: object, expected: time) -> None:
    hours = parse_change_risk({"conflicts": {"business_hours": {"start": "00:00", "end": given}}})
    assert hours.change_risk.conflicts.business_hours.end == expected


TIME = 'expected a time of day such as "18:00", got '
LOCAL_TIME = 'expected a time of day without a time zone, such as "18:00", got '


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (8, TIME + "8"),  # not base 60 (H:MM with H >= 1 is 60 or more): a bare number
        (1500, TIME + "1500"),
        ("25:00", TIME + "'25:00'"),
        ("6pm", TIME + "'6pm'"),
        (True, TIME + "True"),
        (18.0, TIME + "18.0"),
        ("18:00+02:00", LOCAL_TIME + "'18:00+02:00'"),
        ("18:00Z", LOCAL_TIME + "'18:00Z'"),
        (time(18, tzinfo=UTC), LOCAL_TIME + "'18:00:00+00:00'"),
    ],
)
def test_business_hours_refuse_other_values_naming_the_key(given: object, message: str) -> None:
    key = "change_risk.conflicts.business_hours.end"
    with pytest.raises(ConfigError, match=re.escape(f"{key}: {message}") + "$"):
        parse_change_risk({"conflicts": {"business_hours": {"end": given}}})


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2025-12-19", datetime(2025, 12, 19)),
        (date(2025, 12, 19), datetime(2025, 12, 19)),
        (datetime(2025, 12, 19, 8), datetime(2025, 12, 19, 8)),
        ("2025-12-19 08:00", datetime(2025, 12, 19, 8)),
        ("2025-12-19T08:00:00", datetime(2025, 12, 19, 8)),
    ],
)
def test_blackout_windows_read_dates_and_naive_datetimes(given: object, expected: datetime) -> None:
    window = {"name": "x", "start": given, "end": "2026-01-01"}
    params = parse_change_risk({"conflicts": {"blackout_windows": [window]}})
    assert params.change_risk.conflicts.blackout_windows[0].start == expected


DATETIME = 'expected a date or date and time such as "2025-12-19" or "2025-12-19 08:00", got '
LOCAL_DATETIME = (
    'expected a date or date and time without a time zone, such as "2025-12-19 08:00", got '
)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (20251219, DATETIME + "20251219"),  # pydantic alone: a Unix timestamp in 1970
        ("19/12/2025", DATETIME + "'19/12/2025'"),
        ("2025-12-19T08:00Z", LOCAL_DATETIME + "'2025-12-19 08:00:00+00:00'"),
        (datetime(2025, 12, 19, tzinfo=UTC), LOCAL_DATETIME + "'2025-12-19 00:00:00+00:00'"),
    ],
)
def test_blackout_windows_refuse_other_values_naming_the_key(given: object, message: str) -> None:
    window = {"name": "x", "start": given, "end": "2026-01-01"}
    key = "change_risk.conflicts.blackout_windows.0.start"
    with pytest.raises(ConfigError, match=re.escape(f"{key}: {message}") + "$"):
        parse_change_risk({"conflicts": {"blackout_windows": [window]}})


def parse_generator(source: dict[str, Any]) -> Params:
    return parse_params(
        {
            "tickets": {"source": {"kind": "generator", **source}},
            "changes": {"source": {"kind": "generator"}},
        }
    )


def test_generator_dates_accept_a_datetime_at_midnight() -> None:
    source = parse_generator(
        {"start": datetime(2025, 2, 1), "end": "2025-11-30", "drift": {"after": "2025-10-01"}}
    ).tickets.source
    assert isinstance(source, GeneratorSource)
    assert (source.start, source.end, source.drift.after) == (
        date(2025, 2, 1),
        date(2025, 11, 30),
        date(2025, 10, 1),
    )


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            {"start": datetime(2025, 2, 1, 8)},
            r'tickets\.source\.generator\.start: expected a date such as "2025-01-01" \(a whole'
            r" day, no time\), got '2025-02-01 08:00:00'",
        ),
        ({"end": 1767139200}, r"tickets\.source\.generator\.end: expected a date .*got 1767139200"),
        ({"drift": {"after": "Oct 2025"}}, r"generator\.drift\.after: expected a date"),
    ],
)
def test_generator_dates_refuse_other_values_naming_the_key(
    source: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_generator(source)


PICKLE_PARAMS = """
import hashlib, pickle
from pathlib import Path
from itsm_ml.config import load_params
params = load_params(Path("params.yaml"))
print(hashlib.md5(pickle.dumps(params)).hexdigest())
"""


def test_params_pickle_to_the_same_bytes_in_any_process_and_back() -> None:
    # Models and drift profiles carry their params; DVC hashes their bytes into dvc.lock.
    import pickle

    from tests.hashing import pickled_md5_per_hash_seed

    assert len(pickled_md5_per_hash_seed(PICKLE_PARAMS)) == 1
    params = load_params(Path("params.yaml"))
    again = pickle.loads(pickle.dumps(params))
    assert again == params
    assert again.model_fields_set == params.model_fields_set
