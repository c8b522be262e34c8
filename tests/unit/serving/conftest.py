"""A small fitted triage model on generated tickets, tokens of each scope, and a test client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from itsm_ml.catalog import catalog
from itsm_ml.config import GeneratorSource, Params, load_params
from itsm_ml.data.sources import load_table
from itsm_ml.data.split import time_split
from itsm_ml.early_warning.model import DetectorModel
from itsm_ml.knowledge.model import SimilarityModel
from itsm_ml.serving.app import build_service, create_app
from itsm_ml.serving.champions import Champions
from itsm_ml.serving.tokens import STORE_NAME, TokenStore
from itsm_ml.triage.model import TriageModel

ROOT = Path(__file__).parents[3]

# canonical column -> ServiceNow incident field, to send generated tickets as an ITSM would
TO_SERVICENOW = {
    "ticket_id": "number",
    "caller": "caller_id",
    "channel": "contact_type",
    "ci": "cmdb_ci",
    "service": "business_service",
    "symptom": "u_symptom",
    "category": "category",
    "impact": "impact",
    "urgency": "urgency",
    "location": "location",
}


@pytest.fixture(scope="session")
def tickets() -> pd.DataFrame:
    source = GeneratorSource(
        kind="generator", rows=1500, seed=5, start=date(2025, 1, 1), end=date(2025, 4, 1)
    )
    return load_table("tickets", source)


@pytest.fixture(scope="session")
def change_scorer() -> Any:
    from itsm_ml.change_risk.stage import build_scorer, split_features
    from itsm_ml.config import ChangeRiskParams

    source = GeneratorSource(
        kind="generator", rows=3000, seed=4, start=date(2025, 1, 1), end=date(2025, 9, 30)
    )
    changes = load_table("changes", source)
    split = time_split(changes, "opened_at", 0.2, 0.01)
    # The features the default catalog's change model takes, split as training splits them.
    entry = catalog(load_params(ROOT / "params.yaml")).get("change-risk")
    numeric, categorical = split_features(split.train, entry.feature_columns(split.train))
    scorer = build_scorer(ChangeRiskParams(n_jobs=1), numeric, categorical)
    return scorer.fit(split.train, split.valid)


@pytest.fixture(scope="session")
def routing_model(tickets: pd.DataFrame) -> TriageModel:
    split = time_split(tickets, "opened_at", 0.2, 0.2)
    model = TriageModel(categorical=["caller", "channel", "ci", "service"], n_jobs=1)
    label = "label_assignment_group"
    return model.fit(split.train, split.train[label], split.valid, split.valid[label])


@pytest.fixture(scope="session")
def similarity_model(tickets: pd.DataFrame) -> SimilarityModel:
    split = time_split(tickets, "opened_at", 0.2, 0.2)
    # The default catalog's similarity model suggests knowledge articles.
    model = SimilarityModel(
        label="label_knowledge",
        fields=["ci", "service"],
        methods=["bm25", "fusion"],
        returned=["label_resolution_notes", "label_category"],
        runbooks={"service": {"VPN": "RB-VPN"}},
        k=4,
    )
    return model.fit(split.train, split.valid)


SIMILARITY = "itsm-ticket-similarity"
DETECTOR = "itsm-incident-surges"


@pytest.fixture(scope="session")
def detector() -> DetectorModel:
    """The catalog's incident-volume detector, fitted on two services with labelled surges."""
    from tests.unit.early_warning.test_model import SURGES, model, split, tickets_with_surges

    train, valid, _ = split(tickets_with_surges("2025-01-06", 10, SURGES))
    return model().fit(train, valid)


def with_detector(registry: FakeRegistry, model: DetectorModel) -> FakeRegistry:
    """`registry` with a copy of the detector as the champion, v4: each registry starts from
    the registered state, as a freshly loaded version does."""
    registry.versions[(DETECTOR, "4")] = model.fresh()
    registry.aliases[DETECTOR] = "4"
    return registry


def with_similarity(registry: FakeRegistry, model: SimilarityModel) -> FakeRegistry:
    """`registry` with the similarity model as the champion, v2."""
    registry.versions[(SIMILARITY, "2")] = model
    registry.aliases[SIMILARITY] = "2"
    return registry


def incident_records(tickets: pd.DataFrame, n: int) -> list[dict[str, Any]]:
    """Generated tickets as ServiceNow incident bodies (text split back into its two fields)."""
    rows = []
    for _, ticket in tickets.tail(n).iterrows():
        body: dict[str, Any] = {
            field: str(ticket[column])
            for column, field in TO_SERVICENOW.items()
            if column in ticket and pd.notna(ticket[column])
        }
        body["short_description"] = str(ticket["text"])
        body["sys_id"] = f"sys{ticket['ticket_id']}"
        rows.append(body)
    return rows


class FakeRegistry:
    """Aliases and versions held in memory: what Champions reads from MLflow."""

    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}
        self.versions: dict[tuple[str, str], Any] = {}
        self.loads = 0

    def resolve(self, name: str) -> str | None:
        return self.aliases.get(name)

    def load(self, name: str, version: str) -> Any:
        self.loads += 1
        return self.versions[(name, version)]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def params() -> Params:
    return load_params(ROOT / "params.yaml")


def with_serving(params: Params, **changes: Any) -> Params:
    return params.model_copy(update={"serving": params.serving.model_copy(update=changes)})


@pytest.fixture
def tokens(project: Path) -> dict[str, str]:
    """A plain token per scope set: tickets, changes, models, admin."""
    store = TokenStore(project / STORE_NAME)
    made = {}
    for name, scopes in {
        "tickets": ["score:tickets"],
        "changes": ["score:changes"],
        "models": ["models:read"],
        "admin": ["admin"],
    }.items():
        made[name] = store.create(name, scopes)[1]
    return made


@pytest.fixture
def registry_with_routing(routing_model: TriageModel, change_scorer: Any) -> FakeRegistry:
    """Champions: itsm-routing v1 and itsm-change-risk v3 (category and priority have none)."""
    fake = FakeRegistry()
    fake.versions[("itsm-routing", "1")] = routing_model
    fake.aliases["itsm-routing"] = "1"
    fake.versions[("itsm-change-risk", "3")] = change_scorer
    fake.aliases["itsm-change-risk"] = "3"
    return fake


ClientFactory = Callable[..., TestClient]


@pytest.fixture
def make_client(
    project: Path, params: Params, registry_with_routing: FakeRegistry
) -> Iterator[ClientFactory]:
    opened: list[TestClient] = []

    def make(
        params_: Params | None = None, registry: FakeRegistry | None = None, **kwargs: Any
    ) -> TestClient:
        fake = registry or registry_with_routing
        used = params_ or params
        # Every model the catalog declares, watched in the fake registry; but a recurrence
        # model, which groups a history (itsm-ml problems) and is not served.
        names = [e.registered_model for e in catalog(used) if e.family != "problems"]
        champions = Champions(names, resolve=fake.resolve, load=fake.load)
        champions.refresh()
        service = build_service(used, project, champions=champions, **kwargs)
        client = TestClient(create_app(service, poll=False))
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
