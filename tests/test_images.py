"""Image sources of any data set: side-information kinds, image files, data modules, networks
sized from the shapes, and training on a folder of images from the command line."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dsc.errors import ConfigError, DscError
from dsc.models.image_codec import ImageCodecNetworks
from dsc.sources.datamodules import ImageFolderDataModule
from dsc.sources.image_files import ImageFileError, read_images
from dsc.sources.images import ImageHalves, SideInfo, crop

ROOT = Path(__file__).resolve().parent.parent


def write_pngs(folder: Path, count: int, size=(16, 16), mode="L", seed=0) -> np.ndarray:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shape = size if mode == "L" else (*size, 3)
    arrays = (rng.random((count, *shape)) * 255).astype(np.uint8)
    for i, array in enumerate(arrays):
        Image.fromarray(array, mode=mode).save(folder / f"img{i:03d}.png")
    return arrays


def test_noisy_side_information_is_the_left_half_plus_noise_of_the_configured_spread():
    images = torch.rand(200, 1, 8, 8)
    halves = ImageHalves(images, 3, SideInfo("noisy", noise_std=0.2), seed=5)
    source, side = halves.batch(torch.arange(200))
    left = images[..., :4] * 2 - 1
    noise = (side - left[:, None]) / 2  # back on the [0, 1] pixel scale
    n = noise.numel()
    assert abs(noise.mean().item()) < 4 * 0.2 / math.sqrt(n)
    assert abs(noise.std().item() - 0.2) < 4 * 0.2 / math.sqrt(2 * n)
    # decoders draw independently, and decoder k's noise does not depend on which others are asked
    assert abs(torch.corrcoef(noise[:, :2].transpose(0, 1).reshape(2, -1))[0, 1].item()) < 4 / math.sqrt(n / 3)
    alone = halves.batch(torch.arange(200), torch.tensor([2]))[1]
    assert torch.equal(alone[:, 0], side[:, 2])
    assert torch.equal(source, images[..., 4:] * 2 - 1)
    training = ImageHalves(images, 3, SideInfo("noisy", noise_std=0.2))
    assert not torch.equal(training.batch(torch.arange(5))[1], training.batch(torch.arange(5))[1])


def test_lowres_side_information_is_the_block_means_of_the_whole_image():
    images = torch.rand(3, 3, 8, 12)
    _, side = ImageHalves(images, 2, SideInfo("lowres", factor=4)).batch(torch.arange(3))
    blocks = (images * 2 - 1).reshape(3, 3, 2, 4, 3, 4).mean(dim=(3, 5))
    assert side.shape == (3, 2, 3, 2, 3)
    torch.testing.assert_close(side[:, 0], blocks)
    assert torch.equal(side[:, 0], side[:, 1])
    with pytest.raises(ConfigError, match="factor 5 must divide"):
        ImageHalves(images, 2, SideInfo("lowres", factor=5))


def test_colour_crops_are_blocks_of_every_channel():
    images = torch.rand(4, 3, 12, 16)
    halves = ImageHalves(images, 2, SideInfo("crop", crop_size=5), seed=2)
    _, side = halves.batch(torch.arange(4))
    top, column = halves.positions(torch.arange(4))
    scaled = images * 2 - 1
    for b in range(4):
        for k in range(2):
            t, c = int(top[b, k]), int(column[b, k])
            assert torch.equal(side[b, k], scaled[b, :, t:t + 5, c:c + 5])
    left = torch.arange(2 * 6 * 4, dtype=torch.float32).reshape(1, 2, 6, 4)
    out = crop(left, torch.tensor([[1]]), torch.tensor([[2]]), 2)
    assert out[0, 0, 1].tolist() == [[24 + 6, 24 + 7], [24 + 10, 24 + 11]]


@pytest.mark.parametrize("side, match", [(SideInfo("crop", crop_size=9), "crop_size 9 does not fit"),
                                         (dict(kind="blurry"), "crop, noisy, lowres"),
                                         (dict(kind="noisy", noise_std=0), "noise_std")])
def test_side_information_that_cannot_be_drawn_is_refused(side, match):
    with pytest.raises(ConfigError, match=match):
        ImageHalves(torch.rand(2, 1, 16, 16), 1, side if isinstance(side, SideInfo) else SideInfo(**side))


def test_a_folder_of_pngs_reads_back_its_pixels(tmp_path):
    grey = write_pngs(tmp_path / "grey", 3)
    images = read_images(tmp_path / "grey")
    assert images.shape == (3, 1, 16, 16) and torch.equal(images[:, 0] * 255, torch.from_numpy(grey).float())
    rgb = write_pngs(tmp_path / "rgb" / "class_a", 2, mode="RGB")
    images = read_images(tmp_path / "rgb", channels=3)
    assert images.shape == (2, 3, 16, 16)
    torch.testing.assert_close(images.permute(0, 2, 3, 1) * 255, torch.from_numpy(rgb).float())


def test_image_sizes_are_made_one_by_resize_or_centre_crop(tmp_path):
    write_pngs(tmp_path / "a", 1, size=(16, 16))
    write_pngs(tmp_path / "a", 1, size=(20, 24), seed=1)  # overwrites img000: rename it
    (tmp_path / "a" / "img000.png").rename(tmp_path / "a" / "wide.png")
    write_pngs(tmp_path / "a", 1, size=(16, 16), seed=2)
    with pytest.raises(ImageFileError, match="2 sizes .*image_size"):
        read_images(tmp_path / "a")
    assert read_images(tmp_path / "a", size=[8, 8]).shape == (2, 1, 8, 8)
    from dsc.sources.image_files import fit_images
    columns = torch.arange(12.0).expand(1, 1, 8, 12) / 12
    assert torch.equal(fit_images(columns, (8, 8), "center_crop"), columns[..., 2:10])  # no resize needed
    shrunk = fit_images(torch.rand(1, 1, 20, 24), (10, 10), "center_crop")  # shorter side to 10, then crop
    assert shrunk.shape == (1, 1, 10, 10)


def test_arrays_of_images_in_every_layout(tmp_path):
    grey = (np.arange(2 * 8 * 8) % 256).astype(np.uint8).reshape(2, 8, 8)
    np.save(tmp_path / "grey.npy", grey)
    torch.testing.assert_close(read_images(tmp_path / "grey.npy")[:, 0] * 255, torch.from_numpy(grey).float())
    hwc = np.random.default_rng(0).random((3, 8, 8, 3)).astype(np.float32)
    np.savez(tmp_path / "rgb.npz", images=hwc, labels=np.zeros(3))
    assert torch.equal(read_images(tmp_path / "rgb.npz", channels=3), torch.from_numpy(hwc).permute(0, 3, 1, 2))
    for name, array, match in (("bad_dtype.npy", grey.astype(np.int64), "dtype int64"),
                               ("range.npy", grey.astype(np.float32), r"in \[0, 1\]"),
                               ("shape.npy", np.zeros((4, 5), np.uint8), "got shape")):
        np.save(tmp_path / name, array)
        with pytest.raises(ImageFileError, match=match) as error:
            read_images(tmp_path / name)
        assert name in str(error.value)


def test_missing_or_empty_inputs_are_errors_naming_them(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageFileError, match="empty: no images"):
        read_images(tmp_path / "empty")
    with pytest.raises(ImageFileError, match="no such file"):
        read_images(tmp_path / "absent")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ImageFileError, match="broken.png: not a readable image"):
        read_images(tmp_path / "broken.png")


def test_folder_data_module_splits_and_sizes_the_model(tmp_path):
    write_pngs(tmp_path / "train", 30)
    write_pngs(tmp_path / "test", 6, seed=1)
    module = ImageFolderDataModule(str(tmp_path), num_decoders=2, crop_size=4, val_size=5, batch_size=8)
    module.setup()
    assert (len(module.train_set), len(module.val_set), len(module.test_set)) == (25, 5, 6)
    assert not set(module.train_index.tolist()) & set(module.val_index.tolist())
    assert module.model_options() == {"image_shape": [1, 16, 16]}
    item = next(iter(module.train_dataloader()))
    assert item.source.shape == (8, 1, 16, 8) and item.side_info.shape == (8, 2, 1, 4, 4)
    carved = ImageFolderDataModule(str(tmp_path / "train"), val_size=0.2, test_size=0.1)
    carved.setup()
    assert (len(carved.train_set), len(carved.val_set), len(carved.test_set)) == (21, 6, 3)
    write_pngs(tmp_path / "odd", 3, size=(18, 18))
    with pytest.raises(ImageFileError, match=r"multiples of 4: set source.image_size=\[16, 16\]"):
        ImageFolderDataModule(str(tmp_path / "odd")).setup()


def test_networks_size_themselves_from_the_shapes():
    mnist = ImageCodecNetworks()  # the paper's Table 12 for 28x28 digits and 7x7 crops
    assert mnist.encoder.net[7].in_features == 128 * 7 * 7
    assert mnist.projection.net[5].in_features == 64 * 4 * 4
    assert mnist.decoder.fc[2].out_features == 128 * 7 * 7
    nets = ImageCodecNetworks(latent_dim=3, image_shape=(3, 32, 24), side_shape=(3, 32, 12), channels=16,
                              features=8, hidden=16, estimator_hidden=16).eval()
    with torch.no_grad():
        posterior = nets.encoder(torch.zeros(5, 3, 32, 12))
        out = nets.decoder(posterior.mean, nets.projection(torch.zeros(5, 3, 32, 12)))
        logits = nets.estimator(torch.zeros(5, 7, 3), torch.zeros(5, 3, 32, 12))
    assert posterior.mean.shape == (5, 3) and out.shape == (5, 3, 32, 12) and logits.shape == (5, 7)
    assert out.abs().max() <= 1


@pytest.mark.parametrize("extra", [[], ["source.channels=3", "source.side_info=noisy", "source.image_size=[12,12]"]])
def test_train_on_a_folder_of_images_from_the_command_line(tmp_path, extra):
    write_pngs(tmp_path / "images", 24, mode="RGB" if extra else "L")
    run = subprocess.run([sys.executable, "train.py", "source=image_folder", f"source.root={tmp_path / 'images'}",
                          "source.crop_size=4", "trainer.fast_dev_run=true", "logger=csv", "device=cpu",
                          "model.channels=8", "model.features=8", "model.hidden=16", "model.estimator_hidden=16",
                          f"hydra.run.dir={tmp_path / 'run'}", *extra],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    shape = "3x12x12" if extra else "1x16x16"
    assert f"images {shape}" in run.stderr + run.stdout


def test_training_without_a_root_is_a_one_line_error(tmp_path):
    run = subprocess.run([sys.executable, "train.py", "source=image_folder", "trainer.fast_dev_run=true",
                          f"hydra.run.dir={tmp_path / 'run'}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and "source.root" in run.stderr and "Traceback" not in run.stderr


def test_a_data_error_is_a_dsc_error():
    assert issubclass(ImageFileError, DscError)


def test_a_codec_trained_on_a_folder_is_evaluated_through_the_image_job(tmp_path):
    """train.py then evaluate.py on the same folder: the generic image job reports the image
    metrics of the source's own data, labelled with the source."""
    import json

    write_pngs(tmp_path / "images", 40)
    common = ["source=image_folder", f"source.root={tmp_path / 'images'}", "source.side_info=noisy", "device=cpu"]
    train = subprocess.run([sys.executable, "train.py", *common, "trainer.max_epochs=1", "logger=csv",
                            "model.channels=8", "model.features=8", "model.hidden=16", "model.estimator_hidden=16",
                            f"hydra.run.dir={tmp_path / 'train'}"],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert train.returncode == 0, train.stderr[-3000:]
    ckpt = tmp_path / "train" / "checkpoints" / "best.ckpt"
    run = subprocess.run([sys.executable, "evaluate.py", *common, f"ckpt_path={ckpt}", "num_decoders=2", "rate_bits=2",
                          "num_candidates=16", f"hydra.run.dir={tmp_path / 'eval'}"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    (point,) = json.loads((tmp_path / "eval" / "metrics.json").read_text())["points"]
    assert point["source"] == "image_folder" and point["num_decoders"] == 2 and 0 <= point["match_prob"] <= 1
    assert point["digits"] == 4 and 0 < point["mse"] < 1 and "psnr_db" in point and "ssim" in point
    assert str(tmp_path / "images") in point["data"]
    assert (tmp_path / "eval" / "reconstructions.png").is_file()
    protocol = subprocess.run([sys.executable, "evaluate.py", "experiment=mnist_rd", *common, f"ckpt_paths=[{ckpt}]",
                               "job.num_candidates=[8,16]", "job.num_decoders=[1,2]", "job.rate_bits=[2,3]",
                               "job.schemes=[gls]", "job.progress=false", f"hydra.run.dir={tmp_path / 'protocol'}"],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert protocol.returncode == 0, protocol.stderr[-3000:]
    points = json.loads((tmp_path / "protocol" / "metrics.json").read_text())["points"]
    assert len(points) == 4 and {p["source"] for p in points} == {"image_folder"}
    assert all(p["num_candidates"] in (8, 16) for p in points)
    assert "paper" not in (tmp_path / "protocol" / "results.md").read_text().lower()  # MNIST's references only


@pytest.mark.parametrize("kind", ["crop", "noisy", "lowres"])
def test_side_information_has_the_plain_memory_layout(kind):
    """Convolutions pick their kernel by the input's strides, also those of size-1 channel
    dimensions: side information in another layout trains to other rounding (MNIST codecs would
    not be bit-identical to the paper's crop pipeline)."""
    images = torch.rand(6, 1, 28, 28)
    _, side = ImageHalves(images, 3, SideInfo(kind), seed=0).batch(torch.arange(6))
    assert side.stride() == torch.empty(side.shape).stride()
    assert side[:, 0].stride() == (side.stride(0), *torch.empty(side.shape[2:]).stride())
