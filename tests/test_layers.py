"""Neural Collapse and detection at every depth (src/nclab/layers.py, src/nclab/depth.py): each layer's pooled
features against a forward pass written out by hand, the last layer against the feature dumps' h, the linear
probe against scikit-learn's logistic regression, and the multi-layer Mahalanobis detector against
pytorch-ood's."""

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import data_seed
from precision import assert_close, float32_tolerance
from scipy.special import logsumexp
from sklearn.linear_model import LogisticRegression
from test_detectors_oracle import cifar_like, covariance_tolerance

from nclab import depth, layers, ood
from nclab.config import REPOSITORY
from nclab.features import extract, pool
from nclab.models import build_model
from nclab.torchvision_compat import import_torchvision

import_torchvision()  # pytorch-ood imports torchvision: beside a CPU torch, only after nclab's shim
from pytorch_ood.detector import MultiMahalanobis  # noqa: E402

MEAN, STD = torch.tensor([0.5, 0.4, 0.3]), torch.tensor([0.2, 0.25, 0.3])


def images(n: int, channels: int = 3, side: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(data_seed(seed)).integers(0, 256, (n, channels, side, side), dtype=np.uint8)


def test_pooling_averages_blocks_of_the_map_and_keeps_small_maps_and_vectors():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float64).reshape(2, 3, 4, 4)
    by_hand = x.reshape(2, 3, 2, 2, 2, 2).mean(dim=(3, 5)).flatten(1)  # 2x2 blocks of the 4x4 map
    assert torch.equal(pool(x, 2), by_hand)
    assert torch.equal(pool(x[:, :, :1, :1], 2), x[:, :, 0, 0])  # a 1x1 map is not replicated
    assert torch.equal(pool(x[:, :, 0, 0], 2), x[:, :, 0, 0])


@pytest.mark.parametrize("granularity", layers.GRANULARITIES)
def test_resnet_layers_are_the_stem_and_blocks_pooled_and_the_last_is_h(granularity):
    torch.manual_seed(0)
    model = build_model("resnet32", 10, 3, 4).eval()
    batch = images(20)
    found, logits = layers.layer_features(model, batch, MEAN, STD, granularity, grid=2)
    blocks = [f"stage{i}.block{j}" for i in (1, 2, 3) for j in range(1, 6)]  # ResNet-32: 3 stages of 5 blocks
    expected_names = ["stem", *(blocks if granularity == "block" else ["stage1", "stage2", "stage3"])]
    assert list(found) == expected_names
    with torch.no_grad():  # the same forward pass written out by hand
        x = (torch.from_numpy(batch).float() / 255 - MEAN[:, None, None]) / STD[:, None, None]
        out = model.stem(x)
        by_hand = {"stem": pool(out, 2)}
        for index, block in enumerate(model.stages):  # one flat Sequential of 15 blocks
            out = block(out)
            by_hand[blocks[index]] = by_hand[f"stage{index // 5 + 1}"] = pool(out, 2)
    h, dumped_logits = extract(model, batch, MEAN, STD)
    assert np.array_equal(found[expected_names[-1]], h) and np.array_equal(logits, dumped_logits)  # the dumps' h
    for name in expected_names[:-1]:
        assert found[name].shape == (20, by_hand[name].shape[1]), name
        # float32 both, the same convolutions on differently sized batches
        assert_close(found[name], by_hand[name].numpy(), float32_tolerance(by_hand[name].abs().max().item()).atol)
    assert found["stem"].shape[1] == 4 * 2 * 2  # 4 channels on a 2x2 grid


def test_lenet_layers_end_with_its_84_dim_feature():
    torch.manual_seed(0)
    model = build_model("lenet", 10, 1).eval()
    batch = images(6, channels=1, side=28)
    found, _ = layers.layer_features(model, batch, MEAN[:1], STD[:1], "stage", grid=2)
    assert {name: a.shape[1] for name, a in found.items()} == {"conv1": 24, "conv2": 64, "conv3": 120, "fc1": 84}
    assert np.array_equal(found["fc1"], extract(model, batch, MEAN[:1], STD[:1])[0])


def test_an_unknown_granularity_names_the_key():
    with pytest.raises(ValueError, match="layers.granularity"):
        layers.depth_modules(build_model("resnet32", 10, 3, 4), "layer")


def test_the_probe_is_scikit_learns_regularised_logistic_regression():
    """The same objective: mean cross-entropy + lambda ||W||^2 is scikit-learn's C sum CE + ||W||^2 / 2 with
    C = 1 / (2 N lambda), on the same standardised features; both minima agree, and so do the energies."""
    train, test, far, _, _ = cifar_like()
    classes = int(train.labels.max()) + 1
    score = depth.probe_energy(train, classes)
    x = train.features
    centre, scale = x.mean(0), x.std(0, ddof=1)
    reference = LogisticRegression(C=1 / (2 * len(x) * depth.PROBE_WEIGHT_DECAY), tol=1e-12, max_iter=10_000)
    reference.fit((x - centre) / scale, train.labels)
    for split in (test, far):
        expected = logsumexp(reference.decision_function((split.features - centre) / scale), axis=1)
        # two optimisers stopped near the same strictly convex minimum: agreement to 1e-4 of the energies
        assert_close(score(split), expected, 1e-4 * np.abs(expected).max())


