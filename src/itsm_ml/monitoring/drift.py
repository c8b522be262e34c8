"""Data drift: how far a window of current records has moved from a model's training data.

A `ReferenceProfile` is fitted once on the training data of a model version (and logged with
it); `score(window)` compares a window of current records to it, feature by feature, by
effect sizes rather than significance tests: on thousands of records every test rejects,
and on ITSM codes with long tails a chi-square test flags noise. Per kind of feature:

- numeric: population stability index (PSI) on the reference deciles; Wasserstein distance
  in reference IQRs and the Kolmogorov-Smirnov statistic are reported beside it;
- categorical: PSI over the reference categories, rare and never-seen ones bucketed
  together; the largest change in one category's share; the share of values never seen in
  the reference, beyond what a long tail (Good-Turing) or the reference's own churn over
  time brings;
- text: a domain classifier's cross-validated AUC (reference against window, TF-IDF of
  hashed words, so the profile keeps no raw text) and emerging terms (words in a share of
  the window's texts that were rare in the reference);
- every feature: the change in its share of missing values.

A window below `min_window` rows gets no verdict. `persistent_alerts` turns a sequence of
window verdicts into alerts only after `persistence` drifted windows in a row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from itsm_ml.config import DriftParams

OTHER = "__other__"
NEW = "__new__"
MISSING = "__missing__"
_EPSILON = 1e-4  # share given to an empty bin, so PSI stays finite
_HASH_FEATURES = 2**18
_MIN_VALUES = 50  # fewer present values than this in a window: no verdict on their spread


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's comparison: the deciding statistic and what else was measured."""

    feature: str
    kind: str
    statistic: str
    value: float
    threshold: float
    drifted: bool
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DriftReport:
    window: str
    rows: int
    min_rows: int
    features: tuple[FeatureDrift, ...]

    @property
    def has_verdict(self) -> bool:
        return self.rows >= self.min_rows

    @property
    def drifted(self) -> bool:
        """At least one feature drifted, in a window large enough to judge."""
        return self.has_verdict and any(f.drifted for f in self.features)

    @property
    def drifted_features(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]

    def to_dict(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "rows": self.rows,
            "has_verdict": self.has_verdict,
            "drifted": self.drifted,
            "drifted_features": self.drifted_features,
            "features": [asdict(f) for f in self.features],
        }


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """Population stability index between two share vectors over the same bins."""
    ref = np.maximum(np.asarray(reference, dtype=float), _EPSILON)
    cur = np.maximum(np.asarray(current, dtype=float), _EPSILON)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def jensen_shannon(reference: np.ndarray, current: np.ndarray) -> float:
    """Jensen-Shannon distance (base 2, between 0 and 1) of two share vectors."""
    ref, cur = np.asarray(reference, dtype=float), np.asarray(current, dtype=float)
    middle = (ref + cur) / 2

    def kl(p: np.ndarray) -> float:
        inside = p > 0
        return float(np.sum(p[inside] * np.log2(p[inside] / middle[inside])))

    return float(np.sqrt(max((kl(ref) + kl(cur)) / 2, 0.0)))


