"""Long-tail study: subsets against the formula and the published totals, each loss against a hand computation,
the alignment strategies' guarantees, and the alignment metrics on constructed cases."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import data_seed
from precision import float32_tolerance, float64_tolerance
from torch.nn import functional as F

from nclab import alignment, collapse, longtail, losses, report_longtail, training
from nclab.config import default_config
from nclab.data import ImageSet
from nclab.models import build_model, simplex_etf
from nclab.objective import Objective
from nclab.plan import longtail_grid, strategy_applies

LT_OPTIONS = default_config()["longtail"]


# --- long-tailed subsets -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n_max,classes,ratio,total,smallest",
    [
        (500, 100, 100, 10_847, 5),  # CIFAR-100-LT IR 100 (Cao et al. 2019)
        (5000, 10, 100, 12_406, 50),  # CIFAR-10-LT IR 100
    ],
)
def test_exponential_counts_match_the_published_totals(n_max, classes, ratio, total, smallest):
    counts = longtail.class_counts(n_max, classes, ratio, "exponential")
    assert counts.sum() == total and counts.min() == smallest and counts[0] == n_max


@pytest.mark.parametrize("ratio", [1, 10, 50, 100, 12.5])
def test_counts_follow_the_formulas(ratio):
    exponential = longtail.class_counts(500, 100, ratio, "exponential")
    assert exponential.tolist() == [math.floor(500 * ratio ** (-c / 99) + 1e-9) for c in range(100)]
    assert (np.diff(exponential) <= 0).all()
    step = longtail.class_counts(500, 10, ratio, "step")
    assert step.tolist() == [500] * 5 + [math.floor(500 / ratio)] * 5


def test_bad_ratio_and_profile_are_refused():
    with pytest.raises(ValueError, match="must be >= 1"):
        longtail.class_counts(100, 10, 0.5, "exponential")
    with pytest.raises(ValueError, match="leaves a class without images"):
        longtail.class_counts(10, 10, 100, "exponential")
    with pytest.raises(ValueError, match="unknown long-tail profile 'linear'"):
        longtail.class_counts(100, 10, 10, "linear")


def test_subset_is_deterministic_and_has_the_profile():
    rng = np.random.default_rng(data_seed(0))
    labels = np.repeat(np.arange(10), 60)
    rng.shuffle(labels)
    train = ImageSet(rng.integers(0, 255, (600, 1, 4, 4), dtype=np.uint8), labels)
    subset, idx = longtail.longtail_subset(train, 10, 20, "exponential", seed=3)
    again, idx_again = longtail.longtail_subset(train, 10, 20, "exponential", seed=3)
    _, other = longtail.longtail_subset(train, 10, 20, "exponential", seed=4)
    assert np.array_equal(idx, idx_again) and np.array_equal(subset.images, again.images)
    assert not np.array_equal(idx, other)
    assert np.bincount(subset.labels).tolist() == longtail.class_counts(60, 10, 20, "exponential").tolist()
    assert np.array_equal(subset.images, train.images[idx]) and len(set(idx)) == len(idx)


def test_shot_groups_use_strict_thresholds():
    groups = longtail.shot_groups(np.array([500, 101, 100, 20, 19, 5]), many=100, few=20)
    assert groups.tolist() == ["many", "many", "medium", "medium", "few", "few"]


def test_grid_drops_strategies_that_would_move_a_fixed_classifier():
    grid = longtail_grid([10, 100], ["ce", "etf"], ["none", "reg", "slerp", "proj"])
    assert len(grid) == 2 * (4 + 2)
    assert ("10", "etf", "reg") in grid and ("10", "etf", "proj") not in grid


# --- losses against hand computations --------------------------------------------------------------------

LOGITS = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.3, 1.5], [1.0, 1.0, 1.0], [-0.5, 2.0, 0.0]])
LABELS = torch.tensor([0, 2, 1, 1])
COUNTS = torch.tensor([100.0, 30.0, 5.0])


def hand_ce(logits, labels, weights=None):
    """Mean (or weighted-mean) -log softmax of the true class, written out with numpy."""
    z = logits.double().numpy()
    log_softmax = z - np.log(np.exp(z).sum(1, keepdims=True))
    nll = -log_softmax[np.arange(len(z)), labels.numpy()]
    if weights is None:
        return nll.mean()
    w = weights.double().numpy()[labels.numpy()]
    return (w * nll).sum() / w.sum()


def loss_tolerance(logits: torch.Tensor):
    """A float32 loss against its float64 hand computation: a log-softmax over C classes, then a (weighted) mean
    over N samples, at the scale of the (shifted) logits."""
    return float32_tolerance(logits, sums=logits.shape[::-1])


def test_cross_entropy_logit_adjustment_and_balanced_softmax():
    ce = losses.cross_entropy(LOGITS, LABELS, COUNTS, 0.0).item()
    assert ce == loss_tolerance(LOGITS).approx(hand_ce(LOGITS, LABELS))
    prior = COUNTS / COUNTS.sum()
    shifted = LOGITS + 0.7 * torch.log(prior)
    adjusted = losses.logit_adjustment(LOGITS, LABELS, COUNTS, 0.0, tau=0.7).item()
    assert adjusted == loss_tolerance(shifted).approx(hand_ce(shifted, LABELS))
    bs = losses.balanced_softmax(LOGITS, LABELS, COUNTS, 0.0).item()
    assert bs == loss_tolerance(LOGITS + torch.log(COUNTS)).approx(hand_ce(LOGITS + torch.log(COUNTS), LABELS))
    # two float32 computations of the same loss (log C - log N = log prior shifts every logit alike)
    la = losses.logit_adjustment(LOGITS, LABELS, COUNTS, 0.0, tau=1.0).item()
    assert bs == loss_tolerance(LOGITS + torch.log(COUNTS)).approx(la)
    # the balanced losses penalise a head-class prediction of a tail sample more than plain CE does
    tail = torch.tensor([[3.0, 0.0, 0.0]]), torch.tensor([2])
    assert losses.balanced_softmax(*tail, COUNTS, 0.0) > losses.cross_entropy(*tail, COUNTS, 0.0)


def test_ldam_margins_weights_and_loss():
    margins = losses.ldam_margins(COUNTS, 0.5)
    expected = COUNTS.double().numpy() ** -0.25
    # computed in float64, returned in float32: one rounding of each value, relative
    cast = float32_tolerance(1).atol
    np.testing.assert_allclose(margins.numpy(), 0.5 * expected / expected.max(), rtol=cast, atol=0)
    assert margins.max().item() == 0.5 and margins.argmax().item() == 2  # 0.5 * m / m: exact
    weights = losses.drw_weights(COUNTS, 0.9999)
    raw = (1 - 0.9999) / (1 - 0.9999 ** COUNTS.double().numpy())
    np.testing.assert_allclose(weights.numpy(), raw / raw.sum() * 3, rtol=cast, atol=0)
    cosines = torch.tanh(LOGITS)  # any values in [-1, 1]
    shifted = 30 * cosines - 30 * margins[LABELS, None] * F.one_hot(LABELS, 3)
    options = dict(max_margin=0.5, scale=30.0, beta=0.9999, drw_start=0.8)
    early = losses.ldam_drw(30 * cosines, LABELS, COUNTS, progress=0.5, **options)
    late = losses.ldam_drw(30 * cosines, LABELS, COUNTS, progress=0.8, **options)
    assert early.item() == loss_tolerance(shifted).approx(hand_ce(shifted, LABELS))
    assert late.item() == loss_tolerance(shifted).approx(hand_ce(shifted, LABELS, weights))


def test_dot_regression_and_the_fixed_etf():
    etf = simplex_etf(4, 6)
    cos = etf @ etf.T
    unit = float32_tolerance(1, sums=(6,))  # float32 unit rows: inner products over d = 6
    assert torch.allclose(torch.diagonal(cos), torch.ones(4), **unit)
    assert torch.allclose(cos[~torch.eye(4, dtype=bool)], torch.full((12,), -1 / 3), **unit)
    model = build_model("resnet32", 4, 1, 2, head="etf")
    assert not any(p is model.fc.weight for p in model.parameters())
    h = torch.rand(5, model.feature_dim) + 0.1
    logits = model.fc(h)
    # float32 both: cosines of unit vectors, a normalisation and an inner product over the feature dimension
    assert torch.allclose(
        logits, F.normalize(h, dim=1) @ model.fc.weight.T, **float32_tolerance(1, sums=(h.shape[1],) * 2)
    )
    labels = torch.tensor([0, 1, 2, 3, 0])
    hand = 0.5 * np.mean([(logits[i, labels[i]].item() - 1) ** 2 for i in range(5)])
    # float32 loss, float64 hand: squared gaps (l - 1)^2 <= 4, a mean over N = 5
    assert losses.dot_regression(logits, labels, torch.ones(4), 0.0).item() == float32_tolerance(4, sums=(5,)).approx(
        hand
    )
    # a feature on its class's ETF vector has zero loss: its logit ||w||^2 is 1 to within the float32 tolerance
    # of a unit inner product over d = 6, and the loss half its square
    zero = 0.5 * unit.atol**2
    assert losses.dot_regression(etf[[2]] @ etf.T, torch.tensor([2]), torch.ones(4), 0.0).item() == pytest.approx(
        0, abs=zero
    )
    with pytest.raises(ValueError, match="needs feature dimension >= 10"):
        simplex_etf(10, 8)


def dot_regression_optimum(model: torch.nn.Module, steps: int = 1500) -> torch.Tensor:
    """Per-sample w*_y . h/||h|| after fitting free non-negative pooled features (softplus of free parameters,
    as post-ReLU pooling gives), and the neck's parameters, to the dot-regression loss (C = 10, d = 64)."""
    torch.manual_seed(0)
    labels = torch.arange(10).repeat(8)
    raw = torch.randn(len(labels), model.feature_dim, requires_grad=True)
    optimizer = torch.optim.Adam([raw, *model.neck.parameters()], lr=0.05)
    for _ in range(steps):
        logits = model.fc(model.neck(F.softplus(raw)))
        loss = losses.dot_regression(logits, labels, torch.ones(10), 0.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return model.fc(model.neck(F.softplus(raw))).gather(1, labels[:, None]).squeeze(1)


def test_the_etf_head_reaches_the_dot_regression_optimum_from_non_negative_features():
    """Yang et al.'s ETF classifier normalises BN(h), not h: from non-negative features the optimum
    w*_y . h_hat = 1 is reachable for every class. Without the BatchNorm1d (the head normalising the pooled
    post-ReLU features directly) the best reachable cosine stays far below 1."""
    model = build_model("resnet32", 10, 3, 16, head="etf").train()
    assert isinstance(model.neck, torch.nn.BatchNorm1d) and model.feature_dim == 64
    assert dot_regression_optimum(model).min().item() > 0.99
    model.neck = torch.nn.Identity()
    assert dot_regression_optimum(model).mean().item() < 0.8
    for head, scale in (("linear", None), ("normed", 30.0)):
        assert isinstance(build_model("resnet32", 10, 3, 16, head=head, scale=scale).neck, torch.nn.Identity)


def test_resnet32_matches_the_literature():
    model = build_model("resnet32", 10, 3, 16)
    assert model.feature_dim == 64
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 2) == 0.46  # "0.46M": the published digits
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    normed = build_model("resnet32", 10, 3, 16, head="normed", scale=30.0)
    logits = normed(torch.randn(4, 3, 32, 32))
    # 30 times a float32 cosine, which exceeds 1 by at most its rounding over the 64 features
    assert logits.abs().max() <= 30.0 + float32_tolerance(30, sums=(model.feature_dim,) * 2).atol


