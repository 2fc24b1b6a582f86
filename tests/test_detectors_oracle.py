"""Each OOD detector against an independent implementation: pytorch-ood 0.4.0 (a test-only dependency, whose
scores are outlier scores, so they are negated) where it has the method, otherwise autograd or an explicit
eigendecomposition; on a synthetic CIFAR-like problem and on the tiny workflow's real dumps."""

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY
from scipy.stats import spearmanr

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
RANK_ONLY = {  # pytorch-ood's covariances are not divided by N and get 1e-6 I: the same ranking, not the same values
    "mahalanobis",
    "rmds",
}


def cifar_like(seed: int = 0, num_classes: int = 6, dim: int = 48):
    """Post-ReLU-like features clustered by class (train, ID test) and faint, unclustered OOD features."""
    rng = np.random.default_rng(seed)
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
        "vim": {"dim": dim // 2},
        "vim_residual": {"dim": dim // 2},
        "neco": {"dim": classes - 1},
        "gen": {"top_m": classes},
        "knn": {"k": 10},
        "nnguide": {"k": 10},
    }
    return {**default_config()["ood"]["hyperparameters"].get(method, {}), **sized.get(method, {})}


def assert_same_detector(method, train, weight, bias, hyper, splits, aurocs_within=1e-6):
    ours = [ood.fit_score(method, train, weight, bias, **hyper)(s) for s in splits]
    theirs = pytorch_ood_scores(method, train, weight, bias, hyper, splits)
    assert abs(auroc(*ours) - auroc(*theirs)) <= aurocs_within, (method, auroc(*ours), auroc(*theirs))
    if method in RANK_ONLY:
        assert spearmanr(np.concatenate(ours), np.concatenate(theirs))[0] > 0.999, method
    else:
        np.testing.assert_allclose(np.concatenate(ours), np.concatenate(theirs), rtol=2e-4, atol=2e-4, err_msg=method)


@pytest.mark.parametrize("method", ORACLE_METHODS)
def test_detector_equals_pytorch_ood(method):
    train, test, far, weight, bias = cifar_like()
    hyper = problem_hyperparameters(method, train.features.shape[1], weight.shape[0])
    assert_same_detector(method, train, weight, bias, hyper, [test, far])


def test_a_wrong_detector_is_caught_by_the_oracle():
    """The comparison fails on a plausible mistake: ReAct clipping at the percentile of each sample's own entries
    instead of the training set's, or DICE keeping the smallest contributions."""
    train, test, far, weight, bias = cifar_like()

    def wrong_react(s: ood.Split) -> np.ndarray:
        clipped = np.minimum(s.features, np.percentile(s.features, 90, axis=1, keepdims=True))
        return ood._energy(clipped @ weight.T + bias)

    theirs = pytorch_ood_scores("react", train, weight, bias, {"percentile": 90}, [test, far])
    assert not np.allclose(np.concatenate([wrong_react(test), wrong_react(far)]), np.concatenate(theirs), rtol=2e-4)
    ours = [ood.fit_score("dice", train, -weight, bias, percentile=90)(s) for s in (test, far)]
    theirs = pytorch_ood_scores("dice", train, weight, bias, {"percentile": 90}, [test, far])
    assert not np.allclose(np.concatenate(ours), np.concatenate(theirs), rtol=2e-4)


def test_gen_follows_the_authors_formula_and_differs_from_pytorch_ood_only_by_its_clamp():
    """GEN as Liu et al.'s code computes it (a loop over samples), and pytorch-ood's value once our
    probabilities are clamped as pytorch-ood clamps them (pytorch-ood averages over the M terms: the same
    ranking as the sum)."""
    train, test, far, weight, bias = cifar_like()
    gamma, top_m = 0.1, 4
    ours = ood.fit_score("gen", train, weight, bias, gamma=gamma, top_m=top_m)(test)
    expected = []
    for z in test.logits:
        p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        expected.append(-sum(q**gamma * (1 - q) ** gamma for q in sorted(p)[-top_m:]))
    np.testing.assert_allclose(ours, expected, rtol=1e-10)
    (theirs,) = pytorch_ood_scores("gen", train, weight, bias, {"gamma": gamma, "top_m": top_m}, [test])
    p32 = torch.softmax(torch.as_tensor(test.logits, dtype=torch.float32), dim=1)  # pytorch-ood's precision
    p = np.sort(p32.clamp(1e-7, 1 - 1e-7).numpy(), axis=1)[:, -top_m:]
    np.testing.assert_allclose(theirs, -np.mean(p**gamma * (1 - p) ** gamma, axis=1), rtol=2e-4)  # a mean, not a sum


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
    np.testing.assert_allclose(ours, expected, rtol=1e-10)


def test_vim_residual_is_the_norm_outside_the_principal_subspace():
    """-||(h - u) R|| = -sqrt(||h - u||^2 - ||(h - u) P||^2), P the top-D right singular vectors of h_train - u."""
    train, test, _, weight, bias = cifar_like()
    dim = 12
    ours = ood.fit_score("vim_residual", train, weight, bias, dim=dim)(test)
    origin = -np.linalg.pinv(weight) @ bias
    principal = np.linalg.svd(train.features - origin, full_matrices=False)[2][:dim].T
    centred = test.features - origin
    expected = -np.sqrt(np.sum(centred**2, axis=1) - np.sum((centred @ principal) ** 2, axis=1))
    np.testing.assert_allclose(ours, expected, rtol=1e-8)


@pytest.mark.parametrize("method", ood.SCORES)
def test_a_flipped_sign_gives_one_minus_the_auroc(method):
    train, test, far, weight, bias = cifar_like()
    hyper = problem_hyperparameters(method, train.features.shape[1], weight.shape[0])
    scorer = ood.fit_score(method, train, weight, bias, **hyper)
    a = auroc(scorer(test), scorer(far))
    assert auroc(-scorer(test), -scorer(far)) == pytest.approx(1 - a, abs=1e-12)


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
