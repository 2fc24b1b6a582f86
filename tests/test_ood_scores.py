"""Each OOD score against an independent computation (loops, scikit-learn) and known answers."""

import numpy as np
import pytest
from conftest import data_seed
from precision import U64, assert_close, float32_tolerance, float64_tolerance, subspace_error
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler

from nclab import ood
from nclab.config import default_config
from nclab.ood_metrics import auroc


def make_problem(seed: int):
    """Three well-separated non-negative classes; OOD = faint features (low activations) near no class."""
    rng = np.random.default_rng(seed)
    num_classes, dim = 3, 10
    centres = 4.0 * np.eye(num_classes, dim)
    weight = rng.normal(size=(num_classes, dim)) + centres
    bias = rng.normal(size=num_classes)

    def make(n, labels=None, shift=0.0):
        labels = rng.integers(0, num_classes, n) if labels is None else labels
        h = np.abs(centres[labels] + rng.normal(scale=0.7, size=(n, dim)) + shift)
        return ood.Split(h, h @ weight.T + bias, labels)

    train, test = make(300), make(100)
    far = ood.Split(*(lambda h: (h, h @ weight.T + bias))(np.abs(rng.normal(scale=0.7, size=(80, dim)))))
    return train, test, far, weight, bias


@pytest.fixture(scope="module")
def problem():
    """The problem the scores are compared on: seed 0 shifted by NCLAB_TEST_SEED (conftest.data_seed)."""
    return make_problem(data_seed(0))


@pytest.fixture(scope="module")
def seed0_problem():
    """The problem of seed 0 always, for claims about how well the detectors separate it (AUROC thresholds),
    which hold for this draw, not for every draw."""
    return make_problem(0)


def score(method, problem, **hyper):
    train, test, far, weight, bias = problem
    scorer = ood.fit_score(method, train, weight, bias, **hyper)
    return scorer(test), scorer(far)


def test_logit_scores_against_loops(problem):
    _, test, _, _, _ = problem
    z = test.logits
    msp = [np.exp(row).max() / np.exp(row).sum() for row in z]
    energy_t2 = [2.0 * np.log(np.sum(np.exp(row / 2.0))) for row in z]
    # float64 both; the loops exponentiate z unshifted, whose relative rounding grows with |z| (exp's condition)
    tolerance = float64_tolerance(1, sums=(z.shape[1],), condition=np.abs(z).max())
    np.testing.assert_allclose(score("msp", problem)[0], msp, **tolerance)
    assert np.array_equal(score("maxlogit", problem)[0], z.max(1))  # the same float64 values: exact
    np.testing.assert_allclose(
        score("energy", problem, temperature=2.0)[0], energy_t2, **float64_tolerance(z, sums=(z.shape[1],))
    )


def test_mahalanobis_against_loop(problem):
    train, test, _, _, _ = problem
    means = [train.features[train.labels == c].mean(0) for c in range(3)]
    cov = sum(np.outer(h - means[y], h - means[y]) for h, y in zip(train.features, train.labels)) / len(train.labels)
    precision = np.linalg.pinv(cov)
    expected = [max(-(h - m) @ precision @ (h - m) for m in means) for h in test.features]
    # float64 both: a covariance over N samples, distances over D features, a pseudo-inverse that amplifies the
    # covariance's rounding by its condition number
    tolerance = float64_tolerance(expected, sums=train.features.shape, condition=np.linalg.cond(cov))
    np.testing.assert_allclose(score("mahalanobis", problem)[0], expected, **tolerance)


def test_vim_against_reference_recipe(problem):
    train, test, _, weight, bias = problem
    dim = 4
    u = -np.linalg.pinv(weight) @ bias
    x = train.features - u
    cov = np.cov(x.T, bias=True, aweights=None) + np.outer(x.mean(0), x.mean(0))  # uncentred covariance
    eig_vals, eig_vecs = np.linalg.eig(cov)
    residual = eig_vecs[:, np.argsort(eig_vals)[::-1][dim:]].real
    vlogit_train = np.linalg.norm(x @ residual, axis=1)
    alpha = train.logits.max(1).mean() / vlogit_train.mean()
    energy = np.log(np.exp(test.logits).sum(1))
    r = np.linalg.norm((test.features - u) @ residual, axis=1)
    expected = energy - alpha * r
    # float64 both, two decompositions (eig, eigh) of the residual subspace, each off by precision.subspace_error
    # in r^2 / 2; alpha inherits the training residuals' mean relative error; the energy, unshifted, exp's
    squared = subspace_error(x, dim, U64)
    alpha_error = np.mean(2 * squared(x) / vlogit_train) / vlogit_train.mean()
    energy_error = float64_tolerance(1, sums=(test.logits.shape[1],), condition=np.abs(test.logits).max()).atol
    atol = alpha * (2 * squared(test.features - u) / r + alpha_error * r) + energy_error
    assert_close(score("vim", problem, dim=dim)[0], expected, atol, err_msg="vim")