# --- alignment strategies ----------------------------------------------------------------------------


def centres_for(means: torch.Tensor) -> alignment.CentreEMA:
    ema = alignment.CentreEMA(len(means), means.shape[1], momentum=0.9)
    ema.update(means, torch.arange(len(means)))
    return ema


def test_ema_centres_follow_the_batches():
    ema = alignment.CentreEMA(3, 2, momentum=0.9)
    ema.update(torch.tensor([[1.0, 0.0], [3.0, 0.0]]), torch.tensor([0, 0]))
    assert ema.centres[0].tolist() == [2.0, 0.0] and ema.seen.tolist() == [True, False, False]  # exact in binary
    ema.update(torch.tensor([[12.0, 10.0]]), torch.tensor([0]))
    # float32: 0.9 c + 0.1 h, two roundings at the scale of h
    assert torch.allclose(ema.centres[0], torch.tensor([0.9 * 2 + 0.1 * 12, 1.0]), **float32_tolerance(12, sums=(2,)))


@pytest.mark.parametrize("gamma", [0.0, 0.6, 1.0])
def test_projected_gradient_never_points_further_away_from_the_centre(gamma):
    generator = torch.Generator().manual_seed(data_seed(0))
    for _ in range(50):
        weight, grad = torch.randn(6, 5, generator=generator), torch.randn(6, 5, generator=generator)
        ema = centres_for(torch.randn(6, 5, generator=generator))
        new = alignment.project_gradient(grad, weight, ema, gamma=gamma)
        unit_w, target = F.normalize(weight, dim=1), ema.directions()
        delta = F.normalize(target - (target * unit_w).sum(1, keepdim=True) * unit_w, dim=1)
        before, after = (grad * delta).sum(1), (new * delta).sum(1)
        # float32 both: the projection, its normalisation and the test's inner product, each over d = 5, at the
        # scale of the gradient
        atol = float32_tolerance(grad, sums=(5, 5, 5)).atol
        # a descent step -g moves w_c away from the centre when g.delta > 0: that part is cut to gamma times
        assert torch.allclose(after, torch.where(before > 0, gamma * before, before), atol=atol, rtol=0)
        assert (after <= torch.clamp(before, min=0) + atol).all()
        if gamma == 0:
            assert (after <= atol).all()  # the descent step never moves away from the centre
        # the radial component comes from the gamma * g term only (g_t is tangent)
        assert torch.allclose((new * unit_w).sum(1), gamma * (grad * unit_w).sum(1), atol=atol, rtol=0)


