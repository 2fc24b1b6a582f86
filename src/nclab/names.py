"""Display names: how the paper, its tables and figures and the HTML report name what the config names.

Keys are the names of the registries and of the schema (a test checks that they agree). No training, feature or
score job imports this module, so renaming a label replans only the figures, tables and paper. Schedules are
shown by their config names; detectors are grouped in the order of SCORE_FAMILIES (:func:`by_family`).
"""

SCORES = {
    "msp": "MSP",
    "maxlogit": "MaxLogit",
    "energy": "Energy",
    "mahalanobis": "Mahalanobis",
    "vim": "ViM",
    "neco": "NECO",
    "knn": "KNN",
    "entropy": "Entropy",
    "gen": "GEN",
    "kl_matching": "KL matching",
    "rmds": "RMDS",
    "she": "SHE",
    "nnguide": "NNGuide",
    "vim_residual": "Residual",
    "gradnorm": "GradNorm",
    "react": "ReAct",
    "ash_b": "ASH-B",
    "ash_p": "ASH-P",
    "ash_s": "ASH-S",
    "scale": "SCALE",
    "dice": "DICE",
    "fdbd": "fDBD",
    "nci": "NCI",
}
SCORE_CITATIONS = {  # the paper's BibTeX key of each detector's source (paper/references.bib)
    "msp": "hendrycks2017msp",
    "maxlogit": "hendrycks2022maxlogit",
    "energy": "liu2020energy",
    "mahalanobis": "lee2018mahalanobis",
    "vim": "wang2022vim",
    "neco": "ammar2024neco",
    "knn": "sun2022knn",
    "entropy": "chan2021entropy",
    "gen": "liu2023gen",
    "kl_matching": "hendrycks2022maxlogit",
    "rmds": "ren2021rmds",
    "she": "zhang2023she",
    "nnguide": "park2023nnguide",
    "vim_residual": "wang2022vim",
    "gradnorm": "huang2021gradnorm",
    "react": "sun2021react",
    "ash_b": "djurisic2023ash",
    "ash_p": "djurisic2023ash",
    "ash_s": "djurisic2023ash",
    "scale": "xu2024scale",
    "dice": "sun2022dice",
    "fdbd": "liu2024fdbd",
    "nci": "liu2025nci",
}
DEPTH_SCORES = {  # the detectors of the depth analysis: nclab.depth's LAYER_DETECTORS, then COMBINED_DETECTORS
    "mahalanobis": "Mahalanobis",
    "knn": "KNN",
    "probe_energy": "Probe Energy",
    "multi_mahalanobis": "Multi-layer Mahalanobis",
}
SCORE_FAMILIES = {  # nclab.ood.Score.family, in the order the paper groups them
    "logit": "logit-based",
    "feature": "feature-based",
    "shaping": "activation shaping",
    "collapse": "Neural-Collapse-inspired",
}
NC_MEASURES = {  # the NC measures related to OOD detection (nclab.relation), each lower with more collapse
    "nc1": "NC1",
    "nc2_equiangular_features": "NC2",
    "nc3": "NC3",
    "nc4_train": "NC4",
    "nc5": "NC5",
    "cdnv": "CDNV",
    "gnc2": "GNC2",
}


def by_family(families: dict[str, str]) -> dict[str, list[str]]:
    """The detectors of ``families`` (detector -> family) grouped by family, in the order of SCORE_FAMILIES and
    each family's in the order given; families without a detector left out."""
    groups = {family: [m for m, f in families.items() if f == family] for family in SCORE_FAMILIES}
    return {family: members for family, members in groups.items() if members}


LOSSES = {
    "ce": "CE",
    "logit_adjustment": "LA",
    "balanced_softmax": "BS",
    "ldam_drw": "LDAM-DRW",
    "etf": "ETF+DR",
}
STRATEGIES = {"none": "none", "reg": "SpA-Reg", "proj": "SpA-Proj", "slerp": "SpA-SLERP"}
DATASETS = {
    "digits": "scikit-learn digits",
    "mnist": "MNIST",
    "fashionmnist": "Fashion-MNIST",
    "kmnist": "KMNIST",
    "cifar10": "CIFAR-10",
    "cifar100": "CIFAR-100",
    "synthetic_cifar": "synthetic CIFAR-shaped data",
    "imagenet_lt": "ImageNet-LT",
}
ARCHITECTURES = {"resnet18": "ResNet-18", "resnet32": "ResNet-32", "resnet50": "ResNet-50", "lenet": "LeNet"}
OOD_SETS = {
    "photos": "photos",
    "noise": "noise",
    "cifar10": "CIFAR-10",
    "cifar100": "CIFAR-100",
    "svhn": "SVHN",
    "mnist": "MNIST",
    "fashionmnist": "Fashion-MNIST",
    "kmnist": "KMNIST",
    "textures": "Textures",
    "tinyimagenet": "TinyImageNet",
    "places365": "Places365",
    "notmnist": "notMNIST",
}
