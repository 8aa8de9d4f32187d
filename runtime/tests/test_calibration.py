"""The int8 format's calibration inputs (deploy.json's "calibration"): a folder of images is preprocessed as
ts-infer --image preprocesses an image, and grouped into the model's fixed batch. (The file of inputs, the errors and
the export itself are tested through a real export in tests/with_build/test_int8.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image
from torch_deploy import export, predict

AUTO = {"resize": "auto", "mean": "auto", "std": "auto", "interpolation": "auto"}


@pytest.fixture
def calibration_folder(tmp_path: Path) -> Path:
    """Three photos of different sizes, and a file that is not an image (skipped)."""
    folder = tmp_path / "calib"
    folder.mkdir()
    generator = torch.Generator().manual_seed(0)
    for index, (height, width) in enumerate([(40, 60), (64, 48), (50, 50)]):
        pixels = (torch.rand(height, width, 3, generator=generator) * 255).to(torch.uint8).numpy()
        Image.fromarray(pixels).save(folder / f"{index}.{'png' if index % 2 else 'jpg'}")
    (folder / "notes.txt").write_text("not an image")
    return folder


def calibrate(folder: Path, batch: int) -> list[tuple[torch.Tensor, ...]]:
    config = {"project_dir": str(folder.parent), "calibration": folder.name, "preprocess": AUTO}
    inputs = {"x": torch.rand(batch, 3, 32, 32)}
    return export.calibration_inputs(config, export.Source(torch.nn.Identity()), inputs)


def test_a_folder_of_images_calibrates_as_the_runner_preprocesses_them(calibration_folder: Path) -> None:
    samples = calibrate(calibration_folder, batch=1)
    settings = export.image_settings({"preprocess": AUTO}, export.Source(torch.nn.Identity()), {"x": samples[0][0]})
    images = export.calibration_images(calibration_folder)
    assert [path.name for path in images] == ["0.jpg", "1.png", "2.jpg"]
    assert len(samples) == 3
    for (sample,), image in zip(samples, images, strict=True):
        assert torch.equal(sample, predict.preprocess(predict.read_image(image), settings))


def test_images_fill_the_models_fixed_batch_in_turn(calibration_folder: Path) -> None:
    """A fixed batch of 2 over 3 images: two batches, the last one completed with the first image."""
    single = [sample for (sample,) in calibrate(calibration_folder, batch=1)]
    batches = calibrate(calibration_folder, batch=2)
    assert [tuple(b.shape) for (b,) in batches] == [(2, 3, 32, 32), (2, 3, 32, 32)]
    assert torch.equal(batches[0][0], torch.cat(single[:2])) and torch.equal(
        batches[1][0], torch.cat([single[2], single[0]])
    )
