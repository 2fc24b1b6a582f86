"""Display names: how the paper, its tables and figures and the HTML report name what the config names.

Keys are the names of the registries and of the schema (a test checks that they agree). No training, feature or
score job imports this module, so renaming a label replans only the figures, tables and paper. Schedules are
shown by their config names.
"""

SCORES = {
    "msp": "MSP",
    "maxlogit": "MaxLogit",
    "energy": "Energy",
    "mahalanobis": "Mahalanobis",
    "vim": "ViM",
    "neco": "NECO",
    "knn": "KNN",
}
SCORE_FAMILIES = {  # nclab.ood.Score.family
    "logit": "logit-based",
    "distance": "feature distance",
    "collapse": "Neural-Collapse-based",
}
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
    "cifar10": "CIFAR-10",
    "cifar100": "CIFAR-100",
    "synthetic_cifar": "synthetic CIFAR-shaped data",
    "imagenet_lt": "ImageNet-LT",
}
ARCHITECTURES = {"resnet18": "ResNet-18", "resnet32": "ResNet-32", "resnet50": "ResNet-50"}
OOD_SETS = {
    "photos": "photos",
    "noise": "noise",
    "cifar10": "CIFAR-10",
    "cifar100": "CIFAR-100",
    "svhn": "SVHN",
    "mnist": "MNIST",
    "textures": "Textures",
    "tinyimagenet": "TinyImageNet",
    "places365": "Places365",
}
