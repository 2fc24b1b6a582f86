"""NC metrics against brute-force loops and the closed-form case of a perfect simplex ETF."""

import numpy as np
import pytest

from nclab import collapse


def simplex_etf(num_classes: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """(C, d) rows forming a simplex equiangular tight frame, randomly rotated in R^d."""
    etf = np.sqrt(num_classes / (num_classes - 1)) * (np.eye(num_classes) - 1.0 / num_classes)
    rotation, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    return etf @ rotation[:num_classes]


@pytest.fixture
def collapsed():
    """Features equal to their class means (an ETF shifted by a mean orthogonal to it), W = 3 * M~^T."""
    rng = np.random.default_rng(0)
    num_classes, dim = 5, 12
    centred = 4.0 * simplex_etf(num_classes, dim, rng)
    offset = rng.normal(size=dim)
    basis = np.linalg.svd(centred.T, full_matrices=True)[0][:, num_classes - 1 :]  # orthogonal complement
    global_mean = basis @ (basis.T @ offset)
    labels = np.repeat(np.arange(num_classes), 7)
    features = centred[labels] + global_mean
    return features, labels, 3.0 * centred, num_classes


def test_perfect_etf_is_fully_collapsed(collapsed):
    features, labels, weight, num_classes = collapsed
    geometry = collapse.class_geometry(features, labels, num_classes)
    assert collapse.nc1(features, labels, geometry) == pytest.approx(0, abs=1e-20)
    assert collapse.nc3(weight, geometry) == pytest.approx(0, abs=1e-20)
    assert collapse.equiangularity(geometry.centred) == pytest.approx(0, abs=1e-12)
    assert collapse.equinorm(geometry.centred) == pytest.approx(0, abs=1e-12)
    assert collapse.equiangularity(weight) == pytest.approx(0, abs=1e-12)
    assert collapse.max_angle(geometry.centred) == pytest.approx(0, abs=1e-12)
    assert collapse.alignment(weight, geometry) == pytest.approx(np.ones(num_classes))
    assert collapse.nc4(features @ weight.T, features, geometry) == 0.0


def test_nc1_matches_pseudo_inverse_of_between_class_covariance():
    rng = np.random.default_rng(1)
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
    assert collapse.nc1(features, labels, geometry) == pytest.approx(expected, rel=1e-9)
    assert np.linalg.matrix_rank(sigma_b) == num_classes - 1


def test_global_mean_is_mean_of_class_means_under_imbalance():
    features = np.array([[0.0], [0.0], [0.0], [4.0]])
    geometry = collapse.class_geometry(features, np.array([0, 0, 0, 1]), 2)
    assert geometry.global_mean == pytest.approx([2.0])  # the sample mean would be 1.0


def test_nc2_nc3_nc5_against_loops():
    rng = np.random.default_rng(2)
    num_classes, dim = 5, 6
    labels = np.repeat(np.arange(num_classes), 10)
    features = np.abs(rng.normal(size=(50, dim)))
    weight = rng.normal(size=(num_classes, dim))
    ood = np.abs(rng.normal(size=(30, dim)))
    geometry = collapse.class_geometry(features, labels, num_classes)
    m = geometry.centred
    cos = lambda a, b: a @ b / np.linalg.norm(a) / np.linalg.norm(b)  # noqa: E731
    pairs = [
        abs(cos(m[i], m[j]) + 1 / (num_classes - 1)) for i in range(num_classes) for j in range(num_classes) if i != j
    ]
    assert collapse.equiangularity(m) == pytest.approx(np.mean(pairs))
    norms = [np.linalg.norm(w) for w in weight]
    assert collapse.equinorm(weight) == pytest.approx(np.std(norms) / np.mean(norms))
    nc3 = sum(((weight[c] / np.linalg.norm(weight) - m[c] / np.linalg.norm(m)) ** 2).sum() for c in range(num_classes))
    assert collapse.nc3(weight, geometry) == pytest.approx(nc3)
    ood_mean = ood.mean(0)
    nc5 = np.mean([abs(cos(geometry.means[c], ood_mean)) for c in range(num_classes)])
    assert collapse.nc5(ood, geometry, centred=False) == pytest.approx(nc5)
    nc5c = np.mean([abs(cos(m[c], ood_mean - geometry.global_mean)) for c in range(num_classes)])
    assert collapse.nc5(ood, geometry, centred=True) == pytest.approx(nc5c)
    maxang = np.mean([max(cos(m[i], m[j]) for j in range(num_classes) if j != i) for i in range(num_classes)])
    assert collapse.max_angle(m) == pytest.approx(maxang + 1 / (num_classes - 1))


def test_nc4_counts_disagreements_with_nearest_centre():
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(3), 5)
    features = rng.normal(size=(15, 4))
    logits = rng.normal(size=(15, 3))
    geometry = collapse.class_geometry(features, labels, 3)
    ncc = [np.argmin([np.linalg.norm(h - mu) for mu in geometry.means]) for h in features]
    expected = np.mean([np.argmax(z) != p for z, p in zip(logits, ncc)])
    assert collapse.nc4(logits, features, geometry) == pytest.approx(expected)


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
    assert metrics["nc3"] == pytest.approx(0, abs=1e-12)
    assert metrics["nc2_equinorm_classifier"] == pytest.approx(0, abs=1e-12)
    assert metrics["alignment_mean"] == pytest.approx(linear["alignment_mean"])  # a cosine: unchanged
    assert collapse.class_table({**dump, "head": np.array(head)}, num_classes)["classifier_norm"] == pytest.approx(1)


