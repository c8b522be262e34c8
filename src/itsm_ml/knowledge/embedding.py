"""Dense text vectors from static token embeddings that ship inside a wheel.

A static model is a table of one vector per token: a text's vector is a weighted mean of its
tokens' vectors, so embedding costs a tokenizer pass and a sparse product, no GPU and no
download. The table is WordLlama's `l2_supercat` (256 dimensions, Llama 2's tokenizer), which
its PyPI wheel carries (`wordllama/weights`, `wordllama/tokenizers`); we read those two files
directly, because WordLlama's own loader looks for the tokenizer under a folder the wheel
does not have and then tries the network.

Tokens are weighted by their inverse document frequency on the indexed tickets, with
sublinear term counts: a plain mean lets "the", "error" and JIRA markup dominate. On the
Hadoop duplicate reports (bench/knowledge.py) the weighting moved recall@10 from 0.71 to 0.83.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from itsm_ml.errors import ItsmMlError

PACKAGE = "wordllama"
WEIGHTS = ("weights", "l2_supercat_256.safetensors")
TOKENIZER = ("tokenizers", "l2_supercat_tokenizer_config.json")
TENSOR = "embedding.weight"


@cache
def _static_model() -> tuple[Any, np.ndarray]:
    """The tokenizer and the token table, read once per process from the installed wheel."""
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    try:
        root = resources.files(PACKAGE)
        tokenizer = Tokenizer.from_file(str(root.joinpath(*TOKENIZER)))
        table = load_file(str(root.joinpath(*WEIGHTS)))[TENSOR]
    except (ModuleNotFoundError, FileNotFoundError, OSError, KeyError) as exc:
        raise ItsmMlError(
            f"the static embedding model is missing from the {PACKAGE} package"
            f" ({'/'.join(WEIGHTS)}, {'/'.join(TOKENIZER)}): reinstall the environment"
            " (`make run` does)"
        ) from exc
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer, np.ascontiguousarray(table, dtype=np.float32)


class StaticEmbedder(BaseEstimator):  # type: ignore[misc]
    """Unit vectors of texts: idf-weighted, sublinear mean of static token vectors.

    `max_tokens` bounds the tokens read per text (long descriptions with logs would otherwise
    cost in proportion to their length for little meaning).
    """

    def __init__(self, max_tokens: int = 512) -> None:
        self.max_tokens = max_tokens

    def fit(self, texts: Sequence[str]) -> StaticEmbedder:
        counts = self._counts(texts)
        documents = np.bincount(counts.indices, minlength=counts.shape[1])
        self.idf_ = (np.log((counts.shape[0] + 1) / (documents + 1)) + 1).astype(np.float32)
        self.dimensions_ = int(_static_model()[1].shape[1])
        return self

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        check_is_fitted(self, "idf_")
        counts = self._counts(texts)
        counts.data = (1 + np.log(counts.data)) * self.idf_[counts.indices]
        vectors = np.asarray(counts @ _static_model()[1], dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.asarray(np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0))

    def _counts(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Token counts per text, one column per entry of the token table."""
        tokenizer, table = _static_model()
        encoded = tokenizer.encode_batch(list(texts), add_special_tokens=False)
        ids = [e.ids[: self.max_tokens] for e in encoded]
        lengths = np.fromiter((len(i) for i in ids), dtype=np.int64, count=len(ids))
        columns = np.fromiter((t for i in ids for t in i), dtype=np.int64, count=lengths.sum())
        rows = np.repeat(np.arange(len(ids)), lengths)
        counts = sp.csr_matrix(
            (np.ones(len(columns), dtype=np.float32), (rows, np.clip(columns, 0, len(table) - 1))),
            shape=(len(ids), len(table)),
        )
        counts.sum_duplicates()
        return counts