def test_slerp_keeps_norms_and_rotates_by_the_fraction_t():
    generator = torch.Generator().manual_seed(data_seed(1))
    weight = 3 * torch.randn(5, 4, generator=generator)
    ema = centres_for(torch.randn(5, 4, generator=generator))
    moved = alignment.slerp_towards(weight, ema, t=0.25)
    # float32 both: the slerp's cosines, sines and normalisations, then the test's norms and cosines, each over
    # d = 4, at the scale of the rows
    rows = float32_tolerance(weight.norm(dim=1), sums=(4, 4, 4))
    assert torch.allclose(moved.norm(dim=1), weight.norm(dim=1), **rows)
    angle = lambda a, b: torch.arccos(F.cosine_similarity(a, b, dim=1).clamp(-1, 1))  # noqa: E731
    target = ema.directions()
    # a cosine's rounding moves its arccos by that over the angle's sine (arccos' slope)
    sines = torch.sin(torch.cat([angle(moved, target), angle(weight, target)])).min().item()
    angles = float32_tolerance(1, sums=(4, 4, 4), condition=1 / sines)
    assert torch.allclose(angle(moved, target), 0.75 * angle(weight, target), **angles)
    assert torch.allclose(alignment.slerp_towards(weight, ema, t=0.0), weight, **rows)
    unit = float32_tolerance(1, sums=(4, 4, 4))
    assert torch.allclose(F.normalize(alignment.slerp_towards(weight, ema, t=1.0), dim=1), target, **unit)


