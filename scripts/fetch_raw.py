"""Snakemake entry point (local rule): download a torchvision dataset if allowed, verify it, write its manifest."""

import json
from pathlib import Path

from nclab import real_data
from nclab.io import atomic_write_text, logged

with logged(snakemake.log[0]):
    name, root = snakemake.wildcards.source, Path(snakemake.params.root).resolve()
    files = real_data.fetch(name, root, snakemake.params.download)
    manifest = {"dataset": name, "root": str(root),
                "files": {str(Path(path).relative_to(root)): size for path, size in files.items()}}
    atomic_write_text(snakemake.output[0], json.dumps(manifest, indent=1) + "\n")
    print(f"{name}: {len(files)} raw files verified under {root}")