def test_further_measures_vanish_on_a_perfect_etf(collapsed):
    features, labels, weight, num_classes = collapsed
    geometry = collapse.class_geometry(features, labels, num_classes)
    assert collapse.nc1_trace_ratio(features, labels, geometry) == pytest.approx(0, abs=1e-20)
    assert collapse.cdnv(features, labels, geometry) == pytest.approx(0, abs=1e-20)
    assert collapse.gnc2(geometry) == pytest.approx(0, abs=1e-12)
    assert collapse.etf_error(geometry) == pytest.approx(0, abs=1e-12)
    assert collapse.self_duality(weight, geometry) == pytest.approx(0, abs=1e-12)
    assert collapse.self_duality(geometry.centred / np.linalg.norm(geometry.centred), geometry) == pytest.approx(
        0, abs=1e-12
    )


def random_classes(seed: int, num_classes: int = 5, dim: int = 7, samples: int = 60):
    """Imbalanced non-negative features (a nonzero global mean), every class present."""
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.arange(num_classes), rng.integers(0, num_classes, samples - num_classes)])
    features = np.abs(rng.normal(size=(samples, dim)) + 2 * rng.normal(size=(num_classes, dim))[labels]) + 1.0
    return features, labels, collapse.class_geometry(features, labels, num_classes), rng


def test_nc1_trace_ratio_against_covariance_matrices():
    features, labels, geometry, _ = random_classes(4)
    num_classes, dim = len(geometry.means), features.shape[1]
    means = [features[labels == c].mean(0) for c in range(num_classes)]
    global_mean = sum(means) / num_classes
    sigma_w = sum(np.outer(h - means[y], h - means[y]) for h, y in zip(features, labels)) / len(features)
    sigma_b = sum(np.outer(m - global_mean, m - global_mean) for m in means) / num_classes
    assert sigma_w.shape == (dim, dim)
    expected = np.trace(sigma_w) / np.trace(sigma_b)
    assert collapse.nc1_trace_ratio(features, labels, geometry) == pytest.approx(expected, rel=1e-12)


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
    assert collapse.cdnv(features, labels, geometry) == pytest.approx(np.mean(ordered), rel=1e-12)
    assert np.mean(unordered) == pytest.approx(np.mean(ordered), rel=1e-12)


def test_gnc2_and_etf_error_against_loops():
    features, labels, geometry, _ = random_classes(6)
    num_classes = len(geometry.means)
    means = [features[labels == c].mean(0) for c in range(num_classes)]
    centred = [m - sum(means) / num_classes for m in means]
    unit = [m / np.linalg.norm(m) for m in centred]
    logs = [-np.log(np.linalg.norm(unit[i] - unit[j])) for i in range(num_classes) for j in range(i + 1, num_classes)]
    mean_log = sum(logs) / len(logs)
    expected_gnc2 = np.sqrt(sum((v - mean_log) ** 2 for v in logs) / len(logs))
    assert collapse.gnc2(geometry) == pytest.approx(expected_gnc2, rel=1e-10)
    gram = np.array([[float(centred[i] @ centred[j]) for j in range(num_classes)] for i in range(num_classes)])
    ideal = np.array([[(i == j) - 1 / num_classes for j in range(num_classes)] for i in range(num_classes)])
    gram_norm = np.sqrt(sum(g**2 for g in gram.ravel()))
    ideal_norm = np.sqrt(sum(t**2 for t in ideal.ravel()))
    expected_etf = np.sqrt(sum((g / gram_norm - t / ideal_norm) ** 2 for g, t in zip(gram.ravel(), ideal.ravel())))
    assert collapse.etf_error(geometry) == pytest.approx(expected_etf, rel=1e-10)