def test_alignment_penalty_by_hand():
    features = torch.tensor([[1.0, 0.0], [3.0, 2.0], [0.0, 4.0]])
    labels = torch.tensor([0, 0, 1])
    weight = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    ema = alignment.CentreEMA(3, 2, momentum=0.9)
    ema.update(torch.tensor([[2.0, 1.0], [0.0, 4.0], [1.0, 1.0]]), torch.arange(3))
    mu_g = torch.tensor([1.0, 2.0])  # mean of the three centres
    means = torch.tensor([[2.0, 1.0], [0.0, 4.0]])
    hand = 0.1 * np.mean([1 - F.cosine_similarity(means[i] - mu_g, weight[i], dim=0).item() for i in range(2)])
    # float32 both: 0.1 (1 - cosine) averaged over 2 classes; centres (3 classes) and cosines over d = 2
    tolerance = float32_tolerance(0.1 * 2, sums=(3, 2, 2))
    assert alignment.alignment_penalty(features, labels, weight, ema, strength=0.1).item() == tolerance.approx(hand)
    aligned = torch.stack([means[0] - mu_g, means[1] - mu_g, torch.ones(2)])
    assert alignment.alignment_penalty(features, labels, aligned, ema, strength=0.1).item() == tolerance.approx(0)


# --- metrics on constructed cases ------------------------------------------------------------------------


