from __future__ import annotations

from pathlib import Path

from itsm_ml.schemas import SCHEMAS, is_label

README = (Path(__file__).parents[2] / "README.md").read_text()


def test_readme_documents_every_canonical_column_with_its_dtype() -> None:
    for spec in SCHEMAS.values():
        for column in spec.columns:
            assert f"| `{column.name}` | {column.dtype} |" in README, column.name


def test_labels_and_features_never_share_a_name() -> None:
    for spec in SCHEMAS.values():
        names = [c.name for c in spec.columns]
        assert len(names) == len(set(names))
        assert spec.id_column in names and spec.time_column in names
        assert not is_label(spec.id_column) and not is_label(spec.time_column)
