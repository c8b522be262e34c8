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