def test_alignment_metric_on_aligned_and_misaligned_classifiers():
    rng = np.random.default_rng(data_seed(0))
    means = rng.normal(size=(4, 6))
    geometry = collapse.ClassGeometry(means, means.mean(0))
    cosine = float64_tolerance(1, sums=(6, 6))  # float64 cosines: an inner product and norms over d = 6
    assert np.allclose(collapse.alignment(2.5 * geometry.centred, geometry), 1.0, **cosine)
    assert np.allclose(collapse.alignment(-geometry.centred, geometry), -1.0, **cosine)
    rotation, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    rotated = geometry.centred @ rotation
    expected = [np.dot(m, r) / (np.linalg.norm(m) * np.linalg.norm(r)) for m, r in zip(geometry.centred, rotated)]
    assert np.allclose(collapse.alignment(rotated, geometry), expected, **cosine)


def test_minority_collapse_and_group_metrics_by_brute_force():
    assert collapse.minority_collapse(np.tile([[1.0, 2.0]], (3, 1))) == float64_tolerance(1, sums=(2,)).approx(1.0)
    # a float32 ETF (unit rows rounded to float32), its cosines taken in float64 over d = 5
    assert collapse.minority_collapse(simplex_etf(5, 5).numpy()) == float32_tolerance(1, sums=(5,)).approx(-0.25)
    rng = np.random.default_rng(data_seed(2))
    counts = [30, 30, 10, 3, 2]
    train_labels = np.repeat(np.arange(5), counts)
    test_labels = np.repeat(np.arange(5), 8)
    dump = {
        "train_features": rng.normal(size=(len(train_labels), 7)),
        "train_labels": train_labels,
        "test_logits": rng.normal(size=(40, 5)),
        "test_labels": test_labels,
        "weight": rng.normal(size=(5, 7)),
        "head": np.array("linear"),
    }
    metrics = collapse.group_metrics(dump, collapse.class_table(dump, 5), many=20, few=5)
    correct = dump["test_logits"].argmax(1) == test_labels
    geometry = collapse.class_geometry(dump["train_features"], train_labels, 5)
    a = collapse.alignment(dump["weight"], geometry)
    assert metrics["classes_many"] == 2 and metrics["classes_medium"] == 1 and metrics["classes_few"] == 2
    assert metrics["accuracy_many"] == correct[test_labels < 2].mean()  # count / n: exact
    assert metrics["accuracy_few"] == correct[test_labels >= 3].mean()
    assert metrics["alignment_medium"] == a[2]  # the same float64 computation
    w = dump["weight"][3:]
    cosine = float64_tolerance(1, sums=(7, 7))  # float64 cosines over d = 7
    assert metrics["minority_collapse"] == cosine.approx(w[0] @ w[1] / np.linalg.norm(w[0]) / np.linalg.norm(w[1]))
    assert math.isnan(
        collapse.group_metrics(dump, collapse.class_table(dump, 5), many=100, few=1)["accuracy_many"]
    )  # empty group: undefined


# --- training with every loss and strategy -----------------------------------------------------------------


def tiny_sets(n_per_class=(12, 6, 3)):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(len(n_per_class)), n_per_class)
    train = ImageSet(rng.integers(0, 255, (len(labels), 1, 8, 8), dtype=np.uint8), labels)
    test = ImageSet(rng.integers(0, 255, (9, 1, 8, 8), dtype=np.uint8), np.repeat(np.arange(3), 3))
    return train, test


