"""Classify images in Python: the reference that ``ts-infer MODEL --image FILE`` reproduces in C++ (for a model that
is not a classifier, a segmentation say, one line per output: what it holds).

    python -m torch_deploy predict photo.jpg [more.png ...]    # in the project folder: top-k with class names, as
                                                               # ts-infer --image prints it
    python -m torch_deploy predict --model artifacts/model.pt2 --top-k 3 photo.jpg   # default: make tune's choice,
                                                                                     # else the first format
    python -m torch_deploy predict --save-input image.pt photo.jpg   # the preprocessed tensor, for comparisons

The preprocessing travels inside the exported model: export.py saves it (and the class names) in model.pt and
model.pt2 (torch_deploy.artifacts describes how), which the C++ runner reads too, so both sides always agree on the
values. It is the classifier recipe of torchvision's weights.transforms() on an image tensor: resize the shorter
side (antialiased), center crop to the model's input size, scale to [0, 1], normalize per channel. It is written in torch operations, the same ATen
kernels ts-infer calls, and it equals torchvision's transforms exactly (the project's tests check both).
Images are decoded with Pillow (EXIF orientation applied, converted to RGB); ts-infer decodes JPEG and PNG with
libjpeg and libpng to the same pixels.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import torch

from torch_deploy import formats
from torch_deploy.artifacts import DeployError, ImageError, ImageSettings, is_scores, named_outputs
from torch_deploy.artifacts import load_model as load_deployed
from torch_deploy.formats import ListingError


def load_model(path: Path) -> tuple[Any, ImageSettings | None, list[str] | None, int]:
    """The exported model (TorchScript or AOTInductor) with the preprocessing and class names export.py saved inside
    it (None where absent), and the top_k it recorded (0: not a classifier)."""
    try:
        deployed = load_deployed(path)
    except DeployError as err:
        raise ImageError(str(err)) from err
    return deployed.model, deployed.image, deployed.classes, deployed.info.top_k if deployed.info else 5


def default_model(artifacts: Path) -> Path:
    """The model file ts-infer runs given the folder (what make predict runs in C++): make tune's choice, else the
    first format's."""
    try:
        return formats.default_model(artifacts)
    except ListingError as err:
        raise ImageError(str(err)) from err


def read_image(path: Path) -> torch.Tensor:
    """The image as a (3, height, width) uint8 RGB tensor: EXIF orientation applied, grey and palette images
    expanded, alpha dropped: the pixels ts-infer decodes from a JPEG or PNG file (Pillow also reads formats that
    ts-infer refuses)."""
    try:
        from PIL import Image, ImageOps
    except ImportError as missing:
        raise ImageError(f"reading images needs Pillow, which {sys.executable} lacks; pip install pillow") from missing
    try:
        with Image.open(path) as opened:
            rgb = ImageOps.exif_transpose(opened).convert("RGB")
    except OSError as err:
        if not Path(path).is_file() or not os.access(path, os.R_OK):
            raise ImageError(f"{path}: cannot open the image (missing or unreadable)") from err
        raise ImageError(f"{path}: not an image Pillow can decode ({err})") from err  # unknown format, truncated
    pixels = torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8)
    return pixels.view(rgb.height, rgb.width, 3).permute(2, 0, 1).contiguous()


def preprocess(image: torch.Tensor, settings: ImageSettings) -> torch.Tensor:
    """A (3, height, width) uint8 RGB image -> the model's (1, channels, crop height, crop width) input,
    as torchvision's ImageClassification transform computes it on a tensor (ts-infer repeats these steps)."""
    if settings.channels == 1:  # torchvision's rgb_to_grayscale: weighted sum, truncated back to uint8
        r, g, b = image.unbind(0)
        image = (0.2989 * r + 0.587 * g + 0.114 * b).to(torch.uint8).unsqueeze(0)
    height, width = image.shape[1:]
    short, long = min(height, width), max(height, width)
    new_short, new_long = settings.resize, int(settings.resize * long / short)
    size = [new_short, new_long] if height <= width else [new_long, new_short]
    if size != [height, width]:
        antialias = settings.interpolation != "nearest"
        resized = torch.nn.functional.interpolate(
            image.unsqueeze(0).float(),
            size=size,
            mode=settings.interpolation,
            align_corners=False if antialias else None,
            antialias=antialias,
        )
        if settings.interpolation == "bicubic":
            resized = resized.clamp(0, 255)
        image = resized.round().to(torch.uint8).squeeze(0)
    crop_height, crop_width = settings.crop
    top = int(round((size[0] - crop_height) / 2.0))  # round half to even, as torchvision's center_crop
    left = int(round((size[1] - crop_width) / 2.0))
    image = image[:, top : top + crop_height, left : left + crop_width]
    scaled = image.float() / 255
    mean = torch.tensor(settings.mean, dtype=torch.float32).view(-1, 1, 1)
    std = torch.tensor(settings.std, dtype=torch.float32).view(-1, 1, 1)
    return ((scaled - mean) / std).unsqueeze(0).to(getattr(torch, settings.dtype))