class ReferenceProfile:
    """What the training data looked like, kept compactly enough to log with a model."""

    def __init__(self, params: DriftParams | None = None) -> None:
        self.params = params or DriftParams()

    def fit(
        self,
        frame: pd.DataFrame,
        *,
        numeric: Sequence[str] = (),
        categorical: Sequence[str] = (),
        text: str | None = None,
        time: pd.Series | np.ndarray | None = None,
    ) -> ReferenceProfile:
        """Profile `frame`; with `time` (one timestamp per row), new values are expected at
        the rate the reference's own latest fifth brings (see `_novelty`)."""
        rng = np.random.default_rng(self.params.seed)
        self.rows_ = len(frame)
        sample = frame.iloc[
            np.sort(rng.choice(len(frame), min(len(frame), self.params.reference_sample), False))
        ]
        self.missing_ = {
            column: float(frame[column].isna().mean())
            for column in [*numeric, *categorical, *([text] if text else [])]
            if column in frame
        }
        self.numeric_: dict[str, dict[str, Any]] = {}
        for column in numeric:
            if column not in frame:
                continue
            values = pd.to_numeric(frame[column], errors="coerce").dropna().to_numpy(dtype=float)
            if len(values) == 0:
                continue
            edges = np.unique(np.quantile(values, np.linspace(0, 1, 11)[1:-1]))
            quartiles = np.quantile(values, [0.25, 0.75])
            kept = pd.to_numeric(sample[column], errors="coerce").dropna().to_numpy(dtype=float)
            self.numeric_[column] = {
                "edges": edges,
                "shares": _bin_shares(values, edges),
                "sample": np.sort(kept),
                "scale": float(quartiles[1] - quartiles[0]) or float(np.std(values)) or 1.0,
            }
        self.categorical_: dict[str, pd.Series] = {}
        # Sorted lists, not sets: a set pickles in hash-seed order, and DVC hashes the bytes.
        self.categorical_seen_: dict[str, list[str]] = {}
        self.categorical_unseen_: dict[str, float] = {}
        for column in categorical:
            if column not in frame:
                continue
            shares = frame[column].dropna().astype(str).value_counts(normalize=True)
            if shares.empty:
                continue
            kept_shares = shares[shares >= self.params.rare_share]
            kept_shares[OTHER] = float(shares[shares < self.params.rare_share].sum())
            # Good-Turing: the share of values seen once estimates how often a new sample
            # brings a value never seen before, with no drift at all (callers, CIs: long tails).
            counts = frame[column].dropna().astype(str).value_counts()
            unseen = float((counts == 1).sum() / max(counts.sum(), 1))
            unseen = max(unseen, _novelty(frame[column], time))
            self.categorical_[column] = kept_shares
            self.categorical_seen_[column] = sorted(map(str, shares.index))
            self.categorical_unseen_[column] = unseen
        self.text_ = text if text and text in frame else None
        if self.text_ is not None:
            texts = sample[self.text_].fillna("").astype(str)
            self.text_hashed_ = _hashed(texts)
            document_share = _document_shares(texts)
            self.text_terms_ = document_share
            self.text_rows_ = len(texts)
        return self

    def score(self, window: pd.DataFrame, name: str = "window") -> DriftReport:
        if not hasattr(self, "rows_"):
            raise RuntimeError("ReferenceProfile is not fitted yet: call fit() first")
        found: list[FeatureDrift] = []
        limits = self.params.thresholds
        for column, reference in self.numeric_.items():
            found.append(self._numeric(column, reference, window))
        for column, reference in self.categorical_.items():
            found.append(self._categorical(column, reference, window))
        if self.text_ is not None:
            found.extend(self._text(window))
        for column, before in self.missing_.items():
            now = float(window[column].isna().mean()) if column in window else 1.0
            shift = abs(now - before) if len(window) else 0.0
            z = _share_z(before, shift, len(window), self.rows_)
            found.append(
                FeatureDrift(
                    feature=f"{column} (missing)",
                    kind="missing",
                    statistic="missing share shift (z)",
                    value=z,
                    threshold=limits.z,
                    drifted=shift >= limits.missing_shift and z >= limits.z,
                    details={"reference": before, "window": now, "shift": shift},
                )
            )
        return DriftReport(name, len(window), self.params.min_window, tuple(found))

    def _numeric(
        self, column: str, reference: dict[str, Any], window: pd.DataFrame
    ) -> FeatureDrift:
        from scipy.stats import ks_2samp, wasserstein_distance

        values = (
            pd.to_numeric(window[column], errors="coerce").dropna().to_numpy(dtype=float)
            if column in window
            else np.array([])
        )
        limits = self.params.thresholds
        if len(values) < _MIN_VALUES:
            return _too_few(column, "numeric", len(values), limits.numeric_psi)
        from scipy.stats import mannwhitneyu, norm

        index = psi(reference["shares"], _bin_shares(values, reference["edges"]))
        index_z = _psi_z(index, len(reference["shares"]), len(values), self.rows_)
        # PSI on deciles sees changes of shape; a shift of every value (a change 1.5 times
        # bigger) moves few values across deciles, so the rank test sees it first.
        test = mannwhitneyu(values, reference["sample"], alternative="two-sided")
        auc = float(test.statistic / (len(values) * len(reference["sample"])))
        rank_z = float(norm.isf(max(float(test.pvalue), 1e-300) / 2))
        by_psi = index >= limits.numeric_psi and index_z >= limits.z
        by_rank = abs(auc - 0.5) >= limits.rank_shift and rank_z >= limits.z
        statistic, value, threshold = (
            ("rank AUC shift", abs(auc - 0.5), limits.rank_shift)
            if by_rank or (not by_psi and rank_z > index_z)
            else ("psi", index, limits.numeric_psi)
        )
        return FeatureDrift(
            feature=column,
            kind="numeric",
            statistic=statistic,
            value=value,
            threshold=threshold,
            drifted=by_psi or by_rank,
            details={
                "psi": index,
                "psi_z": index_z,
                "rank_auc": auc,
                "rank_z": rank_z,
                "wasserstein_iqr": float(
                    wasserstein_distance(reference["sample"], values) / reference["scale"]
                ),
                "ks": float(ks_2samp(reference["sample"], values).statistic),
                "reference_median": float(np.median(reference["sample"])),
                "window_median": float(np.median(values)),
            },
        )

    def _categorical(self, column: str, reference: pd.Series, window: pd.DataFrame) -> FeatureDrift:
        limits = self.params.thresholds
        values = (
            window[column].dropna().astype(str) if column in window else pd.Series([], dtype=str)
        )
        if len(values) < _MIN_VALUES:
            return _too_few(column, "categorical", len(values), limits.psi)
        seen = self.categorical_seen_[column]
        is_new = ~values.isin(seen)
        # Never-seen values fall in the bucket of rare ones for the shape of the distribution:
        # how many new values a window may bring with no drift depends on whether it is a
        # sample of the reference period or a later one, so they are judged on their own,
        # one-sided, below.
        bucketed = values.where(values.isin(reference.index), OTHER)
        shares = bucketed.value_counts(normalize=True)
        categories = list(reference.index)
        expected_new = self.categorical_unseen_[column]
        before = reference.to_numpy(dtype=float)
        after = shares.reindex(categories, fill_value=0.0).to_numpy(dtype=float)
        index = psi(before, after)
        shifts = pd.Series(after - before, index=categories)
        # A share's change in standard errors: a big category moves by chance more than a
        # small one, so one fixed cut-off would flag the big ones in clean windows.
        z = pd.Series(
            _share_z(before, np.abs(shifts.to_numpy()), len(values), self.rows_),
            index=shifts.index,
        )
        z[shifts.abs() < limits.category_shift] = 0.0
        largest = z.idxmax() if z.max() > 0 else shifts.abs().idxmax()
        new_share = float(is_new.mean())
        new_excess = new_share - expected_new
        new_z = float(_share_z(expected_new, new_excess, len(values), self.rows_))
        drifted = (
            # On ITSM codes the chi-square behind a PSI z is unreliable (many small
            # buckets, heavy tails): categorical PSI is judged by its size alone.
            index >= limits.psi
            or z[largest] >= limits.z
            or (new_excess >= limits.new_category_share and new_z >= limits.z)
        )
        deciding = max(
            ("psi", index, limits.psi),
            ("category share shift (z)", float(z[largest]), limits.z),
            ("share of new values above expected", new_excess, limits.new_category_share),
            key=lambda item: item[1] / item[2],
        )
        new_values = values[is_new].value_counts().head(5)
        return FeatureDrift(
            feature=column,
            kind="categorical",
            statistic=deciding[0],
            value=float(deciding[1]),
            threshold=float(deciding[2]),
            drifted=bool(drifted),
            details={
                "psi": index,
                "jensen_shannon": jensen_shannon(before, after),
                "largest_shift_category": str(largest),
                "largest_shift": float(shifts[largest]),
                "largest_shift_z": float(z[largest]),
                "new_share": new_share,
                "expected_new_share": expected_new,
                "new_share_z": new_z,
                "new_values": {str(k): int(v) for k, v in new_values.items()},
            },
        )

    def _text(self, window: pd.DataFrame) -> list[FeatureDrift]:
        from scipy import sparse
        from sklearn.feature_extraction.text import TfidfTransformer
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import roc_auc_score
        from sklearn.model_selection import StratifiedKFold, cross_val_predict

        column = str(self.text_)
        limits = self.params.thresholds
        texts = (
            window[column].fillna("").astype(str) if column in window else pd.Series([], dtype=str)
        )
        if len(texts) < 10:
            empty = {"empty": True}
            return [
                FeatureDrift(
                    column, "text", "domain classifier AUC", np.nan, limits.text_auc, False, empty
                ),
                FeatureDrift(
                    f"{column} (terms)",
                    "text",
                    "emerging term share",
                    np.nan,
                    limits.emerging_term_share,
                    False,
                    empty,
                ),
            ]
        rng = np.random.default_rng(self.params.seed)
        reference = self.text_hashed_
        # As many reference texts as window texts: the AUC then needs no class weighting.
        take = rng.choice(reference.shape[0], min(reference.shape[0], len(texts)), replace=False)
        stacked = sparse.vstack([reference[take], _hashed(texts)]).tocsr()
        # Only the hashed words present here: the classifier's cost follows its width.
        stacked = stacked[:, np.unique(stacked.indices)]
        labels = np.r_[np.zeros(len(take)), np.ones(len(texts))]
        weights = TfidfTransformer(sublinear_tf=True).fit_transform(stacked)
        folds = StratifiedKFold(5, shuffle=True, random_state=self.params.seed)
        scores = cross_val_predict(
            LogisticRegression(C=1.0, max_iter=1000),
            weights,
            labels,
            cv=folds,
            method="decision_function",
        )
        auc = float(roc_auc_score(labels, scores))

        shares = _document_shares(texts)
        floor = 1.0 / max(self.text_rows_, 1)
        before = self.text_terms_.reindex(shares.index, fill_value=0.0)
        # A term is emerging when it is in a share of the window's texts and at least five
        # times as common as it was in the reference.
        emerging = shares[(shares >= limits.emerging_term_share) & (shares >= 5 * (before + floor))]
        top = emerging.sort_values(ascending=False)
        term_share = float(top.iloc[0]) if len(top) else 0.0
        return [
            FeatureDrift(
                feature=column,
                kind="text",
                statistic="domain classifier AUC",
                value=auc,
                threshold=limits.text_auc,
                drifted=auc >= limits.text_auc,
                details={"reference_texts": len(take), "window_texts": len(texts)},
            ),
            FeatureDrift(
                feature=f"{column} (terms)",
                kind="text",
                statistic="emerging term share",
                value=term_share,
                threshold=limits.emerging_term_share,
                drifted=term_share >= limits.emerging_term_share,
                details={
                    "emerging_terms": {
                        str(term): {"window": float(share), "reference": float(before[term])}
                        for term, share in top.head(10).items()
                    }
                },
            ),
        ]


