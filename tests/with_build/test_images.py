"""Images end to end: `make predict` and `ts-infer --image` in generated projects on both lanes (torchvision's
class names, a labels file, a one-channel model with its own preprocessing), the same answers from predict.py,
and the builds without libjpeg and libpng that say how to get --image. Each project's own tests (tests/test_images.py, run
by its `make verify`) check the C++ preprocessing against Python's on images they make."""

from __future__ import annotations

import os
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torchvision

from tests.conftest import lane_python, run, tsgen
from tests.with_build.conftest import BARE_MACHINE, make

pytestmark = pytest.mark.e2e

ROW = re.compile(r"  (\d\.\d{4})  (\d+)(?:  (.*))?")


def write_png(path: Path, height: int, width: int, seed: int, mode: str = "RGB") -> Path:
    """A picture of smooth colour fields and noise, made here (no image is downloaded)."""
    from PIL import Image

    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, height // 16 + 2, width // 16 + 2, generator=generator)
    smooth = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
    pixels = (smooth[0] * 255).round().byte().permute(1, 2, 0).contiguous()
    Image.frombytes("RGB", (width, height), bytes(pixels.flatten().tolist())).convert(mode).save(path)
    return path


def predictions(stdout: str) -> dict[str, list[tuple[float, int, str]]]:
    """The "FILE: top-K" blocks of ts-infer --image / predict.py: (probability, index, name) rows per file."""
    blocks: dict[str, list[tuple[float, int, str]]] = {}
    for line in stdout.splitlines():
        if header := re.fullmatch(r"(.+): top-\d+", line):
            rows = blocks.setdefault(header.group(1), [])
        elif row := ROW.fullmatch(line):
            rows.append((float(row.group(1)), int(row.group(2)), row.group(3) or ""))
    return blocks


def same_predictions(cpp: str, python: str) -> None:
    """C++ and Python name the same classes in the same order, with probabilities equal to the printed digits."""
    ours, theirs = predictions(cpp), predictions(python)
    assert ours and list(ours) == list(theirs)
    for image in ours:
        assert [row[1:] for row in ours[image]] == [row[1:] for row in theirs[image]]
        assert all(abs(a[0] - b[0]) <= 1.01e-4 for a, b in zip(ours[image], theirs[image], strict=True))


def test_make_predict_prints_torchvision_class_names(default_project: SimpleNamespace, tmp_path: Path) -> None:
    """resnet18 (random weights): export records the weights' recipe and 1000 ImageNet names; `make predict` prints
    the top-5 of each image with those names, as predict.py does in Python."""
    project = default_project.path
    assert default_project.first.returncode == 0, default_project.first.stdout
    assert (
        "image preprocessing (ts-infer --image, predict.py): resize 256 (bilinear), center crop 224x224, "
        "mean [0.485, 0.456, 0.406], std [0.229, 0.224, 0.225] (from ResNet18_Weights.IMAGENET1K_V1)"
    ) in default_project.first.stdout
    assert "class names: 1000 from ResNet18_Weights.IMAGENET1K_V1 (tench, goldfish, great white shark, ...)" in (
        default_project.first.stdout
    )
    images = [write_png(tmp_path / "wide.png", 240, 320, 1), write_png(tmp_path / "tall.png", 500, 281, 2)]
    result = make(project, "predict", f"IMAGE={images[0]} {images[1]}")
    assert result.returncode == 0, result.stdout
    blocks = predictions(result.stdout)
    assert list(blocks) == [str(image) for image in images]
    categories = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
    for rows in blocks.values():
        assert len(rows) == 5 and all(name == categories[index] for _, index, name in rows)
        assert rows == sorted(rows, key=lambda row: -row[0])
    python = run([lane_python("default"), "-m", "torch_deploy", "predict", *images], cwd=project)
    assert python.returncode == 0, python.stderr
    same_predictions(result.stdout, python.stdout)
    # The AOTInductor file carries the same preprocessing and class names, in C++ and in Python.
    package = run(
        [project / "build/ts-infer", project / "artifacts/model.pt2", "--image", images[0], "--image", images[1]]
    )
    assert package.returncode == 0, package.stderr
    same_predictions(package.stdout, result.stdout)
    python = run(
        [lane_python("default"), "-m", "torch_deploy", "predict", "--model", "artifacts/model.pt2", *images],
        cwd=project,
    )
    assert python.returncode == 0, python.stderr
    same_predictions(package.stdout, python.stdout)


