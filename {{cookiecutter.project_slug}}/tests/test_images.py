"""Images: ts-infer --image preprocesses in C++ what predict.py preprocesses in Python (which is what torchvision's
transforms compute), and classifies images as Python does. The images are made here, in several formats and shapes.

Stated tolerance of C++ vs Python preprocessing (max abs diff of the normalized input):
- lossless files (PNG, BMP): 1e-6, i.e. identical: both sides run the same ATen kernels on the same pixels;
- JPEG: two grey levels (2 / 255 / the smallest std), as JPEG decoders (Pillow's, OpenCV's) may round differently;
  both libjpeg-turbo builds agree bit for bit where this was measured.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import torch

import predict

pytest.importorskip("PIL", reason="the image tests need Pillow (requirements.txt): pip install pillow")

LOSSLESS_TOLERANCE = 1e-6
JPEG_GREY_LEVELS = 2


def run(runner: Path, *args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(runner), *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def settings(model_file: Path) -> predict.ImageSettings:
    _, settings, _ = predict.load_model(model_file)
    if settings is None:
        pytest.skip('the model takes no image (or deploy.json says "preprocess": null): --image does not apply')
    return settings


@pytest.fixture(scope="module")
def image_runner(runner: Path, model_file: Path, settings: predict.ImageSettings, tmp_path_factory) -> Path:
    """The runner, when it was built with OpenCV (else the tests say how to enable --image and skip)."""
    probe = tmp_path_factory.mktemp("probe") / "none.png"
    result = run(runner, model_file, "--image", probe)
    if "built without OpenCV" in result.stderr:
        pytest.skip(result.stderr.strip())
    return runner


def picture(height: int, width: int, seed: int) -> torch.Tensor:
    """A (height, width, 3) uint8 picture: smooth colour fields (what resizing must not alias) plus fine noise."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, height // 16 + 2, width // 16 + 2, generator=generator)
    smooth = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)
    noise = torch.rand(1, 3, height, width, generator=generator)
    return ((0.8 * smooth + 0.2 * noise)[0] * 255).clamp(0, 255).round().byte().permute(1, 2, 0).contiguous()


# name: (height, width, Pillow mode, EXIF orientation)
IMAGES = {
    "landscape.png": (375, 500, "RGB", None),
    "portrait.jpg": (640, 427, "RGB", None),
    "rotated.jpg": (300, 400, "RGB", 6),  # EXIF says: rotate 90 degrees; both sides must apply it
    "small.png": (20, 30, "RGB", None),  # smaller than the crop: upscaled
    "grey.png": (256, 300, "L", None),
    "alpha.png": (333, 333, "RGBA", None),
    "odd.bmp": (301, 199, "RGB", None),
}


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    from PIL import Image

    folder = tmp_path_factory.mktemp("images")
    paths = {}
    for seed, (name, (height, width, mode, orientation)) in enumerate(IMAGES.items()):
        image = Image.frombytes("RGB", (width, height), bytes(picture(height, width, seed).flatten().tolist())).convert(
            mode
        )
        options = {"quality": 90} if name.endswith(".jpg") else {}
        if orientation:
            exif = Image.Exif()
            exif[0x0112] = orientation
            options["exif"] = exif.tobytes()
        image.save(folder / name, **options)
        paths[name] = folder / name
    return paths


def tolerance(name: str, settings: predict.ImageSettings) -> float:
    return JPEG_GREY_LEVELS / 255 / min(settings.std) if name.endswith(".jpg") else LOSSLESS_TOLERANCE


