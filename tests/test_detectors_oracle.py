"""Each OOD detector against an independent implementation: pytorch-ood 0.4.0 (a test-only dependency, whose
scores are outlier scores, so they are negated) where it has the method, otherwise autograd or an explicit
eigendecomposition; on a synthetic CIFAR-like problem and on the tiny workflow's real dumps."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY, data_seed
from precision import (
    U32,
    U64,
    ambiguous_pairs,
    assert_close,
    float32_tolerance,
    float64_tolerance,
    growth,
    half_pairs,
    subspace_error,
)

from nclab import ood
from nclab.config import default_config
from nclab.io import load_dump
from nclab.ood_metrics import auroc
from nclab.torchvision_compat import import_torchvision

import_torchvision()  # pytorch-ood imports torchvision: beside a CPU torch, only after nclab's shim
from pytorch_ood import detector as oracle  # noqa: E402


def linear_head(weight: np.ndarray, bias: np.ndarray) -> torch.nn.Linear:
    head = torch.nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        head.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
        head.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
    return head


def pytorch_ood_scores(method: str, train: ood.Split, weight, bias, hyper: dict, splits: list[ood.Split]):
    """pytorch-ood's detector of ``method`` fitted on ``train``, as in-distribution scores (negated outlier
    scores) of each split; None where pytorch-ood has no such detector."""
    t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    head, z, y = linear_head(weight, bias), t(train.features), torch.as_tensor(train.labels)
    w, b = t(weight), t(bias)
    maps = lambda s: t(s.features)[:, :, None, None]  # noqa: E731  feature-map detectors take (B, D, 1, 1)
    flat_head = torch.nn.Sequential(torch.nn.Flatten(), head)
    logits = {
        "msp": lambda: oracle.MaxSoftmax(None),
        "maxlogit": lambda: oracle.MaxLogit(None),
        "energy": lambda: oracle.EnergyBased(None, t=hyper.get("temperature", 1.0)),
        "entropy": lambda: oracle.Entropy(None),
        "gen": lambda: oracle.GEN(None, gamma=hyper.get("gamma"), M=hyper.get("top_m")),
        "kl_matching": lambda: oracle.KLMatching(None).fit_logits(t(train.logits), y),
    }
    features = {
        "mahalanobis": lambda: oracle.Mahalanobis(None).fit_features(z, y),
        "rmds": lambda: oracle.RMD(None).fit_features(z, y),
        "vim": lambda: oracle.ViM(None, d=hyper.get("dim"), w=w, b=b).fit_features(z, y),
        "knn": lambda: oracle.KNN(None, k=hyper.get("k")).fit_features(z, y),
        "she": lambda: oracle.SHE(None, head).fit_features(z, y),
        "nnguide": lambda: oracle.NNGuide(None, head, k=hyper.get("k", 1)).fit_features(z, y),
        "fdbd": lambda: oracle.fDBD(None, head).fit_features(z),
        "nci": lambda: oracle.NCI(None, head, alpha=hyper.get("alpha", 0.0)).fit_features(z),
        "dice": lambda: oracle.DICE(None, w, b, p=hyper.get("percentile", 50) / 100).fit_features(z, y),
    }
    shaping = {
        "react": lambda: oracle.ReAct(None, flat_head, percentile=hyper.get("percentile", 50) / 100).fit_feature_maps(
            t(train.features)[:, :, None, None], y
        ),
        "ash_b": lambda: oracle.ASH(None, flat_head, variant="ash-b", percentile=hyper.get("percentile", 50) / 100),
        "ash_p": lambda: oracle.ASH(None, flat_head, variant="ash-p", percentile=hyper.get("percentile", 50) / 100),
        "ash_s": lambda: oracle.ASH(None, flat_head, variant="ash-s", percentile=hyper.get("percentile", 50) / 100),
        "scale": lambda: oracle.SCALE(None, flat_head, percentile=hyper.get("percentile", 50) / 100),
    }
    with torch.no_grad():
        if method in logits:
            detector = logits[method]()
            return [-detector.predict_logits(t(s.logits)).double().numpy() for s in splits]
        if method in features:
            detector = features[method]()
            return [-detector.predict_features(t(s.features)).double().numpy() for s in splits]
        if method in shaping:
            detector = shaping[method]()
            return [-detector.predict_feature_maps(maps(s)).double().numpy() for s in splits]
    return None


# Tested below otherwise: NECO (test_ood_scores, scikit-learn), ViM's residual and GradNorm (no pytorch-ood
# detector of that definition), GEN (pytorch-ood clamps p to [1e-7, 1 - 1e-7]; the authors' code does not).
ORACLE_METHODS = [m for m in ood.SCORES if m not in ("neco", "vim_residual", "gradnorm", "gen")]
# pytorch-ood's covariances are sums over the N training samples, not divided by N (and get a ridge 1e-6 I), and
# its Mahalanobis score carries the Gaussian log-density's factor -1/2: ours are these multiples of its scores.
SCALED = {"mahalanobis": lambda n: 2 * n, "rmds": lambda n: n}


def cifar_like(seed: int = 0, num_classes: int = 6, dim: int = 48):
    """Post-ReLU-like features clustered by class (train, ID test) and faint, unclustered OOD features; ``seed``
    shifted by NCLAB_TEST_SEED (conftest.data_seed)."""
    rng = np.random.default_rng(data_seed(seed))
    means = rng.gamma(2.0, 0.5, size=(num_classes, dim))
    weight = (means - means.mean(axis=0)) + rng.normal(scale=0.1, size=(num_classes, dim))
    bias = rng.normal(scale=0.1, size=num_classes)

    def split(n: int, centre=None) -> ood.Split:
        labels = rng.integers(0, num_classes, n)
        h = np.maximum((means[labels] if centre is None else centre) + rng.normal(0, 0.6, (n, dim)), 0)
        return ood.Split(h, h @ weight.T + bias, labels)

    return split(600), split(200), split(200, 0.6 * means.mean(axis=0)), weight, bias


def problem_hyperparameters(method: str, dim: int, classes: int) -> dict:
    """config.yaml's hyperparameters of ``method`` (schema defaults filled in), sized to the problem."""
    sized = {
        # ViM's principal subspace ends at the eigengap below the C leading eigenvectors of the uncentred
        # covariance (the mean and the C - 1 class directions; a gap of about 1 here), where pytorch-ood's float32
        # subspace is well-conditioned (vim_tolerance about 5e-3). At D / 2 it would cut through the noise bulk,
        # whose eigenvalues are a few 1e-3 apart: the float32 scores there move by up to 1e-2, and
        # vim_tolerance, following the gaps, allows 0.1 to 0.8, too loose a comparison to prove much.
        "vim": {"dim": classes},
        "vim_residual": {"dim": dim // 2},
        "neco": {"dim": classes - 1},
        "gen": {"top_m": classes},
        "knn": {"k": 10},
        "nnguide": {"k": 10},
    }
    return {**default_config()["ood"]["hyperparameters"].get(method, {}), **sized.get(method, {})}


def residual_error(train: ood.Split, weight, bias, dim: int, unit_roundoff: float = U32):
    """x -> (a bound on the rounding error of r(x) = ||(x - u) R||, r(x)), R ViM's residual subspace of the
    training features computed at ``unit_roundoff``: precision.subspace_error's bound on r^2 / 2, over r."""
    origin = -np.linalg.pinv(weight) @ bias
    squared = subspace_error(train.features - origin, dim, unit_roundoff)
    residual = subspace_residual(train.features - origin, dim)

    def error(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r = residual(features - origin)
        return squared(features - origin) / r, r

    return error


def subspace_residual(samples: np.ndarray, dim: int):
    """x -> ||x R||, R the eigenvectors of samples^T samples / N beyond the top ``dim`` (float64)."""
    eigenvalues, eigenvectors = np.linalg.eigh(samples.T @ samples / len(samples))
    residual = eigenvectors[:, np.argsort(eigenvalues)[::-1][dim:]]
    return lambda x: np.linalg.norm(x @ residual, axis=1)


def vim_tolerance(train: ood.Split, weight, bias, dim: int, splits: list[ood.Split]) -> np.ndarray:
    """Per score, how far pytorch-ood's float32 ViM score can be from ours through its residual subspace: alpha
    times the error of r(x) (:func:`residual_error`), plus alpha's relative error (the training residuals' mean
    error over their mean) times alpha r(x). The energy's rounding is added in :func:`oracle_tolerance`."""
    error = residual_error(train, weight, bias, dim)
    train_error, train_r = error(train.features)
    alpha = train.logits.max(axis=1).mean() / train_r.mean()
    bounds = [error(s.features) for s in splits]
    return np.concatenate([alpha * (e + r * train_error.mean() / train_r.mean()) for e, r in bounds])


def oracle_tolerance(method, train: ood.Split, weight, bias, hyper: dict, splits, ours) -> np.ndarray | float:
    """How far pytorch-ood's float32 scores of ``method`` can be from ours (float64, or float32 where nclab
    computes in float32: KNN, NNGuide), derived as in tests/precision.py from the float32 sums each score passes
    through: C classes in a softmax or logsumexp, D features in a logit, norm or distance, N training samples in
    a fitted mean, percentile or covariance, k neighbours in a top-k mean."""
    n, d = np.shape(train.features)
    c = len(weight)
    everything = [train, *splits]
    scores = np.concatenate(ours)
    logits = max(np.abs(s.logits).max() for s in everything)
    # a logit's D terms w_cj h_j + b_c: the scale of the rounding of every recomputed logit and energy
    terms = max((np.abs(s.features) @ np.abs(weight).T + np.abs(bias)).max() for s in everything)
    head = max(logits, terms, np.abs(scores).max())  # the largest magnitude any intermediate reaches
    if method in ("msp", "maxlogit", "energy"):  # the logits, rounded to float32, in a softmax or logsumexp
        return float32_tolerance(logits, sums=(c,)).atol
    if method == "entropy":  # pytorch-ood clips p to >= 1e-7: each of the C - 1 smaller p_c adds <= 1e-7 ln 1e7
        return float32_tolerance(logits, sums=(c,), bias=(c - 1) * 1e-7 * math.log(1e7)).atol
    if method == "kl_matching":  # templates: mean softmax over the N training samples
        return float32_tolerance(logits, sums=(n, c)).atol
    if method in SCALED:
        return covariance_tolerance(train, scores)
    if method == "vim":
        energy = float32_tolerance(head, sums=(d, c)).atol
        return vim_tolerance(train, weight, bias, hyper["dim"], splits) + energy
    if method == "knn":  # both in float32: a cosine over D features, then sqrt(2 - 2 cos), of slope 1 / score
        return float32_tolerance(1 / np.abs(scores).min(), sums=(d, d)).atol
    if method == "nnguide":  # both in float32: the bank's energies (D, C), similarities (D), top-k mean (k)
        return float32_tolerance(head, sums=(d, c, d, hyper["k"])).atol
    # the feature detectors with the head (SHE, fDBD, NCI, DICE) and the shaping ones (ReAct, ASH, SCALE):
    # training means or percentiles over N, logits over D, an energy over C
    return float32_tolerance(head, sums=(n, d, c)).atol


def covariance_tolerance(train: ood.Split, scores: np.ndarray) -> float:
    """How far pytorch-ood's float32 Mahalanobis-type ``scores`` can be from ours: an inverse of the N-sample
    covariance amplifies its rounding by its condition number, and its ridge 1e-6 I shifts it."""
    n, d = np.shape(train.features)
    covariances = [
        np.cov(train.features[train.labels == k].T, bias=True) * np.mean(train.labels == k)
        for k in np.unique(train.labels)
    ]
    within = sum(covariances)
    condition = max(np.linalg.cond(within), np.linalg.cond(np.cov(train.features.T, bias=True)))
    ridge = 1e-6 / (n * np.linalg.eigvalsh(within)[0])  # 1e-6 I against the smallest eigenvalue of N Sigma
    return float32_tolerance(scores, sums=(n, d), condition=condition, bias=ridge * np.abs(scores).max()).atol


def assert_same_detector(method, train, weight, bias, hyper, splits):
    """Our scores equal pytorch-ood's to within its float32 precision, and so do the AUROCs: exactly, in ordered
    ID-OOD pairs, except for pairs whose scores are closer than the tolerance, whose order float32 can swap."""
    ours = [ood.fit_score(method, train, weight, bias, **hyper)(s) for s in splits]
    theirs = pytorch_ood_scores(method, train, weight, bias, hyper, splits)
    if method in SCALED:
        theirs = [SCALED[method](len(train.features)) * s for s in theirs]
    atol = oracle_tolerance(method, train, weight, bias, hyper, splits, ours)
    assert_close(np.concatenate(ours), np.concatenate(theirs), atol, err_msg=method)
    sizes = [len(s) for s in ours]
    swappable = ambiguous_pairs(*ours, np.max(atol))
    difference = half_pairs(auroc(*ours), *sizes) - half_pairs(auroc(*theirs), *sizes)
    assert abs(difference) <= 2 * swappable, (method, auroc(*ours), auroc(*theirs), swappable)


def every_class_predicted_right(train: ood.Split) -> bool:
    """pytorch-ood's SHE needs a correctly classified training sample of every class (ours then falls back to
    all of the class's samples): some data seeds draw a class the head never predicts right."""
    right = train.labels[np.argmax(train.logits, axis=1) == train.labels]
    return set(np.unique(train.labels)) <= set(right)


@pytest.mark.parametrize("method", ORACLE_METHODS)
def test_detector_equals_pytorch_ood(method):
    train, test, far, weight, bias = cifar_like()
    if method == "she" and not every_class_predicted_right(train):
        pytest.skip("a class without a correct training prediction: pytorch-ood's SHE is undefined")
    hyper = problem_hyperparameters(method, train.features.shape[1], weight.shape[0])
    assert_same_detector(method, train, weight, bias, hyper, [test, far])


def test_a_wrong_detector_is_caught_by_the_oracle():
    """The comparison fails on a plausible mistake: ReAct clipping at the percentile of each sample's own entries
    instead of the training set's, or DICE keeping the smallest contributions."""
    train, test, far, weight, bias = cifar_like()

    def wrong_react(s: ood.Split) -> np.ndarray:
        clipped = np.minimum(s.features, np.percentile(s.features, 90, axis=1, keepdims=True))
        return ood._energy(clipped @ weight.T + bias)

    hyper, splits = {"percentile": 90}, [test, far]

    def assert_caught(method: str, wrong: list[np.ndarray]) -> None:
        theirs = pytorch_ood_scores(method, train, weight, bias, hyper, splits)
        with pytest.raises(AssertionError, match="beyond tolerance"):
            assert_close(
                np.concatenate(wrong),
                np.concatenate(theirs),
                oracle_tolerance(method, train, weight, bias, hyper, splits, wrong),
            )

    assert_caught("react", [wrong_react(s) for s in splits])
    assert_caught("dice", [ood.fit_score("dice", train, -weight, bias, **hyper)(s) for s in splits])


def test_gen_follows_the_authors_formula_and_differs_from_pytorch_ood_only_by_its_clamp():
    """GEN as Liu et al.'s code computes it (a loop over samples), and pytorch-ood's value once our
    probabilities are clamped as pytorch-ood clamps them (pytorch-ood averages over the M terms: the same
    ranking as the sum)."""
    train, test, far, weight, bias = cifar_like()
    gamma, top_m = 0.1, 4
    ours = ood.fit_score("gen", train, weight, bias, gamma=gamma, top_m=top_m)(test)
    expected, top = [], []
    for z in test.logits:
        p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        top.append(sorted(p)[-top_m:])
        expected.append(-sum(q**gamma * (1 - q) ** gamma for q in top[-1]))
    # float64 both, p to within delta = u64 growth(C) (a C-term softmax). In a term q^g (1 - q)^g, q^g is
    # well-conditioned (relative error g delta), but 1 - q cancels near q = 1: (1 - q)^g moves by at most
    # g delta (1 - q)^(g - 1) to first order, and never by more than delta^g (x^g is g-Hölder continuous)
    delta, top = float64_tolerance(1, sums=(weight.shape[0],)).atol, np.asarray(top)
    with np.errstate(divide="ignore"):  # q = 1 exactly: the Hölder bound
        per_term = np.minimum(gamma * delta * (1 - top) ** (gamma - 1), delta**gamma) + gamma * delta
    assert_close(ours, expected, per_term.sum(axis=1), err_msg="gen")
    (theirs,) = pytorch_ood_scores("gen", train, weight, bias, {"gamma": gamma, "top_m": top_m}, [test])
    p32 = torch.softmax(torch.as_tensor(test.logits, dtype=torch.float32), dim=1)  # pytorch-ood's precision
    p = np.sort(p32.clamp(1e-7, 1 - 1e-7).numpy(), axis=1)[:, -top_m:]
    # the same float32 probabilities on both sides: only the float32 powers (a few ulp each, terms <= 1) and
    # pytorch-ood's mean over the M terms round differently
    tolerance = float32_tolerance(1, sums=(top_m,))
    np.testing.assert_allclose(theirs, -np.mean(p**gamma * (1 - p) ** gamma, axis=1), **tolerance)  # a mean, not a sum


def test_gradnorm_is_the_l1_norm_of_the_last_layer_gradient():
    """Against autograd: the gradient of KL(uniform || softmax(z / T)) with respect to W, per sample."""
    train, test, _, weight, bias = cifar_like()
    temperature = 2.0
    ours = ood.fit_score("gradnorm", train, weight, bias, temperature=temperature)(test)
    w = torch.tensor(weight, requires_grad=True)
    expected = []
    for h in torch.as_tensor(test.features):
        log_p = torch.log_softmax((w @ h + torch.as_tensor(bias)) / temperature, dim=0)
        loss = -log_p.mean() - np.log(len(log_p))  # KL(u || p) = sum_c u_c log(u_c / p_c)
        (gradient,) = torch.autograd.grad(loss, w)
        expected.append(gradient.abs().sum().item())
    # float64 both: logits (D terms), a softmax (C), then the L1 norm of C x D gradient entries, all positive
    classes, dim = weight.shape
    np.testing.assert_allclose(ours, expected, **float64_tolerance(expected, sums=(dim, classes, classes * dim)))


def test_vim_residual_is_the_norm_outside_the_principal_subspace():
    """-||(h - u) R|| = -sqrt(||h - u||^2 - ||(h - u) P||^2), P the top-D right singular vectors of h_train - u."""
    train, test, _, weight, bias = cifar_like()
    dim = 12
    ours = ood.fit_score("vim_residual", train, weight, bias, dim=dim)(test)
    origin = -np.linalg.pinv(weight) @ bias
    principal = np.linalg.svd(train.features - origin, full_matrices=False)[2][:dim].T
    centred = test.features - origin
    expected = -np.sqrt(np.sum(centred**2, axis=1) - np.sum((centred @ principal) ** 2, axis=1))
    # float64 both, with different decompositions (eigh of the covariance, SVD of the features): each residual
    # subspace is off by the float64 version of the ViM bound, and the expected value's difference of squares
    # ||x||^2 - ||x P||^2 loses u64 growth(D) ||x||^2 / (2 r) to cancellation
    subspace, r = residual_error(train, weight, bias, dim, unit_roundoff=U64)(test.features)
    cancellation = U64 * growth(centred.shape[1]) * np.sum(centred**2, axis=1) / (2 * r)
    assert_close(ours, expected, 2 * subspace + cancellation, err_msg="vim_residual")


@pytest.mark.parametrize("method", ood.SCORES)
def test_a_flipped_sign_gives_one_minus_the_auroc(method):
    train, test, far, weight, bias = cifar_like()
    hyper = problem_hyperparameters(method, train.features.shape[1], weight.shape[0])
    scorer = ood.fit_score(method, train, weight, bias, **hyper)
    sizes = len(test.features), len(far.features)
    # exact: negating both sets reverses every pair's order and keeps ties, 2 n m AUROC -> 2 n m (1 - AUROC)
    flipped = half_pairs(auroc(-scorer(test), -scorer(far)), *sizes)
    assert flipped == 2 * sizes[0] * sizes[1] - half_pairs(auroc(scorer(test), scorer(far)), *sizes)


@pytest.mark.workflow
@pytest.mark.parametrize("method", ORACLE_METHODS)
def test_on_the_tiny_workflow_dumps_our_aurocs_equal_pytorch_oods(workflow, method):
    """The final dump of the tiny study's standard run, with the tiny config's hyperparameters: AUROC within
    0.01 of pytorch-ood's against every OOD set."""
    run = Path(workflow) / "results" / "tiny" / "runs" / "standard" / "seed0" / "features"
    dump = load_dump(max(run.glob("epoch*.npz"), key=lambda p: int(p.stem.removeprefix("epoch"))))
    config = default_config()["ood"]["hyperparameters"]
    hyper = {**config.get(method, {}), **TINY["ood"]["hyperparameters"].get(method, {})}
    train = ood.Split(dump["train_features"], dump["train_logits"], dump["train_labels"])
    ood_sets = {key.removesuffix("_features") for key in dump if key.endswith("_features")} - {"train", "test"}
    assert ood_sets
    for name in ood_sets:
        splits = [ood.Split(dump[f"{s}_features"], dump[f"{s}_logits"]) for s in ("test", name)]
        ours = [ood.fit_score(method, train, dump["weight"], dump["bias"], **hyper)(s) for s in splits]
        theirs = pytorch_ood_scores(method, train, dump["weight"], dump["bias"], hyper, splits)
        assert abs(auroc(*ours) - auroc(*theirs)) <= 0.01, (method, name, auroc(*ours), auroc(*theirs))
