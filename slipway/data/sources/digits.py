"""``digits`` source: scikit-learn's bundled 8x8 handwritten digits (1,797 images, values 0..16).

Bundled with scikit-learn, so tests and smoke runs need no download and no store. Use
``scale: 16`` to bring the values into [0, 1]. The partition and uri are ignored.
"""

from __future__ import annotations

from slipway.data.sources.base import RawData, StoreFactory


def read(uri: str | None, store_factory: StoreFactory) -> RawData:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return RawData(x=digits.images, y=digits.target, origin="sklearn.datasets.load_digits")