def test_cpp_preprocessing_matches_python(
    images: dict[str, Path], image_runner: Path, model_file: Path, settings: predict.ImageSettings, tmp_path: Path
) -> None:
    """ts-infer --image ... --save-input writes the tensors it fed the model (a tuple, in order); each equals
    predict.py's for the same file within the stated tolerance."""
    flags = [arg for path in images.values() for arg in ("--image", path)]
    saved = tmp_path / "cpp.pt"
    result = run(image_runner, model_file, *flags, "--save-input", saved, "--optimize", "none")
    assert result.returncode == 0, result.stderr
    cpp = torch.load(saved)
    assert isinstance(cpp, tuple) and len(cpp) == len(images)
    for (name, path), ours in zip(images.items(), cpp, strict=True):
        python = predict.preprocess(predict.read_image(path), settings)
        assert ours.shape == python.shape == (1, settings.channels, *settings.crop), name
        assert ours.dtype == python.dtype, name
        diff = (ours.double() - python.double()).abs().max().item()
        assert diff <= tolerance(name, settings), f"{name}: max abs diff {diff:.3e}"


def test_python_preprocessing_is_torchvisions(images: dict[str, Path], settings: predict.ImageSettings) -> None:
    """predict.preprocess() computes exactly what torchvision's transforms compute on the decoded image (the
    steps of weights.transforms(): Resize with antialiasing, CenterCrop, scale to [0, 1], Normalize)."""
    transforms = pytest.importorskip("torchvision.transforms", reason="torchvision is not installed")
    steps = [transforms.Grayscale()] if settings.channels == 1 else []
    steps += [
        transforms.Resize(settings.resize, interpolation=transforms.InterpolationMode(settings.interpolation)),
        transforms.CenterCrop(list(settings.crop)),
        transforms.ConvertImageDtype(torch.float32),
        transforms.Normalize(settings.mean, settings.std),
    ]
    reference = transforms.Compose(steps)
    for name, path in images.items():
        image = predict.read_image(path)
        expected = reference(image).unsqueeze(0).to(getattr(torch, settings.dtype))
        assert torch.equal(predict.preprocess(image, settings), expected), name


def top_k(output: str) -> dict[str, list[tuple[float, int, str]]]:
    """The "FILE: top-K" blocks that ts-infer --image and predict.py print, parsed."""
    blocks: dict[str, list[tuple[float, int, str]]] = {}
    current: list[tuple[float, int, str]] = []
    for line in output.splitlines():
        header = re.fullmatch(r"(.+): top-\d+", line)
        row = re.fullmatch(r"  (\d\.\d{4})  (\d+)(?:  (.*))?", line)
        if header:
            current = blocks.setdefault(header.group(1), [])
        elif row:
            current.append((float(row.group(1)), int(row.group(2)), row.group(3) or ""))
    return blocks


def test_cpp_classifies_images_as_python_does(
    images: dict[str, Path], image_runner: Path, model_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same classes, names and probabilities (to the printed 4 decimals, +-1e-4) for every image, with the
    class names export.py saved in the model."""
    paths = [str(path) for path in images.values()]
    result = run(image_runner, model_file, *[arg for path in paths for arg in ("--image", path)])
    assert result.returncode == 0, result.stderr
    assert predict.main(["--model", str(model_file), *paths]) == 0
    cpp, python = top_k(result.stdout), top_k(capsys.readouterr().out)
    assert list(cpp) == list(python) == paths
    _, _, names = predict.load_model(model_file)
    for path in paths:
        assert [(index, name) for _, index, name in cpp[path]] == [(index, name) for _, index, name in python[path]]
        assert all(abs(a - b) <= 1.01e-4 for (a, _, _), (b, _, _) in zip(cpp[path], python[path], strict=True))
        if names:
            assert all(name == names[index] for _, index, name in cpp[path])


def test_unreadable_images_fail_in_one_line(image_runner: Path, model_file: Path, tmp_path: Path) -> None:
    """A missing file, or one that is not an image: one error line naming the file, exit 1, on both sides."""
    (tmp_path / "notes.jpg").write_text("not an image")
    for path in (tmp_path / "missing.png", tmp_path / "notes.jpg"):
        result = run(image_runner, model_file, "--image", path)
        assert result.returncode == 1
        why = "cannot open the image" if path.name == "missing.png" else "not an image OpenCV can decode"
        assert result.stderr.startswith(f"ts-infer: error: {path}: {why}")
        assert len(result.stderr.strip().splitlines()) == 1
        with pytest.raises(predict.ImageError, match="cannot open the image|not an image Pillow can decode"):
            predict.read_image(path)