def _novelty(values: pd.Series, time: pd.Series | np.ndarray | None) -> float:
    """Share of the reference's latest fifth (by time) in values its earlier part never had.

    Good-Turing assumes records arrive in no order; tickets arrive in time, and callers, CIs
    and locations come and go, so a later period brings more never-seen values than a random
    sample would (on the ServiceNow log's callers, about twice as many). A later window may
    bring new values up to that rate with no drift.
    """
    if time is None or len(values) < 5 * _MIN_VALUES:
        return 0.0
    when = pd.to_datetime(pd.Series(np.asarray(time)), errors="coerce")
    if len(when) != len(values) or when.isna().any():
        return 0.0
    ordered = values.reset_index(drop=True).iloc[np.argsort(when.to_numpy(), kind="stable")]
    cut = int(0.8 * len(ordered))
    early, late = ordered.iloc[:cut].dropna().astype(str), ordered.iloc[cut:].dropna().astype(str)
    if len(late) < _MIN_VALUES:
        return 0.0
    return float((~late.isin(set(early))).mean())


def _psi_z(index: float, bins: int, window_rows: int, reference_rows: int) -> float:
    """PSI as a z-score: with no drift, PSI / (1/n + 1/N) is close to a chi-square with
    bins - 1 degrees of freedom; its upper tail probability, as a standard normal quantile
    (a skewed chi-square must not be read as a symmetric z)."""
    from scipy.stats import chi2, norm

    if window_rows == 0 or bins < 2:
        return 0.0
    scale = 1.0 / window_rows + 1.0 / max(reference_rows, 1)
    tail = float(chi2.sf(index / scale, bins - 1))
    return float(norm.isf(max(tail, 1e-300)))


