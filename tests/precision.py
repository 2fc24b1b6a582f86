"""Tolerances of the tests' numeric comparisons, each derived from the precision of what is compared
(docs/conventions.md, "Numerical tolerances in the tests").

Every floating-point operation rounds its result to within a relative u, the unit roundoff: u = eps / 2, about
6.0e-8 in float32 (pytorch-ood, torch on CPU or GPU, a float32 dump) and 1.1e-16 in float64 (nclab's numpy
code). Rounding errors grow through the sums a value passes through. A sum (or inner product) of n terms is
off by at most n u times the sum of the terms' magnitudes in the worst case; since its n rounding errors have
random signs, it is off by at most lambda sqrt(n) u times that sum with probability at least
1 - 2n exp(-lambda^2 / 2) (Higham & Mary, "A new approach to probabilistic rounding error analysis", SIAM J.
Sci. Comput. 41, 2019). We take lambda = 6: the bound then fails with probability below 2n 1.5e-8 per value.
Both bounds hold for any order of summation, so they hold whatever the BLAS blocking, the thread count or a
GPU's reduction tree: a tolerance derived from them holds on any machine.

A value that passes through several sums (a mean over N training samples, then an inner product over D
features, then a logsumexp over C classes) accumulates their first-order errors: the growth factor is
lambda (1 + sum_k sqrt(n_k)), the 1 for the rounding of the inputs and of the final operation. Where a step
amplifies relative perturbations (an eigen-decomposition, a matrix inverse, a square root near 0), its
condition number multiplies the bound. The scale is the magnitude of the terms being summed, not of the result:
a difference of two large numbers keeps their absolute rounding error, so tolerances are absolute (atol) at
the scale of the operands.

Quantities that are counts (ranks, argmax, an AUROC's ordered pairs) are compared exactly: see
:func:`half_pairs` and :func:`ambiguous_pairs`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

import numpy as np
import pytest

U32 = float(np.finfo(np.float32).eps) / 2  # float32 unit roundoff, 5.96e-8
U64 = float(np.finfo(np.float64).eps) / 2  # float64 unit roundoff, 1.11e-16
LAMBDA = 6.0  # standard deviations of the probabilistic rounding-error bound (module docstring)


class Tolerance(Mapping):
    """An absolute and a relative tolerance. ``**tolerance`` passes them as ``atol`` and ``rtol`` to
    ``np.testing.assert_allclose``, ``np.allclose`` and ``torch.allclose``; :meth:`approx` gives
    ``pytest.approx``."""

    def __init__(self, atol: float, rtol: float = 0.0):
        self.atol, self.rtol = float(atol), float(rtol)

    def __getitem__(self, key: str) -> float:
        return {"atol": self.atol, "rtol": self.rtol}[key]

    def __iter__(self) -> Iterator[str]:
        return iter(("atol", "rtol"))

    def __len__(self) -> int:
        return 2

    def approx(self, expected):
        return pytest.approx(expected, rel=self.rtol, abs=self.atol)

    def __repr__(self) -> str:
        return f"Tolerance(atol={self.atol:.3g}, rtol={self.rtol:.3g})"


def magnitude(values) -> float:
    """The largest absolute value of ``values`` (a number, an array or a tensor)."""
    values = np.abs(np.asarray(values, dtype=np.float64))
    return float(values.max()) if values.size else 0.0


def growth(*sums: int) -> float:
    """lambda (1 + sum_k sqrt(n_k)): the rounding-error growth of a value passed through sums of n_1, n_2, ...
    terms (module docstring)."""
    return LAMBDA * (1.0 + sum(math.sqrt(n) for n in sums))


def float32_tolerance(scale, *, sums: tuple[int, ...] = (), condition: float = 1.0, bias: float = 0.0) -> Tolerance:
    """Tolerance of a comparison with a float32 computation: u32 growth(*sums) condition magnitude(scale), plus
    ``bias``, a stated systematic difference (a clamp, a ridge term) of the two computations."""
    return Tolerance(U32 * growth(*sums) * condition * magnitude(scale) + bias)


def float64_tolerance(scale=1.0, *, sums: tuple[int, ...] = (), condition: float = 1.0) -> Tolerance:
    """Tolerance of a comparison of two float64 computations: u64 growth(*sums) condition magnitude(scale)
    (around 1e-14 relative for sums of a few hundred terms)."""
    return Tolerance(U64 * growth(*sums) * condition * magnitude(scale))


def half_pairs(auroc: float, n_id: int, n_ood: int) -> int:
    """2 n_id n_ood AUROC, an integer: twice the ID-OOD pairs ordered right plus the tied pairs. An AUROC computed
    in float64 gives it to within float64 rounding (asserted here); the tests compare these integers exactly."""
    count = 2 * n_id * n_ood * auroc
    assert abs(count - round(count)) <= float64_tolerance(count, sums=(n_id + n_ood,)).atol, (auroc, n_id, n_ood)
    return round(count)


def ambiguous_pairs(id_scores, ood_scores, atol: float) -> int:
    """ID-OOD pairs whose scores are within 2 atol: the only pairs whose order (and so whose share of the AUROC)
    can differ between two computations of the scores that agree to within atol. Two such AUROCs differ by at
    most this many pairs: twice as many half-pairs (:func:`half_pairs`)."""
    gaps = np.abs(np.asarray(id_scores, np.float64)[:, None] - np.asarray(ood_scores, np.float64)[None, :])
    return int(np.sum(gaps <= 2 * atol))


def assert_close(actual, desired, atol, err_msg: str = "") -> None:
    """|actual - desired| <= atol elementwise, ``atol`` a number or one tolerance per element (which
    ``np.testing.assert_allclose`` does not take)."""
    actual, desired = np.asarray(actual, np.float64), np.asarray(desired, np.float64)
    atol = np.broadcast_to(np.asarray(atol, np.float64), actual.shape)
    error = np.abs(actual - desired)
    beyond = ~(error <= atol)
    if beyond.any():
        worst = int(np.argmax(np.where(beyond, error / np.maximum(atol, np.finfo(np.float64).tiny), 0)))
        raise AssertionError(
            f"{err_msg}: {beyond.sum()} of {beyond.size} beyond tolerance; worst [{worst}]: {actual.flat[worst]!r} "
            f"(actual), {desired.flat[worst]!r} (desired), |difference| {error.flat[worst]:.3g} > atol "
            f"{atol.flat[worst]:.3g}"
        )


def subspace_error(samples: np.ndarray, dim: int, unit_roundoff: float = U32):
    """x -> a bound on the rounding error of ||x R||^2 / 2, R the eigenvectors of S = samples^T samples / N
    beyond the top ``dim`` (P the top ``dim``: ||x P||^2 / 2 moves by as much, the other way), S and its
    eigen-decomposition computed at ``unit_roundoff`` (ViM's residual, NECO's and PCA's principal subspace).

    S is off by at most u growth(N) times the magnitude of its terms, (|samples|^T |samples| / N)_kl <= b, and
    eigh's backward error adds a perturbation of norm u growth(D) ||S|| (LAPACK's bound, p(D) u ||S||): the
    entries of the total error E in any orthonormal basis are at most u (growth(N) b + growth(D) lambda_1),
    lambda_1 = ||S||. To first order E turns eigenvector i of P towards eigenvector j of R by
    E_ij / (lambda_i - lambda_j), which moves ||x R||^2 / 2 by c_i c_j E_ij / (lambda_i - lambda_j), c the
    coordinates of x in the eigenbasis; these terms have random signs and add in quadrature. The condition is
    thus the inverse eigengaps across the cut: the smaller they are, the larger the bound."""
    samples = np.asarray(samples, np.float64)
    n, d = samples.shape
    eigenvalues, eigenvectors = np.linalg.eigh(samples.T @ samples / n)
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues, eigenvectors = eigenvalues[order], eigenvectors[:, order]
    inverse_gaps = 1 / np.abs(eigenvalues[:dim, None] - eigenvalues[None, dim:])  # P's i x R's j
    terms = np.abs(samples).T @ np.abs(samples) / n
    entry = unit_roundoff * (growth(n) * terms.max() + growth(d) * eigenvalues[0])

    def error(x: np.ndarray) -> np.ndarray:
        c = np.asarray(x, np.float64) @ eigenvectors
        return entry * np.sqrt(np.einsum("ni,ij,nj->n", c[:, :dim] ** 2, inverse_gaps**2, c[:, dim:] ** 2))

    return error


def layer_sums(model) -> tuple[int, ...]:
    """The fan-in of every convolution and linear layer of a torch ``model``: the sums a forward pass takes its
    values through. Their first-order errors add along the layers; batch norm keeps the activations at about the
    scale of the output, which is then the scale of the tolerance."""
    import torch

    sums = []
    for module in model.modules():
        if isinstance(module, torch.nn.modules.conv._ConvNd):
            sums.append(module.in_channels // module.groups * math.prod(module.kernel_size))
        elif isinstance(module, torch.nn.Linear):
            sums.append(module.in_features)
    return tuple(sums)
