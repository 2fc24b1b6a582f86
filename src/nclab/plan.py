"""Torch-free quantities the Snakefile needs to validate a config and plan the DAG (parsing stays fast)."""

from __future__ import annotations

from typing import Sequence

FEATURES_PER_WIDTH = {"resnet18": 8}  # penultimate dimension / first-stage width, per architecture


def feature_dim(arch: str, width: int) -> int:
    """Penultimate dimension of ``arch`` at ``width``, without building the network."""
    if arch not in FEATURES_PER_WIDTH:
        raise ValueError(f"unknown architecture {arch!r}; allowed: {sorted(FEATURES_PER_WIDTH)}")
    return FEATURES_PER_WIDTH[arch] * width


def checkpoint_schedule(epochs: int, requested: Sequence[int]) -> list[int]:
    """Sorted checkpoint epochs, always including the last one."""
    bad = [e for e in requested if not 1 <= e <= epochs]
    if bad:
        raise ValueError(f"checkpoint epochs {bad} are outside 1..{epochs}")
    return sorted(set(requested) | {epochs})