def test_multi_layer_mahalanobis_is_pytorch_oods_with_uniform_weights():
    """pytorch-ood's per-layer score is half the squared distance under the N-sample scatter (1 / N of ours,
    tests/test_detectors_oracle.py): summed over layers with the same weights, ours is -2N times its score."""
    train, test, far, _, _ = cifar_like()
    rng = np.random.default_rng(data_seed(7))
    mix = rng.normal(size=(train.features.shape[1], 20))
    layer_sets = [  # per split: the first layer (h) and a second one, a noisy rectified projection of it
        [s.features, np.maximum(s.features @ mix, 0) + rng.normal(0, 0.1, (len(s.features), 20))]
        for s in (train, test, far)
    ]
    labels = train.labels
    base, combine = depth.COMBINED_DETECTORS["multi_mahalanobis"]  # the registry's record, as the workflow runs it
    scorers = [depth.LAYER_DETECTORS[base](ood.Split(x, None, labels), 10, 0) for x in layer_sets[0]]
    ours = [  # per split, the sum over layers of each layer's Mahalanobis score
        combine([score(ood.Split(x, None)) for score, x in zip(scorers, split, strict=True)])
        for split in layer_sets[1:]
    ]
    oracle = MultiMahalanobis([torch.nn.Identity(), torch.nn.Identity()])
    as_tensors = lambda arrays: [torch.as_tensor(a, dtype=torch.float32) for a in arrays]  # noqa: E731
    oracle.fit_structured(as_tensors(layer_sets[0]), torch.as_tensor(labels))
    theirs = [-2 * len(labels) * oracle.predict_structured(as_tensors(split)).numpy() for split in layer_sets[1:]]
    atol = 0.0  # each layer's tolerance, as for the one-layer detector; the sum's is their sum
    for index, features in enumerate(layer_sets[0]):
        fitted = ood.Split(features, None, labels)
        scorer = ood.mahalanobis(fitted, None, None)
        atol += covariance_tolerance(fitted, np.concatenate([scorer(ood.Split(s[index], None)) for s in layer_sets]))
    assert_close(np.concatenate(ours), np.concatenate(theirs), atol)
    assert depth.detection(*ours)["auroc"] > 0.5  # a score of the wrong sign would rank the far set as ID


def test_layer_rows_hold_every_layer_detector_and_set_and_the_combined_detector_over_all_layers():
    """One checkpoint's table: a row per layer, per-layer detector and OOD set with that layer's collapse measures,
    then the multi-layer Mahalanobis rows, whose AUROC is that of the summed per-layer scores."""
    train, test, far, _, _ = cifar_like()
    rng = np.random.default_rng(data_seed(11))
    mix = rng.normal(size=(train.features.shape[1], 12))
    by_split = {
        split: {"conv": np.maximum(s.features @ mix, 0), "h": s.features}
        for split, s in (("train", train), ("test", test), ("far", far))
    }
    rows = pd.DataFrame(depth.layer_rows(by_split, train.labels, 6, ["far"], knn_k=5))
    assert len(rows) == 2 * len(depth.LAYER_DETECTORS) + len(depth.COMBINED_DETECTORS)
    h_rows = rows[rows["layer"] == "h"]
    assert (h_rows["nc1"] == depth.collapse_row(train.features, train.labels, 6)["nc1"]).all()
    assert list(h_rows["dim"].unique()) == [train.features.shape[1]] and (rows["depth"] <= 2).all()
    combined = rows[rows["method"] == "multi_mahalanobis"].iloc[0]
    assert combined["layer"] == depth.ALL_LAYERS and np.isnan(combined["nc1"])
    scorers = {
        name: ood.mahalanobis(ood.Split(x, None, train.labels), None, None) for name, x in by_split["train"].items()
    }
    summed = {
        split: sum(scorers[name](ood.Split(by_split[split][name], None)) for name in scorers)
        for split in ("test", "far")
    }
    assert combined["auroc"] == depth.detection(summed["test"], summed["far"])["auroc"]


def test_final_only_detectors_are_left_out_of_a_checkpoint_and_others_refused():
    """A checkpoint before the final one, with layers.final_only: the Mahalanobis rows (and the NC measures and the
    multi-layer detector with them) are those of the full table; the skipped detectors have no rows."""
    train, test, far, _, _ = cifar_like()
    by_split = {split: {"h": s.features} for split, s in (("train", train), ("test", test), ("far", far))}
    full = pd.DataFrame(depth.layer_rows(by_split, train.labels, 6, ["far"], knn_k=5))
    early = pd.DataFrame(depth.layer_rows(by_split, train.labels, 6, ["far"], 5, skipped=depth.FINAL_ONLY_DETECTORS))
    assert list(early["method"]) == ["mahalanobis", "multi_mahalanobis"]
    pd.testing.assert_frame_equal(early, full[full["method"].isin(early["method"])].reset_index(drop=True))
    with pytest.raises(ValueError, match="layers.final_only: \\['mahalanobis'\\]"):
        depth.layer_rows(by_split, train.labels, 6, ["far"], knn_k=5, skipped=["mahalanobis"])


def test_the_schema_lets_final_only_name_exactly_the_detectors_that_may_wait():
    schema = yaml.safe_load((REPOSITORY / "schemas" / "config.schema.yaml").read_text())
    allowed = schema["properties"]["layers"]["properties"]["final_only"]["items"]["enum"]
    assert allowed == list(depth.FINAL_ONLY_DETECTORS)
    assert set(depth.FINAL_ONLY_DETECTORS) < set(depth.LAYER_DETECTORS) and "mahalanobis" not in allowed
