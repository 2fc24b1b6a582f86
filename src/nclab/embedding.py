"""Two-dimensional embeddings of features for the t-SNE figures (van der Maaten & Hinton, JMLR 2008)."""

from __future__ import annotations

import numpy as np
from sklearn.manifold import TSNE


def tsne(features: np.ndarray, perplexity: float, seed: int) -> np.ndarray:
    perplexity = min(perplexity, (len(features) - 1) / 3)  # scikit-learn requires perplexity < n_samples
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
        np.asarray(features, np.float64)
    )