def test_make_predict_names_what_is_missing(default_project: SimpleNamespace, tmp_path: Path) -> None:
    """No IMAGE, or an image that is not there: one line each saying what to do, and a failed make."""
    nothing = make(default_project.path, "predict")
    assert nothing.returncode != 0
    assert "predict: FAIL: no image given; run make predict IMAGE=path/to/photo.jpg" in nothing.stdout
    missing = make(default_project.path, "predict", f"IMAGE={tmp_path / 'nope.jpg'}")
    assert missing.returncode != 0
    assert f"ts-infer: error: {tmp_path / 'nope.jpg'}: cannot open the image (missing or unreadable)" in missing.stdout


def test_without_decoders_verify_passes_and_image_says_how_to_enable_it(
    default_project: SimpleNamespace, bare_machine_build: SimpleNamespace, tmp_path: Path
) -> None:
    """A machine without libjpeg and libpng (their find_package disabled): the build passes verify (the project's
    image tests skip, saying why), `--image` says how to get them in one line; asking for images there
    (TORCH_DEPLOY_IMAGES=ON) fails at configure time with the same advice."""
    project, verify = default_project.path, bare_machine_build.verify
    assert verify.returncode == 0, verify.stdout
    assert "ts-infer --image disabled: libjpeg and libpng not found" in " ".join(verify.stdout.split())
    env = {**os.environ, "TS_INFER": str(bare_machine_build.runner)}
    tests = run([lane_python("default"), "-m", "pytest", "-q", "-rs", "tests/test_images.py"], cwd=project, env=env)
    assert tests.returncode == 0 and "this ts-infer was built without libjpeg and libpng" in tests.stdout, tests.stdout
    image = write_png(tmp_path / "x.png", 64, 64, 3)
    result = run([bare_machine_build.runner, project / "artifacts/model.pt", "--image", image])
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"ts-infer: error: --image {image}: this ts-infer was built without libjpeg and libpng, which --image needs "
        "to decode images; install their development files (Debian/Ubuntu: apt install libjpeg-dev libpng-dev; "
        "conda: libjpeg-turbo libpng) and rebuild: make build CMAKE_ARGS=-DTORCH_DEPLOY_IMAGES=ON"
    ]
    required = make(
        project,
        "build-images-on/CMakeCache.txt",
        "BUILD_DIR=build-images-on",
        f"CMAKE_ARGS={BARE_MACHINE} -DTORCH_DEPLOY_IMAGES=ON",
    )
    assert required.returncode != 0
    assert "TORCH_DEPLOY_IMAGES=ON but libjpeg and libpng not found; install the development files" in " ".join(
        required.stdout.split()
    )


def test_cpu_lane_predicts_with_a_labels_file(cpu_lane_project: SimpleNamespace, tmp_path: Path) -> None:
    """torch 2.13.0 (no torchvision): a user model with 32x32 input gets ImageNet's values scaled to its size
    (resize 37), the names of its labels file, and C++ answers as predict.py does."""
    project = cpu_lane_project.path
    assert cpu_lane_project.first.returncode == 0, cpu_lane_project.first.stdout
    image = write_png(tmp_path / "photo.png", 90, 120, 4)
    result = make(project, "predict", f"IMAGE={image}")
    assert result.returncode == 0, result.stdout
    rows = predictions(result.stdout)[str(image)]
    names = (project / "models" / "classes.txt").read_text().split()
    assert len(rows) == 5 and all(name == names[index] for _, index, name in rows)
    python = run([lane_python("cpu"), "-m", "torch_deploy", "predict", image], cwd=project)
    assert python.returncode == 0, python.stderr
    same_predictions(result.stdout, python.stdout)
    saved = run(
        [
            lane_python("cpu"),
            "-c",
            "from torch_deploy import predict; print(predict.load_model('artifacts/model.pt')[1])",
        ],
        cwd=project,
    )
    assert "resize=37, crop=(32, 32)" in saved.stdout and 'source="ImageNet\'s usual values"' in saved.stdout


