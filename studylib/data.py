"""MNIST and CIFAR-10 as 32x32 images in [-0.5, 0.5], dequantised, with the paper's augmentation.

Images are kept as uint8 tensors; floats are made per batch. Training batches are drawn
with an explicit torch.Generator so that a resumed run sees exactly the batches an
uninterrupted one would.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from studylib import storage
from studylib.config import DATASETS, check_choice

SPLITS = ("train", "test")
DIGITS = tuple(str(i) for i in range(10))
CLASSES = {
    "mnist": DIGITS,
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    **{f"bg-mnist-{blur}": DIGITS for blur in (0, 1, 5)},
}
BG_SEED = 20200426  # BG-MNIST is one fixed dataset: its backgrounds do not depend on the study's seed
# BG-MNIST's composites are built once (the blurred training set takes 20 s on 2 cores) and
# kept under $STUDYLIB_HOME/data; bump this when `bg_mnist` changes, so that they are rebuilt.
BG_VERSION = 1
HOW_TO_SET = (
    "set STUDYLIB_DATA to a folder holding torchvision's MNIST/raw/ files and cifar10.npz "
    "(e.g. export STUDYLIB_DATA=../shared/data), or unset it to let torchvision download"
)


class DataError(RuntimeError):
    """The data could not be found or read."""


def _source_folder():
    folder = storage.data_dir()
    if folder is not None and not folder.is_dir():
        raise DataError(f"STUDYLIB_DATA={folder} is not a folder; {HOW_TO_SET}")
    return folder


def _mnist(train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    from torchvision.datasets import MNIST

    folder = _source_folder()
    try:
        if folder is not None:
            ds = MNIST(str(folder), train=train, download=False)
        else:
            ds = MNIST(str(storage.home() / "data"), train=train, download=True)
    except (RuntimeError, OSError) as err:
        raise DataError(f"could not read MNIST ({err}); {HOW_TO_SET}") from err
    images = F.pad(ds.data.unsqueeze(1), (2, 2, 2, 2))  # zero-pad 28x28 -> 32x32
    return images.contiguous(), ds.targets.long()


def _cifar10(train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    folder = _source_folder()
    split = "train" if train else "test"
    if folder is not None:
        path = folder / "cifar10.npz"
        if not path.is_file():
            raise DataError(f"{path} not found; {HOW_TO_SET}")
        with np.load(path) as npz:
            images, labels = npz[f"x_{split}"], npz[f"y_{split}"]
    else:
        from torchvision.datasets import CIFAR10

        try:
            ds = CIFAR10(str(storage.home() / "data"), train=train, download=True)
        except (RuntimeError, OSError) as err:
            raise DataError(f"could not download CIFAR-10 ({err}); {HOW_TO_SET}") from err
        images, labels = ds.data, np.asarray(ds.targets)
    images = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()
    return images, torch.from_numpy(labels.astype(np.int64))


def bg_mnist(digits: torch.Tensor, backgrounds: torch.Tensor, blur: float, generator: torch.Generator) -> torch.Tensor:
    """BG-MNIST-X: each digit (uint8, (N, 1, 32, 32)) over a randomly drawn CIFAR-10 image
    (uint8, (M, 3, 32, 32)), greyscaled (ITU-R 601 luma) and blurred by a Gaussian of
    standard deviation `blur` pixels (0: no blur). With d and b in [0, 1] the composite is
    d + (1 - d) * b: the digit's intensity is its opacity, so strokes stay white and the
    background shows through where the digit is black."""
    pick = torch.randint(len(backgrounds), (len(digits),), generator=generator)
    rgb = backgrounds[pick].float() / 255
    grey = (0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]).unsqueeze(1)
    if blur > 0:
        from torchvision.transforms.functional import gaussian_blur

        size = 2 * math.ceil(3 * blur) + 1
        grey = gaussian_blur(grey, [size, size], [blur, blur])
    d = digits.float() / 255
    return torch.round(255 * (d + (1 - d) * grey)).to(torch.uint8)


@functools.lru_cache(maxsize=8)
def _raw(dataset: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    train = split == "train"
    if dataset == "mnist":
        return _mnist(train)
    if dataset == "cifar10":
        return _cifar10(train)
    stored = storage.home() / "data" / f"{dataset}-{split}-v{BG_VERSION}.pt"
    with contextlib.suppress(Exception):  # missing or unreadable: built again below
        kept = torch.load(stored, weights_only=True)
        return kept["images"], kept["labels"]
    digits, labels = _raw("mnist", split)
    backgrounds, _ = _raw("cifar10", split)
    gen = torch.Generator().manual_seed(BG_SEED + int(train))
    images = bg_mnist(digits, backgrounds, float(dataset.rsplit("-", 1)[1]), gen)
    stored.parent.mkdir(parents=True, exist_ok=True)
    partial = stored.with_name(f"{stored.name}.{os.getpid()}.tmp")
    torch.save({"images": images, "labels": labels}, partial)
    os.replace(partial, stored)  # whole or not at all, whoever writes last
    return images, labels


class ImageDataset(Dataset):
    """Images as uint8 (N, c, 32, 32) and labels; items are (x, y) with x in [-0.5, 0.5].

    Items carry a fixed dequantisation noise U(0, 1/256) drawn once from `seed` (or sit at
    the bin centres when `dequantize` is False), so that evaluation is reproducible;
    `batch` draws fresh noise and augmentation for training. `subset` records the seeded
    sample `load` kept (None: the whole split), so that stored scores name their images.
    """

    def __init__(
        self,
        name: str,
        images: torch.Tensor,
        labels: torch.Tensor,
        seed: int,
        dequantize: bool,
        subset: int | None = None,
    ):
        self.name = name
        self.subset = subset
        self.images = images
        self.labels = labels
        self.flip = name == "cifar10"
        self.classes = CLASSES[name]
        self.seed = seed
        self.dequantize = dequantize

    @functools.cached_property
    def _noise(self) -> torch.Tensor:
        """The fixed dequantisation noise of the items (made on first use: large for train sets)."""
        if not self.dequantize:
            return torch.full(self.images.shape, 0.5)
        return torch.rand(self.images.shape, generator=torch.Generator().manual_seed(self.seed))

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return to_float(self.images[i], self._noise[i]), int(self.labels[i])

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All items at once: x (N, c, 32, 32) float, y (N,)."""
        return to_float(self.images, self._noise), self.labels.clone()

    def batch(self, index: torch.Tensor, generator: torch.Generator, augment: bool = True):
        """Training batch at `index`: fresh dequantisation noise, random crop (4-pixel edge
        padding) and, for CIFAR-10, horizontal flip; all randomness from `generator`."""
        images = self.images[index]
        if augment:
            images = random_crop(images, 4, generator)
            if self.flip:
                flip = torch.rand(len(index), generator=generator) < 0.5
                images = torch.where(flip[:, None, None, None], images.flip(-1), images)
        noise = torch.rand(images.shape, generator=generator)
        return to_float(images, noise), self.labels[index]