def top_k_lines(scores: torch.Tensor, names: list[str] | None, k: int) -> list[str]:
    """The top-k classes of one row of scores as ts-infer --image prints them: probability, index, name."""
    probabilities = torch.nn.functional.softmax(scores.double(), dim=0)
    values, indices = probabilities.topk(min(k, scores.numel()))
    return [
        f"  {value:.4f}  {index}" + (f"  {names[index]}" if names and index < len(names) else "")
        for value, index in zip(values.tolist(), indices.tolist(), strict=True)
    ]


# The dtype names ts-infer prints (c10's ScalarType names), for the dtypes models return.
C10_NAMES = {
    torch.float32: "Float", torch.float64: "Double", torch.float16: "Half", torch.bfloat16: "BFloat16",
    torch.int64: "Long", torch.int32: "Int", torch.int16: "Short", torch.int8: "Char", torch.uint8: "Byte",
    torch.bool: "Bool",
}  # fmt: skip


def summarize_output(name: str, output: torch.Tensor, names: list[str] | None, k: int) -> str:
    """One output of a model that is not a classifier, in one line, as ts-infer --image prints it
    (torch_deploy::summarize_output): name, shape, dtype, min, max, mean, and for a (batch, classes, height, width)
    floating output (a segmentation's scores) the share of the first image's pixels given to each of its k most
    frequent classes."""
    line = f"{name} {list(output.shape)} {C10_NAMES.get(output.dtype, str(output.dtype))}"
    if not output.numel():
        return line
    values = output.double()
    line += f" min {values.min().item():.3e} max {values.max().item():.3e} mean {values.mean().item():.3e}"
    if output.dim() == 4 and output.is_floating_point() and output.shape[1] > 1:
        classes = output.shape[1]
        counts = torch.bincount(values[0].argmax(0).flatten(), minlength=classes)
        shown, indices = counts.topk(min(max(k, 1), classes))
        pixels = values[0][0].numel()
        shares = [
            f"{index}"
            + (f" {names[index]}" if names and index < len(names) else "")
            + f" {100.0 * count / pixels:.1f}%"
            for count, index in zip(shown.tolist(), indices.tolist(), strict=True)
            if count > 0
        ]
        line += "; per pixel: " + ", ".join(shares)
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m torch_deploy predict", description="Classify images with the exported model (Python reference)."
    )
    parser.add_argument("images", nargs="+", type=Path, help="image files (JPEG, PNG; any that Pillow reads)")
    parser.add_argument(
        "--model",
        type=Path,
        help="model file, model.pt or model.pt2 (default: make tune's choice, else the first exported)",
    )
    parser.add_argument("--top-k", type=int, help="classes to print (default: the model file's top_k; 0: no classes)")
    parser.add_argument(
        "--save-input", type=Path, help="save the preprocessed tensor (a tuple of them for several images), torch.save"
    )
    args = parser.parse_args(argv)
    try:
        if args.model is None:
            args.model = default_model(Path("artifacts"))
        model, settings, names, recorded = load_model(args.model)
        # As ts-infer --image: top_k 0 (a detector's, or deploy.json's for a model that is no classifier) prints what
        # each output holds, with a segmentation's 5 most frequent classes.
        top_k = recorded if args.top_k is None else args.top_k
        k = top_k if top_k > 0 else 5
        if settings is None:
            raise ImageError(
                f"{args.model} records no image preprocessing: its input is not an image, or deploy.json says "
                '"preprocess": null; set it to "auto" and run make export'
            )
        preprocessed = []
        for path in args.images:
            image = preprocess(read_image(path), settings)
            preprocessed.append(image)
            with torch.no_grad():
                outputs = named_outputs(model(image))
            if not outputs or top_k <= 0 or not is_scores(outputs[0][1]):  # a segmentation, say: what each holds
                print(f"{path}: outputs (not class scores)")
                print("\n".join(f"  {summarize_output(name, output, names, k)}" for name, output in outputs))
                continue
            scores = outputs[0][1]
            print(f"{path}: top-{min(k, scores.shape[1])}")
            print("\n".join(top_k_lines(scores[0], names, k)))
        if args.save_input:  # as ts-infer --save-input: one tensor, or a tuple of them
            torch.save(preprocessed[0] if len(preprocessed) == 1 else tuple(preprocessed), args.save_input)
    except ImageError as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
