"""Data: shapes, scaling, padding, dequantisation, augmentation, seeded subsets, clear errors."""

from __future__ import annotations

import pytest
import torch

from studylib import data


@pytest.mark.parametrize("name,channels", [("mnist", 1), ("cifar10", 3)])
def test_load_shapes_and_range(name, channels):
    ds = data.load(name, "test", subset=500, seed=3)
    x, y = ds[0]
    assert x.shape == (channels, 32, 32) and isinstance(y, int)
    xs, ys = ds.tensors()
    assert xs.shape == (500, channels, 32, 32) and ys.shape == (500,)
    assert xs.min() >= -0.5 and xs.max() < 0.5
    assert len(set(ys.tolist())) == 10  # a shuffled subset, not the class-sorted start
    # dequantisation: x = (k + u) / 256 - 0.5 with u in [0, 1)
    k = ds.images.float()
    u = (xs + 0.5) * 256 - k
    assert u.min() >= -1e-4 and u.max() < 1 + 1e-4 and u.std() > 0.2


def test_mnist_is_zero_padded_to_32():
    ds = data.load("mnist", "test", subset=50)
    assert ds.images.shape[-2:] == (32, 32)
    border = torch.cat([ds.images[..., :2, :].flatten(), ds.images[..., -2:, :].flatten()])
    assert border.max() == 0


def test_subsets_are_deterministic_by_seed():
    a = data.load("cifar10", "test", subset=100, seed=1)
    b = data.load("cifar10", "test", subset=100, seed=1)
    c = data.load("cifar10", "test", subset=100, seed=2)
    assert torch.equal(a.tensors()[0], b.tensors()[0])
    assert not torch.equal(a.labels, c.labels)


def test_no_dequantisation_puts_pixels_at_bin_centres():
    ds = data.load("mnist", "test", subset=10, dequantize=False)
    x, _ = ds.tensors()
    assert torch.allclose(x, (ds.images.float() + 0.5) / 256 - 0.5)


def test_random_crop_is_a_shift_of_the_edge_padded_image():
    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.uint8).reshape(2, 3, 8, 8)
    gen = torch.Generator().manual_seed(0)
    assert torch.equal(data.random_crop(images, 0, gen), images)
    out = data.random_crop(images, 2, gen)
    padded = torch.nn.functional.pad(images.float(), (2, 2, 2, 2), mode="replicate")
    for i in range(2):
        assert any(
            torch.equal(out[i].float(), padded[i, :, dy : dy + 8, dx : dx + 8]) for dy in range(5) for dx in range(5)
        )


@pytest.mark.parametrize("name,flips", [("mnist", False), ("cifar10", True)])
def test_training_batches_are_reproducible_and_flip_only_cifar(name, flips):
    ds = data.load(name, "train", subset=64)
    index = torch.arange(64)
    x1, y1 = ds.batch(index, torch.Generator().manual_seed(5))
    x2, _ = ds.batch(index, torch.Generator().manual_seed(5))
    assert torch.equal(x1, x2) and torch.equal(y1, ds.labels)
    assert ds.flip == flips


def test_bad_names_and_missing_folder_give_clear_errors(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'svhn'; allowed values: mnist, cifar10, bg-mnist-0"):
        data.load("svhn")
    with pytest.raises(ValueError, match="allowed values: train, test"):
        data.load("mnist", "valid")
    monkeypatch.setenv("STUDYLIB_DATA", str(tmp_path / "nowhere"))
    data._raw.cache_clear()
    with pytest.raises(data.DataError, match="set STUDYLIB_DATA"):
        data.load("mnist")
    monkeypatch.setenv("STUDYLIB_DATA", str(tmp_path))
    with pytest.raises(data.DataError, match="cifar10.npz not found"):
        data.load("cifar10")
    data._raw.cache_clear()


def test_bg_mnist_composite_blur_and_determinism():
    gen = torch.Generator().manual_seed(0)
    digits = torch.zeros(3, 1, 32, 32, dtype=torch.uint8)
    digits[:, :, 10:20, 15] = 255  # a white stroke
    backgrounds = torch.randint(0, 256, (5, 3, 32, 32), generator=gen, dtype=torch.uint8)
    sharp = data.bg_mnist(digits, backgrounds, 0.0, torch.Generator().manual_seed(1))
    again = data.bg_mnist(digits, backgrounds, 0.0, torch.Generator().manual_seed(1))
    assert torch.equal(sharp, again)
    assert (sharp[:, :, 10:20, 15] == 255).all()  # the digit stays on top
    # blur 0 is the identity on the greyscaled background: off the digit it is the luma itself
    pick = torch.randint(5, (3,), generator=torch.Generator().manual_seed(1))
    rgb = backgrounds[pick].float()
    luma = torch.round(0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2])
    assert (sharp[:, 0, :5].float() - luma[:, :5]).abs().max() <= 1
    blurred = data.bg_mnist(digits, backgrounds, 5.0, torch.Generator().manual_seed(1))
    assert blurred[:, :, :5].float().std() < sharp[:, :, :5].float().std()


def test_bg_mnist_datasets_keep_mnist_labels_and_are_fixed(home):
    data._raw.cache_clear()  # built here, into this test's $STUDYLIB_HOME
    mnist = data.load("mnist", "test")
    for blur in (0, 5):
        bg = data.load(f"bg-mnist-{blur}", "test")
        assert torch.equal(bg.labels, mnist.labels) and bg.images.shape == mnist.images.shape
        digit = mnist.images == 255
        assert (bg.images[digit] == 255).all()
        assert bg.images[~digit].float().std() > 20  # a textured background, not black
        assert not bg.flip
    first = data.load("bg-mnist-0", "test").images
    stored = home / "data" / f"bg-mnist-0-test-v{data.BG_VERSION}.pt"
    assert stored.exists()  # built once, then read from $STUDYLIB_HOME
    data._raw.cache_clear()
    assert torch.equal(first, data.load("bg-mnist-0", "test").images)
    stored.write_bytes(b"truncated")  # an unreadable file is built again, identically
    data._raw.cache_clear()
    assert torch.equal(first, data.load("bg-mnist-0", "test").images)
    assert torch.equal(torch.load(stored, weights_only=True)["images"], first)
    data._raw.cache_clear()
