"""Snakemake entry point (local rule): download a torchvision dataset if allowed, verify it, write its manifest."""

from nclab import real_data
from nclab.io import logged

with logged(snakemake.log[0]):
    name, root = snakemake.wildcards.source, snakemake.params.root
    files = real_data.fetch(name, root, snakemake.params.download)
    real_data.save_manifest(snakemake.output[0], name, root, files)
    print(f"{name}: {len(files)} raw files verified under {root}")
