"""Snakemake entry point: one OOD set in the in-distribution images' format."""

from nclab import data
from nclab.io import logged

BUILDERS = {"photos": data.photo_patches, "noise": data.uniform_noise}

with logged(snakemake.log[0]):
    name = snakemake.wildcards.ood
    images = BUILDERS[name](**snakemake.params.spec, image_size=snakemake.params.image_size,
                            seed=snakemake.params.seed)
    data.save_ood(snakemake.output[0], images)
    print(f"{name}: {len(images.images)} images")