def lt_recipe(**overrides):
    """A long-tail recipe with config.yaml's options (schema defaults filled in) for its loss and strategy,
    ``overrides`` over them (``loss_options`` merged into the loss's)."""
    loss, strategy = overrides.get("loss", "ce"), overrides.get("strategy", "none")
    options = {
        "loss_options": {**LT_OPTIONS["loss_options"].get(loss, {}), **overrides.pop("loss_options", {})},
        "strategy_options": LT_OPTIONS["alignment"].get(strategy, {}) if strategy != "none" else {},
        "momentum_centres": LT_OPTIONS["alignment"]["momentum"] if strategy != "none" else None,
    }
    base = dict(
        epochs=3,
        scheduler="warmup_multistep",
        milestones=(0.6,),
        lr=0.05,
        momentum=0.9,
        weight_decay=5e-4,
        batch_size=8,
        crop_padding=1,
        flip=False,
        device="cpu",
        warmup_epochs=1,
        gamma=0.1,
    )
    return training.Recipe(**{**base, **options, **overrides})


@pytest.mark.parametrize(
    "loss,strategy", [(loss, s) for loss in losses.LOSSES for s in alignment.STRATEGIES if strategy_applies(loss, s)]
)
def test_every_loss_composes_with_every_applicable_strategy(loss, strategy):
    train, test = tiny_sets()
    torch.manual_seed(0)
    head = {"ldam_drw": "normed", "etf": "etf"}.get(loss, "linear")
    model = build_model("resnet32", 3, 1, 4, head=head, scale=30.0 if head == "normed" else None)
    etf_before = model.fc.weight.clone()
    history = training.train(
        model, train, test, lt_recipe(loss=loss, strategy=strategy), 0, [3], lambda e, s: None
    ).history
    assert len(history) == 3 and all(math.isfinite(h.train_loss) for h in history)
    if head == "etf":
        assert torch.equal(model.fc.weight, etf_before)


@pytest.mark.parametrize("loss,centred", [("ce", True), ("logit_adjustment", True), ("ldam_drw", False)])
def test_the_alignment_directions_are_the_centres_as_the_head_compares_them(loss, centred):
    """Centred for a head with a bias, uncentred for LDAM's bias-free cosine head (aligned with the centred
    centres, LDAM-DRW + SpA-SLERP predicted the head class alone on Fashion-MNIST-LT, every seed and ratio)."""
    objective = Objective(loss, "slerp", torch.tensor([5, 3, 2]), 2, momentum=0.9)
    assert objective.centres.centred is centred
    objective.centres.update(torch.tensor([[1.0, 0.0], [3.0, 1.0], [2.0, 5.0]]), torch.tensor([0, 1, 2]))
    expected = torch.tensor([[1.0, 0.0], [3.0, 1.0], [2.0, 5.0]]) - (torch.tensor([2.0, 2.0]) if centred else 0)
    assert torch.allclose(objective.centres.directions(), F.normalize(expected, dim=1), atol=1e-6)  # float32


def test_a_strategy_that_moves_a_fixed_classifier_is_refused():
    with pytest.raises(ValueError, match="moves the classifier, which loss 'etf' keeps fixed"):
        Objective("etf", "slerp", torch.ones(3), 8, momentum=0.9)


def test_warmup_then_step_decay():
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = training.make_scheduler(
        optimizer, lt_recipe(epochs=10, warmup_epochs=4, milestones=(0.8, 0.9), gamma=0.01)
    )
    rates = []
    for _ in range(10):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    # float64 products of the base rate by a warmup fraction and by gamma, at most three roundings each
    assert rates == float64_tolerance(1, sums=(3,)).approx([0.25, 0.5, 0.75, 1, 1, 1, 1, 1, 0.01, 1e-4])


def test_a_resumed_run_with_a_strategy_is_bit_identical(tmp_path):
    """The EMA centres are part of the saved state: stopping after epoch 2 and resuming gives the same weights."""
    train, test = tiny_sets()
    recipe = lt_recipe(epochs=4, loss="ldam_drw", strategy="proj", loss_options={"drw_start": 0.5})

    def run(stop_after=None):
        torch.manual_seed(0)
        model = build_model("resnet32", 3, 1, 4, head="normed", scale=30.0)
        resume = training.Resume(tmp_path / "state.pt", "fp")

        def stop(stats):
            if stats.epoch == stop_after:
                raise KeyboardInterrupt

        try:
            training.train(model, train, test, recipe, 0, [4], lambda e, s: None, on_epoch=stop, resume=resume)
        except KeyboardInterrupt:
            return None
        return model.state_dict()

    reference = run()
    (tmp_path / "state.pt").unlink()
    assert run(stop_after=2) is None
    resumed = run()
    assert all(torch.equal(reference[k], resumed[k]) for k in reference)


