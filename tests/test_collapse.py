"""NC metrics against brute-force loops and the closed-form case of a perfect simplex ETF."""

import numpy as np
import pytest
from conftest import data_seed
from precision import float64_tolerance

from nclab import collapse


def simplex_etf(num_classes: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """(C, d) rows forming a simplex equiangular tight frame, randomly rotated in R^d."""
    etf = np.sqrt(num_classes / (num_classes - 1)) * (np.eye(num_classes) - 1.0 / num_classes)
    rotation, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    return etf @ rotation[:num_classes]


@pytest.fixture
def collapsed():
    """Features equal to their class means (an ETF shifted by a mean orthogonal to it), W = 3 * M~^T."""
    rng = np.random.default_rng(data_seed(0))
    num_classes, dim = 5, 12
    centred = 4.0 * simplex_etf(num_classes, dim, rng)
    offset = rng.normal(size=dim)
    basis = np.linalg.svd(centred.T, full_matrices=True)[0][:, num_classes - 1 :]  # orthogonal complement
    global_mean = basis @ (basis.T @ offset)
    labels = np.repeat(np.arange(num_classes), 7)
    features = centred[labels] + global_mean
    return features, labels, 3.0 * centred, num_classes


def collapsed_zeros(features: np.ndarray, labels: np.ndarray, num_classes: int) -> tuple[float, float]:
    """What the collapsed fixture's zero measures are in float64: the class means (sums of the class's samples)
    and their centring (sums over C classes), then norms and inner products over d, are off by a relative
    u64 growth, times max|h| / min ||mu_c - mu_G|| for the cancellation in the centring. A measure linear in
    these errors (a cosine's deviation, a norm ratio, a distance) is zero to within that; one quadratic in them
    (a variance ratio, a squared distance) to within its square."""
    geometry = collapse.class_geometry(features, labels, num_classes)
    cancellation = np.abs(features).max() / np.linalg.norm(geometry.centred, axis=1).min()
    sums = (np.bincount(labels).max(), num_classes, features.shape[1])
    linear = float64_tolerance(1, sums=sums, condition=cancellation).atol
    return linear, linear**2


def test_perfect_etf_is_fully_collapsed(collapsed):
    features, labels, weight, num_classes = collapsed
    geometry = collapse.class_geometry(features, labels, num_classes)
    linear, quadratic = collapsed_zeros(features, labels, num_classes)
    assert collapse.nc1(features, labels, geometry) == pytest.approx(0, abs=quadratic)
    assert collapse.nc3(weight, geometry) == pytest.approx(0, abs=quadratic)
    assert collapse.equiangularity(geometry.centred) == pytest.approx(0, abs=linear)
    assert collapse.equinorm(geometry.centred) == pytest.approx(0, abs=linear)
    assert collapse.equiangularity(weight) == pytest.approx(0, abs=linear)
    assert collapse.max_angle(geometry.centred) == pytest.approx(0, abs=linear)
    assert collapse.alignment(weight, geometry) == pytest.approx(np.ones(num_classes), abs=linear)
    assert collapse.nc4(features @ weight.T, features, geometry) == 0.0


def test_nc1_matches_pseudo_inverse_of_between_class_covariance():
    rng = np.random.default_rng(data_seed(1))
    num_classes, dim = 4, 9
    labels = rng.integers(0, num_classes, 200)
    features = rng.normal(size=(200, dim)) + 3 * rng.normal(size=(num_classes, dim))[labels]
    geometry = collapse.class_geometry(features, labels, num_classes)
    means = np.array([features[labels == c].mean(0) for c in range(num_classes)])
    global_mean = means.mean(0)  # mean of class means
    sigma_w = np.zeros((dim, dim))
    for h, y in zip(features, labels):
        sigma_w += np.outer(h - means[y], h - means[y])
    sigma_w /= len(features)
    sigma_b = sum(np.outer(m - global_mean, m - global_mean) for m in means) / num_classes
    expected = np.trace(sigma_w @ np.linalg.pinv(sigma_b, rcond=1e-10)) / num_classes
    # float64 both: covariances over N samples and d features; the pseudo-inverse of Sigma_B amplifies its rounding
    # by the condition of its C - 1 nonzero eigenvalues
    eigenvalues = np.sort(np.linalg.eigvalsh(sigma_b))[::-1][: num_classes - 1]
    tolerance = float64_tolerance(expected, sums=(len(features), dim), condition=eigenvalues[0] / eigenvalues[-1])
    assert collapse.nc1(features, labels, geometry) == tolerance.approx(expected)
    assert np.linalg.matrix_rank(sigma_b) == num_classes - 1


def test_global_mean_is_mean_of_class_means_under_imbalance():
    features = np.array([[0.0], [0.0], [0.0], [4.0]])
    geometry = collapse.class_geometry(features, np.array([0, 0, 0, 1]), 2)
    assert geometry.global_mean.tolist() == [2.0]  # the sample mean would be 1.0; exact in binary


def test_nc2_nc3_nc5_against_loops():
    rng = np.random.default_rng(data_seed(2))
    num_classes, dim = 5, 6
    labels = np.repeat(np.arange(num_classes), 10)
    features = np.abs(rng.normal(size=(50, dim)))
    weight = rng.normal(size=(num_classes, dim))
    ood = np.abs(rng.normal(size=(30, dim)))
    geometry = collapse.class_geometry(features, labels, num_classes)
    m = geometry.centred
    cos = lambda a, b: a @ b / np.linalg.norm(a) / np.linalg.norm(b)  # noqa: E731
    # float64 both: values of scale 1 to 4 (cosines, unit-norm differences) from means over N samples, inner
    # products over d and means or sums over at most C d terms; the centred means cancel by max|h| / min ||m_c||
    cancellation = np.abs(features).max() / np.linalg.norm(geometry.centred, axis=1).min()
    tolerance = float64_tolerance(4, sums=(len(features), dim, num_classes * dim), condition=cancellation)
    pairs = [
        abs(cos(m[i], m[j]) + 1 / (num_classes - 1)) for i in range(num_classes) for j in range(num_classes) if i != j
    ]
    assert collapse.equiangularity(m) == tolerance.approx(np.mean(pairs))
    norms = [np.linalg.norm(w) for w in weight]
    assert collapse.equinorm(weight) == tolerance.approx(np.std(norms) / np.mean(norms))
    nc3 = sum(((weight[c] / np.linalg.norm(weight) - m[c] / np.linalg.norm(m)) ** 2).sum() for c in range(num_classes))
    assert collapse.nc3(weight, geometry) == tolerance.approx(nc3)
    ood_mean = ood.mean(0)
    nc5 = np.mean([abs(cos(geometry.means[c], ood_mean)) for c in range(num_classes)])
    assert collapse.nc5(ood, geometry, centred=False) == tolerance.approx(nc5)
    nc5c = np.mean([abs(cos(m[c], ood_mean - geometry.global_mean)) for c in range(num_classes)])
    assert collapse.nc5(ood, geometry, centred=True) == tolerance.approx(nc5c)
    maxang = np.mean([max(cos(m[i], m[j]) for j in range(num_classes) if j != i) for i in range(num_classes)])
    assert collapse.max_angle(m) == tolerance.approx(maxang + 1 / (num_classes - 1))


def test_nc4_counts_disagreements_with_nearest_centre():
    rng = np.random.default_rng(data_seed(3))
    labels = np.repeat(np.arange(3), 5)
    features = rng.normal(size=(15, 4))
    logits = rng.normal(size=(15, 3))
    geometry = collapse.class_geometry(features, labels, 3)
    ncc = [np.argmin([np.linalg.norm(h - mu) for mu in geometry.means]) for h in features]
    expected = np.mean([np.argmax(z) != p for z, p in zip(logits, ncc)])
    assert collapse.nc4(logits, features, geometry) == expected  # a count over N: exact


def test_collapse_metrics_rejects_missing_class():
    with pytest.raises(ValueError, match="classes without samples"):
        collapse.class_geometry(np.zeros((3, 2)), np.array([0, 0, 2]), 3)


@pytest.mark.parametrize("head", ["normed", "etf"])
def test_heads_that_ignore_row_norms_are_measured_on_the_normalised_classifier(collapsed, head):
    """A normalised (LDAM) or ETF head computes logits from the directions of w_c only: rows pointing exactly
    at the class means are a perfect NC3 and classifier equinorm whatever their norms (the raw rows are not)."""
    features, labels, weight, num_classes = collapsed
    norms = np.array([0.5, 1.0, 2.0, 4.0, 8.0])[:, None]
    dump = {
        "train_features": features,
        "train_labels": labels,
        "train_logits": features @ weight.T,
        "test_features": features,
        "test_labels": labels,
        "test_logits": features @ weight.T,
        "weight": weight / np.linalg.norm(weight, axis=1, keepdims=True) * norms,
        "bias": np.zeros(num_classes),
    }
    linear = collapse.collapse_metrics({**dump, "head": np.array("linear")}, num_classes, [])
    metrics = collapse.collapse_metrics({**dump, "head": np.array(head)}, num_classes, [])
    assert linear["nc3"] > 0.1 and linear["nc2_equinorm_classifier"] > 0.5  # what the raw rows would report
    zero, squared = collapsed_zeros(features, labels, num_classes)
    assert metrics["nc3"] == pytest.approx(0, abs=squared)
    assert metrics["nc2_equinorm_classifier"] == pytest.approx(0, abs=zero)
    assert metrics["alignment_mean"] == pytest.approx(linear["alignment_mean"], abs=zero)  # a cosine: unchanged
    norms = collapse.class_table({**dump, "head": np.array(head)}, num_classes)["classifier_norm"]
    assert norms == float64_tolerance(1, sums=(features.shape[1],)).approx(1)  # unit rows, a norm over d


def test_further_measures_vanish_on_a_perfect_etf(collapsed):
    features, labels, weight, num_classes = collapsed
    geometry = collapse.class_geometry(features, labels, num_classes)
    linear, quadratic = collapsed_zeros(features, labels, num_classes)
    assert collapse.nc1_trace_ratio(features, labels, geometry) == pytest.approx(0, abs=quadratic)
    assert collapse.cdnv(features, labels, geometry) == pytest.approx(0, abs=quadratic)
    assert collapse.gnc2(geometry) == pytest.approx(0, abs=linear)
    assert collapse.etf_error(geometry) == pytest.approx(0, abs=linear)
    assert collapse.self_duality(weight, geometry) == pytest.approx(0, abs=linear)
    unit = geometry.centred / np.linalg.norm(geometry.centred)
    assert collapse.self_duality(unit, geometry) == pytest.approx(0, abs=linear)


def random_classes(seed: int, num_classes: int = 5, dim: int = 7, samples: int = 60):
    """Imbalanced non-negative features (a nonzero global mean), every class present."""
    rng = np.random.default_rng(data_seed(seed))
    labels = np.concatenate([np.arange(num_classes), rng.integers(0, num_classes, samples - num_classes)])
    features = np.abs(rng.normal(size=(samples, dim)) + 2 * rng.normal(size=(num_classes, dim))[labels]) + 1.0
    return features, labels, collapse.class_geometry(features, labels, num_classes), rng


def loop_tolerance(features: np.ndarray, geometry, expected: float):
    """float64 both, loops against vectorised code: means over N samples, sums over at most C^2 pairs and d
    features, with the centring of the class means (or their differences) cancelling by max|h| over the
    smallest distance between class means."""
    means = geometry.means
    distances = np.linalg.norm(means[:, None] - means[None, :], axis=2)[~np.eye(len(means), dtype=bool)]
    centred = np.linalg.norm(geometry.centred, axis=1)
    cancellation = np.abs(features).max() / min(distances.min(), centred.min())
    n, d = features.shape
    return float64_tolerance(expected, sums=(n, len(means) ** 2, d), condition=cancellation)


def test_nc1_of_coinciding_class_means_is_finite_and_numpys_pseudo_inverse():
    """Two classes with one mean (minority collapse at its extreme): Sigma_B has rank C - 2, and its
    pseudo-inverse inverts only the nonzero eigenvalues, as numpy's pinv does."""
    rng = np.random.default_rng(data_seed(2))
    num_classes, dim = 4, 9
    labels = rng.integers(0, num_classes, 400)
    centres = 3 * rng.normal(size=(num_classes, dim))
    centres[3] = centres[2]
    features = rng.normal(size=(400, dim)) + centres[labels]
    features -= np.array([features[labels == c].mean(0) for c in range(num_classes)])[labels] - centres[labels]
    geometry = collapse.class_geometry(features, labels, num_classes)
    residuals = features - geometry.means[labels]
    sigma_w = residuals.T @ residuals / len(features)
    sigma_b = geometry.centred.T @ geometry.centred / num_classes
    assert np.linalg.matrix_rank(sigma_b) == num_classes - 2
    expected = np.trace(sigma_w @ np.linalg.pinv(sigma_b)) / num_classes
    eigenvalues = np.sort(np.linalg.eigvalsh(sigma_b))[::-1][: num_classes - 2]
    tolerance = float64_tolerance(expected, sums=(len(features), dim), condition=eigenvalues[0] / eigenvalues[-1])
    assert np.isfinite(expected) and collapse.nc1(features, labels, geometry) == tolerance.approx(expected)


def test_nc1_trace_ratio_against_covariance_matrices():
    features, labels, geometry, _ = random_classes(4)
    num_classes, dim = len(geometry.means), features.shape[1]
    means = [features[labels == c].mean(0) for c in range(num_classes)]
    global_mean = sum(means) / num_classes
    sigma_w = sum(np.outer(h - means[y], h - means[y]) for h, y in zip(features, labels)) / len(features)
    sigma_b = sum(np.outer(m - global_mean, m - global_mean) for m in means) / num_classes
    assert sigma_w.shape == (dim, dim)
    expected = np.trace(sigma_w) / np.trace(sigma_b)
    assert collapse.nc1_trace_ratio(features, labels, geometry) == loop_tolerance(features, geometry, expected).approx(
        expected
    )


def test_cdnv_against_loops_over_samples_and_pairs():
    features, labels, geometry, _ = random_classes(5)
    num_classes = len(geometry.means)
    means, variances = [], []
    for c in range(num_classes):
        members = [h for h, y in zip(features, labels) if y == c]
        mean = sum(members) / len(members)
        means.append(mean)
        variances.append(sum(float(np.sum((h - mean) ** 2)) for h in members) / len(members))
    ordered = [
        (variances[i] + variances[j]) / (2 * float(np.sum((means[i] - means[j]) ** 2)))
        for i in range(num_classes)
        for j in range(num_classes)
        if i != j
    ]
    unordered = [
        (variances[i] + variances[j]) / (2 * float(np.sum((means[i] - means[j]) ** 2)))
        for i in range(num_classes)
        for j in range(i + 1, num_classes)
    ]
    tolerance = loop_tolerance(features, geometry, np.mean(ordered))
    assert collapse.cdnv(features, labels, geometry) == tolerance.approx(np.mean(ordered))
    assert np.mean(unordered) == tolerance.approx(np.mean(ordered))


def test_gnc2_and_etf_error_against_loops():
    features, labels, geometry, _ = random_classes(6)
    num_classes = len(geometry.means)
    means = [features[labels == c].mean(0) for c in range(num_classes)]
    centred = [m - sum(means) / num_classes for m in means]
    unit = [m / np.linalg.norm(m) for m in centred]
    logs = [-np.log(np.linalg.norm(unit[i] - unit[j])) for i in range(num_classes) for j in range(i + 1, num_classes)]
    mean_log = sum(logs) / len(logs)
    expected_gnc2 = np.sqrt(sum((v - mean_log) ** 2 for v in logs) / len(logs))
    # each log-distance is off by the distances' relative error: so is their standard deviation, absolutely
    assert collapse.gnc2(geometry) == loop_tolerance(features, geometry, 1).approx(expected_gnc2)
    gram = np.array([[float(centred[i] @ centred[j]) for j in range(num_classes)] for i in range(num_classes)])
    ideal = np.array([[(i == j) - 1 / num_classes for j in range(num_classes)] for i in range(num_classes)])
    gram_norm = np.sqrt(sum(g**2 for g in gram.ravel()))
    ideal_norm = np.sqrt(sum(t**2 for t in ideal.ravel()))
    expected_etf = np.sqrt(sum((g / gram_norm - t / ideal_norm) ** 2 for g, t in zip(gram.ravel(), ideal.ravel())))
    assert collapse.etf_error(geometry) == loop_tolerance(features, geometry, 2).approx(expected_etf)  # <= 2


def test_self_duality_is_the_frobenius_distance_of_normalised_w_and_means():
    features, labels, geometry, rng = random_classes(7)
    weight = rng.normal(size=geometry.means.shape)
    num_classes, dim = weight.shape
    m = [mu - geometry.means.mean(0) for mu in geometry.means]
    w_norm = np.sqrt(sum(weight[c, k] ** 2 for c in range(num_classes) for k in range(dim)))
    m_norm = np.sqrt(sum(m[c][k] ** 2 for c in range(num_classes) for k in range(dim)))
    squared = sum((weight[c, k] / w_norm - m[c][k] / m_norm) ** 2 for c in range(num_classes) for k in range(dim))
    assert collapse.self_duality(weight, geometry) == loop_tolerance(features, geometry, 2).approx(np.sqrt(squared))


def test_two_imbalanced_classes_by_hand():
    """Class 0: (-2, 1), (-2, -1), (-2, 0); class 1: (2, 0). mu_0 = (-2, 0), mu_1 = (2, 0), mu_G = 0 (the sample
    mean would be (-1, 0)); Tr(Sigma_W) = (1 + 1 + 0 + 0) / 4, Tr(Sigma_B) = (4 + 4) / 2, sigma_0^2 = 2/3,
    sigma_1^2 = 0, ||mu_0 - mu_1||^2 = 16."""
    features = np.array([[-2.0, 1.0], [-2.0, -1.0], [-2.0, 0.0], [2.0, 0.0]])
    labels = np.array([0, 0, 0, 1])
    geometry = collapse.class_geometry(features, labels, 2)
    tolerance = float64_tolerance(1, sums=(4, 2))  # float64 sums over 4 samples and 2 features, values <= 1
    assert collapse.nc1_trace_ratio(features, labels, geometry) == tolerance.approx(0.5 / 4)
    assert collapse.cdnv(features, labels, geometry) == tolerance.approx((2 / 3 + 0) / (2 * 16))
    assert collapse.gnc2(geometry) == 0.0  # one pair: the standard deviation of one value
    assert collapse.etf_error(geometry) == tolerance.approx(0)  # two centred means are always antipodal
    # W/||W||_F = I/sqrt(2), M~^T/||M~||_F = [[-1, 0], [1, 0]]/sqrt(2): squared difference 4/2 + 1/2 + 1/2 = 3
    assert collapse.self_duality(np.eye(2), geometry) == float64_tolerance(np.sqrt(3), sums=(4,)).approx(np.sqrt(3))


def test_three_classes_off_the_simplex_by_hand():
    """Centred means (1, 0), (0, 1), (-1, -1), shifted by (3, 1): pairwise unit distances sqrt(2), sqrt(2 + sqrt(2))
    twice; G = [[1, 0, -1], [0, 1, -1], [-1, -1, 2]], ||G||_F^2 = 10, <G, I - 11^T/3> = Tr G = 4."""
    centred = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    labels = np.array([0, 1, 2, 0, 1, 2])
    features = centred[labels] + np.array([3.0, 1.0])
    geometry = collapse.class_geometry(features, labels, 3)
    # log(1/d): -log(2)/2 once and -log(2 + sqrt(2))/2 twice; the std of (a, b, b) is |a - b| sqrt(2) / 3
    # float64, values of scale 1 from sums over 3 pairs, 9 Gram entries and 2 features: the std of logs and the
    # Frobenius distance are absolute errors at that scale
    tolerance = float64_tolerance(1, sums=(3, 9, 2))
    assert collapse.gnc2(geometry) == tolerance.approx(np.log(1 + 1 / np.sqrt(2)) / (3 * np.sqrt(2)))
    # ||G/sqrt(10) - T/sqrt(2)||_F^2 = 1 + 1 - 2 * 4 / (sqrt(10) sqrt(2))
    assert collapse.etf_error(geometry) == tolerance.approx(np.sqrt(2 - 4 / np.sqrt(5)))
    assert collapse.nc1_trace_ratio(features, labels, geometry) == 0.0


def test_collapse_metrics_writes_the_further_measures(collapsed):
    features, labels, weight, num_classes = collapsed
    rng = np.random.default_rng(data_seed(8))
    noisy = features + 0.3 * rng.normal(size=features.shape)
    dump = {
        "train_features": noisy,
        "train_labels": labels,
        "train_logits": noisy @ weight.T,
        "test_features": features,
        "test_labels": labels,
        "test_logits": features @ weight.T,
        "weight": weight + rng.normal(size=weight.shape),
        "bias": np.zeros(num_classes),
        "head": np.array("linear"),
    }
    metrics = collapse.collapse_metrics(dump, num_classes, [])
    geometry = collapse.class_geometry(noisy, labels, num_classes)
    assert metrics["nc1_trace_ratio"] == collapse.nc1_trace_ratio(noisy, labels, geometry) > 0
    assert metrics["cdnv"] == collapse.cdnv(noisy, labels, geometry) > 0
    assert metrics["gnc2"] == collapse.gnc2(geometry) > 0
    assert metrics["etf_error"] == collapse.etf_error(geometry) > 0
    # the same squared distance of the normalised W and M~ (over C d entries), one its square root
    tolerance = float64_tolerance(metrics["self_duality"], sums=(weight.size,))
    assert metrics["self_duality"] == tolerance.approx(np.sqrt(metrics["nc3"]))
    assert all(isinstance(metrics[k], float) for k in ("nc1_trace_ratio", "cdnv", "gnc2", "self_duality", "etf_error"))
