"""Snakemake entry point: t-SNE embedding of the test features at a run's final checkpoint."""

from nclab.embedding import tsne
from nclab.io import atomic_savez, epoch_file, load_dump, logged

with logged(snakemake.log[0]):
    dump = load_dump(epoch_file(snakemake.input.dumps, snakemake.params.epoch, ".npz"))
    points = tsne(dump["test_features"], snakemake.params.perplexity, snakemake.params.seed)
    atomic_savez(snakemake.output[0], points=points, labels=dump["test_labels"])
    print(f"t-SNE of {len(points)} test features")
