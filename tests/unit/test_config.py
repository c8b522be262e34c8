from __future__ import annotations

from pathlib import Path

import pytest

from itsm_ml.config import GeneratorSource, TicketCsvSource, load_params, parse_params, resolve_path
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
        ({"categorical": ["label_failed"]}, "known only at close"),
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