def to_float(images: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """uint8 pixels k plus noise u in [0, 1) -> (k + u) / 256 - 0.5, in [-0.5, 0.5)."""
    return (images.float() + noise) / 256.0 - 0.5


def random_crop(images: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Per-image random crop of the original size after `pad` pixels of edge padding."""
    n, _, h, w = images.shape
    padded = F.pad(images.float(), (pad, pad, pad, pad), mode="replicate").to(images.dtype)
    oy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    ox = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    rows = (oy[:, None] + torch.arange(h))[:, :, None]
    cols = (ox[:, None] + torch.arange(w))[:, None, :]
    out = padded.permute(0, 2, 3, 1)[torch.arange(n)[:, None, None], rows, cols]
    return out.permute(0, 3, 1, 2).contiguous()


def load(
    dataset: str,
    split: str = "test",
    subset: int | None = None,
    seed: int = 0,
    dequantize: bool = True,
) -> ImageDataset:
    """The `split` of `dataset` as a Dataset of (x, y); `subset` keeps a seeded random
    sample of that many items (CIFAR-10's file is sorted by class, so never the first n)."""
    check_choice("dataset", dataset, DATASETS)
    check_choice("split", split, SPLITS)
    images, labels = _raw(dataset, split)
    if subset is not None:
        if not 0 < subset <= len(labels):
            raise ValueError(f"subset must be between 1 and {len(labels)}, got {subset}")
        keep = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))[:subset]
        images, labels = images[keep], labels[keep]
    return ImageDataset(dataset, images, labels, seed, dequantize, subset)
