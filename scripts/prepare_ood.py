"""Snakemake entry point: one OOD set in the in-distribution images' format."""

from nclab import data
from nclab.io import logged

SYNTHETIC = {"photos": data.photo_patches, "noise": data.uniform_noise}

with logged(snakemake.log[0]):
    name, p = snakemake.wildcards.ood, snakemake.params
    grayscale = p.image_format in data.GRAYSCALE_FORMATS
    if name in SYNTHETIC:
        levels = data.grey_levels(p.image_format)
        images = SYNTHETIC[name](**p.synthetic, image_size=p.image_size, seed=p.seed, rgb=not grayscale, levels=levels)
    else:
        from nclab import real_data

        root = real_data.manifest_root(snakemake.input.raw[0]) if snakemake.input.raw else None
        size, workers = p.image_size, snakemake.threads
        images = real_data.ood_set(name, root, folder=p.folder, size=size, workers=workers, grayscale=grayscale)
    data.save_ood(snakemake.output[0], images)
    print(f"{name}: {len(images.images)} images of shape {images.images.shape[1:]}")