def test_self_duality_is_the_frobenius_distance_of_normalised_w_and_means():
    features, labels, geometry, rng = random_classes(7)
    weight = rng.normal(size=geometry.means.shape)
    num_classes, dim = weight.shape
    m = [mu - geometry.means.mean(0) for mu in geometry.means]
    w_norm = np.sqrt(sum(weight[c, k] ** 2 for c in range(num_classes) for k in range(dim)))
    m_norm = np.sqrt(sum(m[c][k] ** 2 for c in range(num_classes) for k in range(dim)))
    squared = sum((weight[c, k] / w_norm - m[c][k] / m_norm) ** 2 for c in range(num_classes) for k in range(dim))
    assert collapse.self_duality(weight, geometry) == pytest.approx(np.sqrt(squared), rel=1e-12)


def test_two_imbalanced_classes_by_hand():
    """Class 0: (-2, 1), (-2, -1), (-2, 0); class 1: (2, 0). mu_0 = (-2, 0), mu_1 = (2, 0), mu_G = 0 (the sample
    mean would be (-1, 0)); Tr(Sigma_W) = (1 + 1 + 0 + 0) / 4, Tr(Sigma_B) = (4 + 4) / 2, sigma_0^2 = 2/3,
    sigma_1^2 = 0, ||mu_0 - mu_1||^2 = 16."""
    features = np.array([[-2.0, 1.0], [-2.0, -1.0], [-2.0, 0.0], [2.0, 0.0]])
    labels = np.array([0, 0, 0, 1])
    geometry = collapse.class_geometry(features, labels, 2)
    assert collapse.nc1_trace_ratio(features, labels, geometry) == pytest.approx(0.5 / 4)
    assert collapse.cdnv(features, labels, geometry) == pytest.approx((2 / 3 + 0) / (2 * 16))
    assert collapse.gnc2(geometry) == pytest.approx(0, abs=1e-12)  # one pair
    assert collapse.etf_error(geometry) == pytest.approx(0, abs=1e-12)  # two centred means are always antipodal
    # W/||W||_F = I/sqrt(2), M~^T/||M~||_F = [[-1, 0], [1, 0]]/sqrt(2): squared difference 4/2 + 1/2 + 1/2 = 3
    assert collapse.self_duality(np.eye(2), geometry) == pytest.approx(np.sqrt(3))


def test_three_classes_off_the_simplex_by_hand():
    """Centred means (1, 0), (0, 1), (-1, -1), shifted by (3, 1): pairwise unit distances sqrt(2), sqrt(2 + sqrt(2))
    twice; G = [[1, 0, -1], [0, 1, -1], [-1, -1, 2]], ||G||_F^2 = 10, <G, I - 11^T/3> = Tr G = 4."""
    centred = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    labels = np.array([0, 1, 2, 0, 1, 2])
    features = centred[labels] + np.array([3.0, 1.0])
    geometry = collapse.class_geometry(features, labels, 3)
    # log(1/d): -log(2)/2 once and -log(2 + sqrt(2))/2 twice; the std of (a, b, b) is |a - b| sqrt(2) / 3
    assert collapse.gnc2(geometry) == pytest.approx(np.log(1 + 1 / np.sqrt(2)) / (3 * np.sqrt(2)), rel=1e-12)
    # ||G/sqrt(10) - T/sqrt(2)||_F^2 = 1 + 1 - 2 * 4 / (sqrt(10) sqrt(2))
    assert collapse.etf_error(geometry) == pytest.approx(np.sqrt(2 - 4 / np.sqrt(5)), rel=1e-12)
    assert collapse.nc1_trace_ratio(features, labels, geometry) == 0.0


def test_collapse_metrics_writes_the_further_measures(collapsed):
    features, labels, weight, num_classes = collapsed
    rng = np.random.default_rng(8)
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
    assert metrics["self_duality"] == pytest.approx(np.sqrt(metrics["nc3"]))
    assert all(isinstance(metrics[k], float) for k in ("nc1_trace_ratio", "cdnv", "gnc2", "self_duality", "etf_error"))