def test_neco_against_scikit_learn_pipeline(problem):
    train, test, _, _, _ = problem
    scaler = StandardScaler().fit(train.features)
    pca = PCA().fit(scaler.transform(train.features))
    s = scaler.transform(test.features)
    expected = np.linalg.norm(pca.transform(s)[:, :3], axis=1) / np.linalg.norm(s, axis=1)
    # float64 both: two decompositions (eigh, scikit-learn's SVD) of the principal subspace, each off by
    # precision.subspace_error in ||s P||^2 / 2; PCA.transform subtracts the train mean of s(h), zero to within
    # float64 rounding of a mean over N samples, which moves ||s P|| by at most that times sqrt(D)
    scaled = scaler.transform(train.features)
    projected = np.linalg.norm(pca.transform(s)[:, :3], axis=1)
    mean_shift = float64_tolerance(scaled, sums=(len(scaled),)).atol * np.sqrt(scaled.shape[1])
    atol = (2 * subspace_error(scaled, 3, U64)(s) / projected + mean_shift) / np.linalg.norm(s, axis=1)
    assert_close(score("neco", problem, dim=3)[0], expected, atol, err_msg="neco")


def test_knn_against_scikit_learn(problem):
    train, test, _, _, _ = problem
    unit = lambda h: h / np.linalg.norm(h, axis=1, keepdims=True)  # noqa: E731
    distances, _ = NearestNeighbors(n_neighbors=5).fit(unit(train.features)).kneighbors(unit(test.features))
    # nclab's KNN takes float32 cosines (D terms) of the unit features, then sqrt(2 - 2 cos), of slope 1 / distance
    tolerance = float32_tolerance(1 / distances[:, -1].min(), sums=(train.features.shape[1],))
    np.testing.assert_allclose(score("knn", problem, k=5)[0], -distances[:, -1], **tolerance)


def hyperparameters(method: str) -> dict:
    """``method``'s hyperparameters for the 10-dimensional, 3-class problem: config.yaml's with the schema's
    defaults, with the subspace dimensions, neighbour counts and top-M scaled to the problem."""
    return {**DEFAULTS.get(method, {}), **PROBLEM_SIZED.get(method, {})}


DEFAULTS = default_config()["ood"]["hyperparameters"]
PROBLEM_SIZED = {
    "vim": {"dim": 5},
    "vim_residual": {"dim": 5},
    "neco": {"dim": 2},
    "knn": {"k": 5},
    "nnguide": {"k": 5},
    "gen": {"top_m": 3},
}


@pytest.mark.parametrize("method", ood.SCORES)
def test_scores_rank_id_above_far_ood(seed0_problem, method):
    id_scores, ood_scores = score(method, seed0_problem, **hyperparameters(method))
    assert auroc(id_scores, ood_scores) > 0.6
    assert auroc(-id_scores, -ood_scores) < 0.4  # a sign error shows as AUROC < 0.5


@pytest.mark.parametrize("method", ["react", "ash_b", "ash_p", "ash_s", "scale"])
def test_an_all_zero_feature_is_shaped_to_zero_not_nan(problem, method):
    """A dead network's all-zero post-ReLU feature: every shaping keeps it zero, so its score is the energy of
    the bias (ASH-S and SCALE divide by the kept entries' sum, which is 0 there)."""
    from scipy.special import logsumexp

    train, _, _, weight, bias = problem
    scorer = ood.fit_score(method, train, weight, bias, percentile=90)
    zero = np.zeros((2, train.features.shape[1]))
    expected = logsumexp(bias)  # float64 both: the energy of the same float64 bias
    np.testing.assert_allclose(
        scorer(ood.Split(zero, zero @ weight.T + bias)), expected, **float64_tolerance(bias, sums=(len(bias),))
    )


def test_registry_checks_hyperparameters(problem):
    assert ood.hyperparameters("knn") == ["k"]
    with pytest.raises(ValueError, match=r"unknown: \['dim'\]"):
        score("msp", problem, dim=3)
    with pytest.raises(ValueError, match=r"missing: \['temperature'\]"):
        score("energy", problem)
    with pytest.raises(ValueError, match="ViM dim must be in 1..9"):
        score("vim", problem, dim=10)
    with pytest.raises(ValueError, match="unknown OOD score 'odin'"):
        ood.hyperparameters("odin")


@pytest.mark.parametrize("head", ["linear", "normed", "etf"])
def test_vim_is_left_empty_on_heads_whose_logits_are_not_affine_and_nothing_else_is(problem, head):
    """ViM's origin u = -pinv(W) b assumes z = W h + b: on a normalised or ETF head it is not the published
    score, so its scores are NaN (an empty cell); every other score is computed on every head."""
    from nclab.ood_metrics import METRICS, metric_row

    train, test, far, weight, bias = problem
    dump = {
        "head": np.array(head),
        "weight": weight,
        "bias": bias,
        "train_features": train.features,
        "train_logits": train.logits,
        "train_labels": train.labels,
        "test_features": test.features,
        "test_logits": test.logits,
        "test_labels": test.labels,
        "far_features": far.features,
        "far_logits": far.logits,
        "far_labels": np.zeros(len(far.features), int),
    }
    for method in ood.SCORES:
        scores = ood.score_dump(dump, method, ["test", "far"], **hyperparameters(method))
        assert [len(scores[s]) for s in ("test", "far")] == [len(test.labels), len(far.features)]
        empty = ood.SCORES[method].needs_affine_logits and head != "linear"
        assert np.isnan(scores["test"]).all() == empty and np.isfinite(scores["far"]).all() == (not empty), method
        row = metric_row(scores["test"], scores["far"])
        assert set(row) == set(METRICS) and all(np.isnan(v) == empty for v in row.values()), (method, row)
    with pytest.raises(ValueError, match="NaN"):  # a NaN that is not "not computed" stays an error
        metric_row(np.r_[np.nan, 1.0, 2.0], np.r_[0.5, 0.1])