def _share_z(before: Any, shift: Any, window_rows: int, reference_rows: int) -> Any:
    """A change in a share, in standard errors of the difference of two proportions."""
    if window_rows < 2:
        return np.zeros_like(np.asarray(shift, dtype=float))
    floor = min(1.0 / window_rows, 0.25)  # a share of 0 or 1 still has some sampling error
    base = np.clip(np.asarray(before, dtype=float), floor, 1 - floor)
    error = np.sqrt(base * (1 - base) * (1.0 / window_rows + 1.0 / max(reference_rows, 1)))
    return np.asarray(shift, dtype=float) / error


def _too_few(column: str, kind: str, present: int, threshold: float) -> FeatureDrift:
    """A mostly missing feature in this window: its missing share is judged, not its values."""
    details = {"present_values": present, "needed": _MIN_VALUES}
    return FeatureDrift(column, kind, "psi", float("nan"), threshold, False, details)


def _bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    return np.asarray(counts / max(counts.sum(), 1), dtype=float)


def _hashed(texts: pd.Series) -> Any:
    from sklearn.feature_extraction.text import HashingVectorizer

    vectorizer = HashingVectorizer(
        n_features=_HASH_FEATURES, alternate_sign=False, norm=None, ngram_range=(1, 1)
    )
    return vectorizer.transform(texts.tolist())


