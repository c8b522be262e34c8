"""Pickled bytes across processes: DVC hashes saved models into dvc.lock, so one fit must
pickle to the same bytes whatever order Python hashes strings in (PYTHONHASHSEED)."""

from __future__ import annotations

import os
import subprocess
import sys


def pickled_md5_per_hash_seed(code: str, seeds: tuple[str, ...] = ("1", "2")) -> set[str]:
    """Run `code`, which prints the md5 of what it pickles, once per hash seed; the set of
    digests has one element when the bytes are stable."""
    return {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in seeds
    }
