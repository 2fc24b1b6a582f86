"""Snakemake entry point: the in-distribution dataset as uint8 arrays."""

from nclab import data
from nclab.io import logged

with logged(snakemake.log[0]):
    train, test = data.digits_split(snakemake.params.test_fraction, snakemake.params.split_seed)
    data.save_id(snakemake.output[0], train, test, num_classes=int(train.labels.max()) + 1)
    print(f"{snakemake.wildcards.dataset}: {len(train.labels)} train, {len(test.labels)} test images")