GREY_NET = """\
import torch


class Digits(torch.nn.Module):
    \"\"\"A one-channel 28x28 classifier, as MNIST models are.\"\"\"

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 6, 5)
        self.head = torch.nn.Linear(6, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(x)).amax(dim=(2, 3)))


def make():
    return Digits()
"""


def test_a_grey_model_with_its_own_preprocessing(tmp_path: Path) -> None:
    """A one-channel model with preprocess values given as answers and a labels file: verify passes (its own image
    tests compare the grey conversion and resizing in C++ and Python), predict names the digits; a deploy.json
    edited into a resize below the crop is refused by export in one line."""
    (tmp_path / "digits.py").write_text(GREY_NET)
    (tmp_path / "digits.txt").write_text("".join(f"digit {i}\n" for i in range(10)))
    generation = tsgen(
        "new",
        "digits",
        "--model",
        "digits.py:make",
        "--input-shape",
        "1,1,28,28",
        "--preprocess",
        "resize=32 mean=0.1307 std=0.3081",
        "--labels",
        "digits.txt",
        "--top-k",
        "3",
        "--no-build",
        "-o",
        "out",
        cwd=tmp_path,
    )
    assert generation.returncode == 0, generation.stdout + generation.stderr
    project = tmp_path / "out" / "digits"
    verify = make(project, "verify")
    assert verify.returncode == 0, verify.stdout
    assert (
        "image preprocessing (ts-infer --image, predict.py): resize 32 (bilinear), center crop 28x28, "
        "mean [0.1307], std [0.3081] (from ImageNet's usual values, deploy.json)" in verify.stdout
    )
    assert re.search(r"tests: \d+ passed, 1 skipped in", verify.stdout)  # the dynamic batch test
    image = write_png(tmp_path / "scan.png", 40, 30, 5, mode="L")
    result = make(project, "predict", f"IMAGE={image}")
    assert result.returncode == 0, result.stdout
    rows = predictions(result.stdout)[str(image)]
    assert len(rows) == 3 and all(name == f"digit {index}" for _, index, name in rows)
    config = project / "deploy.json"
    config.write_text(config.read_text().replace('"resize": 32', '"resize": 20'))
    export = make(project, "export")
    assert export.returncode != 0
    assert 'ERROR: preprocess: resize 20 is below the crop 28x28; fix "preprocess" in deploy.json' in export.stdout


def test_a_labels_file_that_does_not_fit_the_model_is_refused(tmp_path: Path) -> None:
    """Three names for a ten-class model: export stops with one line saying how many of each."""
    (tmp_path / "digits.py").write_text(GREY_NET)
    (tmp_path / "three.txt").write_text("a\nb\nc\n")
    generation = tsgen(
        "new", "three", "--model", "digits.py:make", "--input-shape", "1,1,28,28", "--labels", "three.txt",
        "--no-build", "-o", "out", cwd=tmp_path,
    )  # fmt: skip
    assert generation.returncode == 0, generation.stdout + generation.stderr
    export = make(tmp_path / "out" / "three", "export")
    assert export.returncode != 0
    assert (
        "ERROR: labels=models/three.txt: 3 class names, but the model's first output has 10 classes; give one name "
        "per class, in the order of the scores"
    ) in export.stdout
    assert not (tmp_path / "out" / "three" / "artifacts" / "model.pt").exists()