def effects_table(overall_gain, few_gain, seeds=(0, 1, 2)):
    """A final-epoch table with baselines and one strategy (reg) whose gains per (IR, seed) are given."""
    rows = []
    for i, ratio in enumerate((10.0, 50.0)):
        for seed in seeds:
            base = {"ratio": ratio, "loss": "ce", "seed": seed, "alignment_few": 0.5, "nc3": 0.3}
            rows.append({**base, "strategy": "none", "network_accuracy_test": 0.6, "accuracy_few": 0.2})
            rows.append(
                {
                    **base,
                    "strategy": "reg",
                    "network_accuracy_test": 0.6 + overall_gain(i, seed) / 100,
                    "accuracy_few": 0.2 + few_gain(i, seed) / 100,
                }
            )
    return pd.DataFrame(rows)


def test_strategy_effects_are_paired_with_the_same_seed_and_their_interval_is_a_t_interval():
    from scipy.stats import ttest_1samp

    final = effects_table(lambda i, seed: 1.0 + seed + i, lambda i, seed: 2.0 * seed - 1)
    effect = report_longtail.strategy_effects(final)["reg"]["overall"]
    # float64: 100 (0.6 + g / 100 - 0.6), a few roundings at the scale of the accuracies (100 x 0.65)
    deltas = float64_tolerance(100, sums=(3,))
    assert np.allclose(sorted(effect.deltas), sorted([1, 2, 3, 2, 3, 4]), **deltas)
    expected = ttest_1samp(effect.deltas, 0.0).confidence_interval(0.95)
    # float64 both: a mean and a standard deviation over the 6 deltas, the same t quantile
    assert np.allclose(effect.interval(), (expected.low, expected.high), **float64_tolerance(4, sums=(6, 6)))
    assert report_longtail.strategy_effects(final)["reg"]["few"].worst() == (deltas.approx(-1.0), (10.0, "ce"))


@pytest.mark.parametrize(
    "overall, few, expected",
    [
        (lambda i, s: 1.0 + 0.1 * s, lambda i, s: 3.0 + 0.1 * s, "is supported for SpA-Reg"),
        (lambda i, s: -1.0 - 0.1 * s, lambda i, s: 3.0, "is contradicted for SpA-Reg"),
        (lambda i, s: s - 1.0, lambda i, s: 3.0 + s, "is not resolved for SpA-Reg"),
        # a mean gain whose few-shot part is not the larger is no support for "mostly on tail classes"
        (lambda i, s: 3.0 + 0.1 * s, lambda i, s: 1.0 + 0.1 * s, "is not resolved for SpA-Reg"),
    ],
)
def test_the_verdict_follows_the_confidence_intervals(overall, few, expected):
    text = report_longtail.verdict(report_longtail.strategy_effects(effects_table(overall, few)))
    assert expected in text and "2 settings $\\times$ 3 seeds" in text


def test_with_one_seed_no_claim_is_tested_and_the_table_gives_the_changes():
    final = effects_table(lambda i, s: 4.0, lambda i, s: -10.2 if i == 0 else 2.0, seeds=(0,))
    effects = report_longtail.strategy_effects(final)
    text = report_longtail.verdict(effects)
    assert text.startswith("With one seed per run, no claim about the strategies can be tested")
    assert "supported" not in text
    table = report_longtail.effects_table(effects)
    row = next(line for line in table.splitlines() if line.startswith("SpA-Reg"))
    # 2 pairs; overall +4.0 over [+4.0, +4.0]; few-shot mean -4.1 over its range; worst -10.2 at IR 10 with CE
    assert row.startswith(
        "SpA-Reg & 2 & $+4.0$ & [$+4.0$, $+4.0$] & $-4.1$ & [$-10.2$, $+2.0$] & $-10.2$ (IR 10 with CE)"
    )
