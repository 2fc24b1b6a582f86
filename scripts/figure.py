"""Snakemake entry point: figure ``wildcards.figure`` of the paper (nclab.contents), from its inputs."""

from nclab import figures
from nclab.io import atomic_path, logged

with logged(snakemake.log[0]):
    figures.apply_style(snakemake.params.style)
    files = {name: path for name, path in snakemake.input.items() if name != "code"}
    fig = figures.draw(snakemake.wildcards.figure, snakemake.params.source, files, snakemake.params.options)
    with atomic_path(snakemake.output[0]) as tmp:
        fig.savefig(tmp, format="pdf", metadata={"CreationDate": None, "ModDate": None})
    print(f"wrote {snakemake.output[0]}")
