"""The index of past tickets in PostgreSQL with pgvector, for a desk whose history one
process should not hold.

Same interface as `TicketIndex` (`fit`, then `search` returning `Neighbours`: positions in
the fitted tickets, best first), and the same fusion: a lexical and a dense signal, each
standardised by its mean and spread over a fixed random sample of the index, summed, with
the boost fields added; a query never sees itself, a later ticket, or a ticket whose filter
fields disagree. The engine computes both signals: PostgreSQL's text rank (length-normalised)
over our own word tokens (in place of BM25, which it lacks) and the inner product of the static
embeddings (pgvector, HNSW index). One round trip per query returns each signal's best
candidates and the sample, already scored.

The connection string is read from the environment variable `dsn_env` names, so neither
params.yaml nor the pickled model holds a password.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from itsm_ml.errors import ConfigError, ItsmMlError
from itsm_ml.knowledge.embedding import StaticEmbedder
from itsm_ml.knowledge.lexical import words
from itsm_ml.knowledge.retrieval import Neighbours, standardised_by, top_k, views

TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,49}$")  # + "_" + 12 digits: PostgreSQL's 63
MAX_POSITION = 16383  # the largest position a tsvector stores
# Words of a query that propose lexical candidates: its rarest. An OR of every word matches
# half the index (ranking them all cost 100 ms at 20,000 tickets and grows with the index);
# the rare words find the tickets that share what is specific, and every candidate is then
# ranked on all the query's words. `make bench` ("Speed") measures the latency this gives.
PROPOSING_WORDS = 3


def lexemes(tokens: Sequence[str]) -> str:
    """A tsvector literal of word tokens with their positions (tokens are `\\w` only, so
    quoting them is enough): `'vpn':1,4 'drops':2`."""
    positions: dict[str, list[int]] = {}
    for at, token in enumerate(tokens[:MAX_POSITION], start=1):
        positions.setdefault(token, []).append(at)
    return " ".join(f"'{t}':{','.join(map(str, p))}" for t, p in positions.items())


def any_of(tokens: Sequence[str], limit: int) -> str:
    """A tsquery matching any of the first `limit` distinct tokens; '' when there are none."""
    return " | ".join(f"'{t}'" for t in list(dict.fromkeys(tokens))[:limit])


class PostgresIndex(BaseEstimator):  # type: ignore[misc]
    def __init__(
        self,
        dsn_env: str = "ITSM_ML_KNOWLEDGE_DSN",
        table: str = "itsm_ml_tickets",
        versioned: bool = False,
        text_column: str = "text",
        time_column: str | None = "opened_at",
        boost: Mapping[str, float] | None = None,
        filter: Sequence[str] = (),
        candidates: int = 200,
        sample: int = 512,
        max_query_terms: int = 64,
        max_tokens: int = 512,
        seed: int = 0,
    ) -> None:
        self.dsn_env = dsn_env
        self.table = table
        self.versioned = versioned
        self.text_column = text_column
        self.time_column = time_column
        self.boost = boost
        self.filter = filter
        self.candidates = candidates
        self.sample = sample
        self.max_query_terms = max_query_terms
        self.max_tokens = max_tokens
        self.seed = seed

    # ----------------------------------------------------------------- connection

    def _connect(self) -> Any:
        connection = self.__dict__.get("_connection")
        if connection is not None and not connection.closed:
            return connection
        dsn = os.environ.get(self.dsn_env)
        if not dsn:
            raise ConfigError(
                f"the knowledge index lives in PostgreSQL, but {self.dsn_env} is not set: export"
                " it as a connection string (postgresql://user:password@host:5432/db)"
            )
        import psycopg
        from pgvector.psycopg import register_vector

        try:
            connection = psycopg.connect(dsn, autocommit=True)
            connection.execute("CREATE EXTENSION IF NOT EXISTS vector")
            register_vector(connection)
            # HNSW returns at most ef_search rows, and fewer once the filter drops some;
            # iterative scans keep reading the graph until the LIMIT is met.
            connection.execute(f"SET hnsw.ef_search = {max(40, int(self.candidates))}")
            connection.execute("SET hnsw.iterative_scan = relaxed_order")
        except psycopg.Error as exc:
            raise ItsmMlError(
                f"cannot use the PostgreSQL of {self.dsn_env} for the knowledge index:"
                f" {type(exc).__name__}: {str(exc).strip()} (pgvector must be installed there)"
            ) from exc
        self.__dict__["_connection"] = connection
        return connection

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        state.pop("_connection", None)  # a live connection does not travel with the model
        return state

    def _group_columns(self) -> list[str]:
        return list(dict.fromkeys([*(self.boost or {}), *self.filter]))

    # ----------------------------------------------------------------- fit

    def fit(self, tickets: pd.DataFrame) -> PostgresIndex:
        """(Re)create the table of these tickets, their vectors, lexemes and grouping
        values, with an HNSW index on the vectors and a GIN index on the lexemes.

        `versioned`: the table's name ends with a digest of the tickets, so a model
        retrained on other tickets writes a table of its own and never rewrites the one the
        serving champion reads (old tables stay until someone drops them)."""
        if not TABLE_NAME.match(self.table):
            raise ConfigError(f"table {self.table!r}: expected lower-case letters, digits and _")
        text = views(tickets, self.text_column)["text"]
        self.table_ = f"{self.table}_{_digest(tickets, text)}" if self.versioned else self.table
        self.has_text_ = any(t.strip() for t in text)
        self.fields_: list[str] = []  # field values are not a signal of this engine
        self.embedder_ = StaticEmbedder(self.max_tokens).fit(text)
        vectors = self.embedder_.transform(text)
        tokens = [words(t)[: self.max_tokens] for t in text]
        self.frequencies_ = Counter(w for document in tokens for w in set(document))
        times = (
            pd.to_datetime(tickets[self.time_column]).dt.tz_localize(None).to_numpy()
            if self.time_column and self.time_column in tickets
            else np.full(len(tickets), np.datetime64("NaT"), dtype="datetime64[ns]")
        )
        self.groups_ = [c for c in self._group_columns() if c in tickets]
        group_values = {
            c: tickets[c].astype("string").to_numpy(dtype=object, na_value=None)
            for c in self.groups_
        }
        connection = self._connect()
        rng = np.random.default_rng(self.seed)
        self.sample_ = np.sort(rng.choice(len(tickets), min(self.sample, len(tickets)), False))
        self.size_ = len(tickets)
        exists = connection.execute("SELECT to_regclass(%s)", (self.table_,)).fetchone()[0]
        if self.versioned and exists is not None:
            return self  # the same tickets are indexed there already: never rewrite it in use
        columns = "".join(f", g{i} text" for i in range(len(self.groups_)))
        with connection.transaction():
            connection.execute(f"DROP TABLE IF EXISTS {self.table_}")
            connection.execute(
                f"CREATE TABLE {self.table_} (pos bigint PRIMARY KEY, opened_at timestamp,"
                f" body tsvector, v vector({vectors.shape[1]}){columns})"
            )
            names = ["pos", "opened_at", "body", "v", *(f"g{i}" for i in range(len(self.groups_)))]
            with connection.cursor().copy(
                f"COPY {self.table_} ({', '.join(names)}) FROM STDIN"
            ) as copy:
                for row in range(len(tickets)):
                    at = times[row]
                    copy.write_row(
                        [
                            row,
                            None if np.isnat(at) else pd.Timestamp(at).to_pydatetime(),
                            lexemes(tokens[row]),
                            vectors[row],
                            *(group_values[c][row] for c in self.groups_),
                        ]
                    )
            connection.execute(f"CREATE INDEX ON {self.table_} USING hnsw (v vector_ip_ops)")
            connection.execute(f"CREATE INDEX ON {self.table_} USING gin (body)")
        return self

    # ----------------------------------------------------------------- search

    def search(
        self, queries: pd.DataFrame, k: int, exclude: Sequence[int] | None = None
    ) -> Neighbours:
        check_is_fitted(self, "size_")
        queries = queries.reset_index(drop=True)
        text = views(queries, self.text_column)["text"]
        vectors = self.embedder_.transform(text)
        at = (
            queries[self.time_column].to_numpy(dtype="datetime64[ns]")
            if self.time_column and self.time_column in queries
            else np.full(len(queries), np.datetime64("NaT"), dtype="datetime64[ns]")
        )
        own = {
            c: queries[c].astype("string").to_numpy(dtype=object, na_value=None)
            for c in self.groups_
            if c in queries
        }
        positions = np.full((len(queries), k), -1, dtype=np.int64)
        scores = np.full((len(queries), k), -np.inf)
        for row in range(len(queries)):
            own_words = words(text[row])
            known = [w for w in dict.fromkeys(own_words) if w in self.frequencies_]
            rare = sorted(known, key=lambda w: self.frequencies_[w])[:PROPOSING_WORDS]
            found = self._one(
                vectors[row],
                any_of(own_words, self.max_query_terms),
                any_of(rare, PROPOSING_WORDS),
                None if np.isnat(at[row]) else pd.Timestamp(at[row]).to_pydatetime(),
                -1 if exclude is None else int(exclude[row]),
                {c: values[row] for c, values in own.items()},
                k,
            )
            positions[row, : len(found.positions[0])] = found.positions[0]
            scores[row, : len(found.scores[0])] = found.scores[0]
        return Neighbours(positions, scores)

    def _one(
        self,
        vector: np.ndarray,
        query: str,
        proposing: str,
        at: Any,
        exclude: int,
        own: dict[str, str | None],
        k: int,
    ) -> Neighbours:
        """One query in one round trip: candidates of each signal and the sample, scored."""
        arguments: dict[str, Any] = {"exclude": exclude, "at": at}
        filtered = [
            i
            for i, column in enumerate(self.groups_)
            if column in self.filter and own.get(column) is not None
        ]
        arguments.update({f"f{i}": own[self.groups_[i]] for i in filtered})

        def visible_sql(table: str) -> str:
            conditions = [f"{table}pos <> %(exclude)s"]
            if at is not None:
                conditions.append(f"{table}opened_at < %(at)s")
            conditions += [f"({table}g{i} = %(f{i})s OR {table}g{i} IS NULL)" for i in filtered]
            return " AND ".join(conditions)

        visible = visible_sql("")
        lexical = (
            f"UNION (SELECT pos FROM {self.table_} WHERE {visible} AND body @@ %(p)s::tsquery"
            " ORDER BY ts_rank(body, %(q)s::tsquery, 1) DESC LIMIT %(c)s)"
            if proposing
            else ""
        )
        rank = "ts_rank(t.body, %(q)s::tsquery, 1)" if query else "0.0"
        groups = "".join(f", t.g{i}" for i in range(len(self.groups_)))
        sql = (
            f"WITH candidates AS ((SELECT pos FROM {self.table_} WHERE {visible}"
            " ORDER BY v <#> %(v)s LIMIT %(c)s)"
            f" {lexical} UNION SELECT unnest(%(sample)s::bigint[]))"
            f" SELECT t.pos, -(t.v <#> %(v)s), {rank}, ({visible_sql('t.')})"
            f"{groups} FROM {self.table_} t JOIN candidates USING (pos)"
        )
        arguments.update(
            {
                "v": vector,
                "q": query,
                "p": proposing,
                "c": self.candidates,
                "sample": self.sample_.tolist(),
            }
        )
        rows = self._connect().execute(sql, arguments).fetchall()
        found = pd.DataFrame(rows, columns=["pos", "dense", "lexical", "visible", *self.groups_])
        found["visible"] = found["visible"].fillna(False).astype(bool)  # unknown time: hidden
        sampled = found["pos"].isin(self.sample_).to_numpy() & found["visible"].to_numpy()
        total = np.zeros(len(found))
        for signal in ("dense", "lexical"):
            values = found[signal].astype(float).to_numpy()[None, :]
            total += standardised_by(values, values, sampled[None, :])[0]
        for column, weight in (self.boost or {}).items():
            if column in found and own.get(column) is not None:
                total += weight * (found[column].to_numpy(dtype=object) == own[column])
        best = top_k(np.where(found["visible"].to_numpy(), total, -np.inf)[None, :], k)
        chosen = best.positions[0]
        picked = np.where(chosen >= 0, found["pos"].to_numpy()[chosen.clip(0)], -1)
        return Neighbours(picked[None, :], best.scores)


def _digest(tickets: pd.DataFrame, text: list[str]) -> str:
    """12 hex digits naming these tickets: their ids (or positions), times and text."""
    import hashlib

    digest = hashlib.sha256()
    ids = tickets.iloc[:, 0].astype("string").fillna("").tolist()
    for ticket_id, body in zip(ids, text, strict=True):
        digest.update(f"{ticket_id}\x1f{body}\x1e".encode())
    return digest.hexdigest()[:12]