def _document_shares(texts: pd.Series) -> pd.Series:
    """Share of texts containing each word (lower case, two letters or more)."""
    from sklearn.feature_extraction.text import CountVectorizer

    if texts.str.strip().eq("").all():
        return pd.Series(dtype=float)
    vectorizer = CountVectorizer(binary=True, min_df=1)
    try:
        counts = vectorizer.fit_transform(texts.tolist())
    except ValueError:  # only stop words or punctuation
        return pd.Series(dtype=float)
    shares = np.asarray(counts.sum(axis=0)).ravel() / len(texts)
    return pd.Series(shares, index=vectorizer.get_feature_names_out())


def count_windows(
    frame: pd.DataFrame, rows: int, time_column: str | None = None
) -> Iterator[tuple[str, pd.DataFrame]]:
    """Consecutive windows of `rows` records, in time order when a time column is given."""
    ordered = frame.sort_values(time_column, kind="stable") if time_column else frame
    for start in range(0, len(ordered), rows):
        part = ordered.iloc[start : start + rows]
        label = f"rows {start + 1}-{start + len(part)}"
        if time_column:
            label = f"{part[time_column].min():%Y-%m-%d} to {part[time_column].max():%Y-%m-%d}"
        yield label, part


def time_windows(
    frame: pd.DataFrame, time_column: str, period: str
) -> Iterator[tuple[str, pd.DataFrame]]:
    """Consecutive calendar windows of a pandas frequency ('7D', 'W', 'MS', ...)."""
    for _, part in frame.groupby(pd.Grouper(key=time_column, freq=period)):
        if len(part):
            label = f"{part[time_column].min():%Y-%m-%d} to {part[time_column].max():%Y-%m-%d}"
            yield label, part


