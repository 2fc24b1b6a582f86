"""Snakemake entry point: the in-distribution dataset as uint8 arrays."""

from nclab import data
from nclab.io import logged

with logged(snakemake.log[0]):
    name, p = snakemake.wildcards.dataset, snakemake.params
    if name == "digits":
        train, test = data.digits_split(**p.split)
        num_classes = int(train.labels.max()) + 1
    elif name == data.SYNTHETIC_CIFAR:
        train, test = data.synthetic_cifar(**p.split)
        num_classes = p.split["num_classes"]
    elif name == data.IMAGENET_LT:
        from nclab import real_data

        spec = p.imagenet_lt
        train, test, num_classes = real_data.imagenet_lt_split(
            spec["root"], spec["lists"], spec["image_size"], workers=snakemake.threads
        )
    else:
        from nclab import real_data

        read = real_data.mnist_split if name in data.MNIST_FAMILY else real_data.cifar_split
        train, test, num_classes = read(name, real_data.manifest_root(snakemake.input.raw[0]))
    data.save_id(snakemake.output[0], train, test, num_classes=num_classes)
    print(f"{name}: {len(train.labels)} train, {len(test.labels)} test images, {num_classes} classes")