def persistent_alerts(drifted: Sequence[bool], persistence: int) -> list[bool]:
    """Alert at a window once it and the `persistence - 1` before it all drifted."""
    run, alerts = 0, []
    for flag in drifted:
        run = run + 1 if flag else 0
        alerts.append(run >= persistence)
    return alerts


def budget_summary(
    reports: list[dict[str, Any]],
    registered: dict[str, Any],
    item: str,
    persistence: int,
    *,
    rate: str,
    budget: float,
    window: str,
    metric: str,
) -> dict[str, Any]:
    """The drift summary of a model held to a budget (a detector's false alarms, a recurrence
    model's review load), period by period: `reports` carry `drifted` (its input), `over_budget`
    and `alert`, and `performance[rate]`; the keys are those of every model's summary."""
    data = persistent_alerts([r["drifted"] for r in reports], persistence)
    over = persistent_alerts([r["over_budget"] for r in reports], persistence)
    alerts = [r["alert"] for r in reports]
    rates = [r["performance"][rate] for r in reports]
    return {
        "model": registered.get("name", item),
        "version": registered.get("version", "unknown"),
        "windows": len(reports),
        "windows_with_verdict": len(reports),
        "drifted_windows": int(sum(r["drifted"] for r in reports)),
        "performance_drifted_windows": int(sum(r["over_budget"] for r in reports)),
        "alert_windows": int(sum(alerts)),
        "alert_at_end": bool(alerts[-1]) if alerts else False,
        "data_alert_windows": int(sum(data)),
        "data_alert_at_end": bool(data[-1]) if data else False,
        "performance_alert_windows": int(sum(over)),
        "performance_alert_at_end": bool(over[-1]) if over else False,
        # The gate's sentence reads "realised against promised": the budget is the promise.
        "last_estimated": float(budget),
        "last_realised": float(rates[-1]) if rates else float("nan"),
        rate: float(np.mean(rates)) if rates else float("nan"),
        "persistence": persistence,
        "min_window": 1,
        "window": window,
        "performance_metric": metric,
        "estimate_mean_abs_error": float("nan"),
    }


@dataclass(frozen=True)
class Measured:
    """One figure of a budgeted period, as the drift page and `itsm-ml monitor` show it."""

    feature: str
    statistic: str
    value: float
    threshold: float
    drifted: bool


def level_ratio(value: float, level: float, limit: float) -> tuple[float, bool]:
    """`value` against the training `level`, and whether it is beyond `limit` times either
    way (NaN, never drifted, without a level)."""
    ratio = value / level if level == level and level else float("nan")
    return ratio, bool(ratio == ratio and (ratio > limit or ratio < 1 / limit))


def budget_period(
    window: str,
    rows: int,
    signal: Measured,
    load: Measured,
    performance: dict[str, float],
    headline: str,
) -> dict[str, Any]:
    """A period of a model held to a budget: its input `signal` (drifted: data drift) and
    its `load` against the budget (drifted: over budget), in the shape every drift report
    has."""
    return {
        "window": window,
        "rows": rows,
        "has_verdict": True,
        "features": [dataclasses.asdict(signal), dataclasses.asdict(load)],
        "performance": performance,
        "drifted": signal.drifted,
        "over_budget": load.drifted,
        "flagged": signal.drifted or load.drifted,
        # What `itsm-ml monitor` shows of the period, as for the other models.
        "drifted_features": [m.feature for m in (signal, load) if m.drifted],
        "headline": headline,
    }


def with_alerts(reports: list[dict[str, Any]], persistence: int) -> list[dict[str, Any]]:
    """`reports` with `alert` set by the persistence rule over flagged periods."""
    alerts = persistent_alerts([r["flagged"] for r in reports], persistence)
    for report, alert in zip(reports, alerts, strict=True):
        report["alert"] = alert
    return reports
