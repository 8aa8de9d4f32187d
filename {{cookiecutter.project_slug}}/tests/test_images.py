"""Images: ts-infer --image preprocesses in C++ what predict.py preprocesses in Python (which is what torchvision's
transforms compute), and classifies images as Python does. The images are made here, in the kinds of JPEG and PNG
that --image reads (libjpeg and libpng in C++, Pillow in Python), in several shapes and EXIF orientations.

Stated tolerance of C++ vs Python preprocessing (max abs diff of the normalized input):
- PNG: 1e-6, i.e. identical: the same pixels from both decoders, then the same ATen kernels;
- JPEG: two grey levels (2 / 255 / the smallest std), as two libjpeg builds (Pillow's own and the system's) may round
  differently; libjpeg-turbo's defaults agree bit for bit where this was measured.
The decoding cases have the model's resize as their shorter side, so that nothing is resampled between decoding and
the crop and a pixel the two decoders disagree on shows as a whole grey level.
"""

from __future__ import annotations

import re
import struct
import subprocess
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch_deploy import artifacts as artifact_format
from torch_deploy import predict

pytest.importorskip("PIL", reason="the image tests need Pillow (requirements.txt): pip install pillow")

from PIL import Image, PngImagePlugin  # noqa: E402  (after the skip above)

LOSSLESS_TOLERANCE = 1e-6
JPEG_GREY_LEVELS = 2


def run(runner: Path, *args: object) -> subprocess.CompletedProcess[str]:
    """The runner on the CPU: images are decoded and preprocessed there, and compared with Python's CPU results."""
    command = [str(runner), *map(str, args)]
    return subprocess.run(command + ["--device", "cpu"], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def settings(model_file: Path) -> predict.ImageSettings:
    _, settings, _, _ = predict.load_model(model_file)
    if settings is None:
        pytest.skip('the model takes no image (or deploy.json says "preprocess": null): --image does not apply')
    return settings


@pytest.fixture(scope="module")
def image_runner(runner: Path, model_file: Path, settings: predict.ImageSettings, tmp_path_factory) -> Path:
    """The runner, when it was built with libjpeg and libpng (else the tests say how to enable --image and skip)."""
    probe = tmp_path_factory.mktemp("probe") / "none.png"
    result = run(runner, model_file, "--image", probe)
    if "built without libjpeg and libpng" in result.stderr:
        pytest.skip(result.stderr.strip())
    return runner


def picture(height: int, width: int, seed: int) -> torch.Tensor:
    """A (height, width, 3) uint8 picture: smooth colour fields (what resizing must not alias) plus fine noise."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, height // 16 + 2, width // 16 + 2, generator=generator)
    smooth = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)
    noise = torch.rand(1, 3, height, width, generator=generator)
    return ((0.8 * smooth + 0.2 * noise)[0] * 255).clamp(0, 255).round().byte().permute(1, 2, 0).contiguous()


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png_bytes(samples: torch.Tensor, color_type: int, depth: int, interlaced: bool = False) -> bytes:
    """A PNG written here, for what Pillow does not write: 16-bit colour, 4-bit grey, interlacing (Adam7).
    samples: (height, width, channels) integers below 2**depth."""

    def rows(part: torch.Tensor) -> bytes:  # filter type 0, then the samples big-endian, packed below 8 bits
        out = b""
        for row in part.reshape(part.shape[0], -1).tolist():
            bits = "".join(format(value, f"0{depth}b") for value in row)
            bits += "0" * (-len(bits) % 8)
            out += b"\0" + int(bits, 2).to_bytes(len(bits) // 8, "big")
        return out

    passes = ADAM7 if interlaced else [(0, 0, 1, 1)]
    parts = [samples[y0::dy, x0::dx] for x0, y0, dx, dy in passes]
    data = b"".join(rows(part) for part in parts if part.numel())
    height, width = samples.shape[:2]
    header = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, int(interlaced))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(data)) + chunk(b"IEND", b"")


def exif(orientation: int) -> Image.Exif:
    tags = Image.Exif()
    tags[0x0112] = orientation
    return tags


def xmp(orientation: int) -> str:
    return f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description tiff:Orientation="{orientation}"/></x:xmpmeta>'


def save(mode: str, **options: object) -> Callable[[Image.Image, Path], None]:
    """Pillow converts the picture to `mode` and saves it with `options`."""
    return lambda image, path: image.convert(mode).save(path, **options)


def save_png(color_type: int, depth: int, interlaced: bool = False) -> Callable[[Image.Image, Path], None]:
    """The picture as a PNG of this colour type and depth, written by png_bytes(). 16 bits: the 8 bits above random
    low bytes (Pillow keeps the high byte), but grey as 0 to 511 (Pillow clips 16-bit grey to 255, scales nothing)."""

    def write(image: Image.Image, path: Path) -> None:
        rgb = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).view(image.height, image.width, 3)
        grey = torch.frombuffer(bytearray(image.convert("L").tobytes()), dtype=torch.uint8).view(*rgb.shape[:2], 1)
        alpha = rgb[..., :1].flip(1)
        samples = {0: grey, 2: rgb, 4: torch.cat([grey, alpha], 2), 6: torch.cat([rgb, alpha], 2)}[color_type].long()
        if depth == 16 and color_type == 0:
            samples = samples * 2 + (samples & 1)
        elif depth == 16:
            samples = samples * 256 + torch.randint(0, 256, samples.shape, generator=torch.Generator().manual_seed(0))
        elif depth < 8:
            samples = samples >> (8 - depth)
        path.write_bytes(png_bytes(samples, color_type, depth, interlaced))

    return write


def save_png_text(key: str, text: str, compressed: bool = False) -> Callable[[Image.Image, Path], None]:
    info = PngImagePlugin.PngInfo()
    if key == "XML:com.adobe.xmp":
        info.add_itxt(key, text)
    else:
        info.add_text(key, text, zip=compressed)
    return save("RGB", pnginfo=info)


def raw_profile(orientation: int) -> str:
    """ImageMagick's PNG text for EXIF: a blank line, "exif", the length, the bytes in hex over lines of 72."""
    data = exif(orientation).tobytes()
    lines = [data.hex()[i : i + 72] for i in range(0, 2 * len(data), 72)]
    return f"\nexif\n{len(data):8}\n" + "\n".join(lines) + "\n"


# name: ((height, width), how it is written). R: the model's resize as the height, and a wider width (the decoding
# cases, compared without resampling: see the module's docstring).
R = None
IMAGES: dict[str, tuple[tuple[int, int] | None, Callable[[Image.Image, Path], None]]] = {
    "landscape.png": ((375, 500), save("RGB")),
    "portrait.jpg": ((640, 427), save("RGB", quality=90)),
    "rotated.jpg": ((300, 400), save("RGB", quality=90, exif=exif(6))),  # EXIF: turn 90 degrees to be upright
    "small.png": ((20, 30), save("RGB")),  # smaller than the crop: upscaled
    "odd.png": ((301, 199), save("RGB")),
    "grey.jpg": (R, save("L", quality=90)),
    "cmyk.jpg": (R, save("CMYK", quality=90)),
    "xmp.jpg": (R, save("RGB", quality=90, xmp=xmp(8).encode())),  # orientation in XMP only
    "grey.png": (R, save("L")),
    "grey-alpha.png": (R, save("LA")),
    "alpha.png": (R, save("RGBA")),  # alpha dropped, not composited
    "palette.png": (R, save("P")),
    "palette-alpha.png": (R, save("P", transparency=0)),  # a tRNS chunk
    "bilevel.png": (R, save("1")),
    "grey-4bit.png": (R, save_png(0, 4)),
    "grey-16bit.png": (R, save_png(0, 16)),
    "grey-alpha-16bit.png": (R, save_png(4, 16)),
    "rgb-16bit.png": (R, save_png(2, 16)),
    "rgba-16bit.png": (R, save_png(6, 16)),
    "interlaced.png": (R, save_png(2, 8, interlaced=True)),
    "interlaced-16bit.png": (R, save_png(6, 16, interlaced=True)),
    **{f"exif-{n}.png": (R, save("RGB", exif=exif(n))) for n in range(2, 9)},  # every EXIF orientation
    "xmp.png": (R, save_png_text("XML:com.adobe.xmp", xmp(5))),
    "raw-profile.png": (R, save_png_text("Raw profile type exif", raw_profile(7), compressed=True)),
}


@pytest.fixture(scope="module")
def images(tmp_path_factory, settings: predict.ImageSettings) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("images")
    paths = {}
    for seed, (name, (size, write)) in enumerate(IMAGES.items()):
        height, width = size or (settings.resize, settings.resize + 37)
        pixels = picture(height, width, seed)
        write(Image.frombytes("RGB", (width, height), bytes(pixels.flatten().tolist())), folder / name)
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
    differences = {}
    for (name, path), ours in zip(images.items(), cpp, strict=True):
        python = predict.preprocess(predict.read_image(path), settings)
        assert ours.shape == python.shape == (1, settings.channels, *settings.crop), name
        assert ours.dtype == python.dtype, name
        differences[name] = (ours.double() - python.double()).abs().max().item()
    beyond = {
        name: f"max abs diff {diff:.3e}" for name, diff in differences.items() if diff > tolerance(name, settings)
    }
    assert not beyond, beyond


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


def summaries(output: str) -> dict[str, dict[str, tuple[str, list[float], dict[int, float]]]]:
    """The "FILE: outputs (not class scores)" blocks of ts-infer --image and predict.py, parsed: per file, per output
    its shape and dtype, its min, max and mean, and its per-pixel class shares (percent, by class index)."""
    blocks: dict[str, dict[str, tuple[str, list[float], dict[int, float]]]] = {}
    current: dict[str, tuple[str, list[float], dict[int, float]]] = {}
    for line in output.splitlines():
        header = re.fullmatch(r"(.+): outputs \(not class scores\)", line)
        row = re.fullmatch(r"  (\S+) (\[.*\] \S+) min (\S+) max (\S+) mean (\S+)(?:; per pixel: (.*))?", line)
        if header:
            current = blocks.setdefault(header.group(1), {})
        elif row:
            shares = re.findall(r"(\d+)(?: [^,]*?)? (\d+\.\d)%", row.group(6) or "")
            current[row.group(1)] = (
                row.group(2),
                [float(row.group(i)) for i in (3, 4, 5)],
                {int(index): float(share) for index, share in shares},
            )
    return blocks


def assert_same_classes(cpp_output: str, python_output: str, paths: list[str], model_file: Path) -> None:
    """The same classes, names and probabilities (to the printed 4 decimals, +-1e-4), with the class names export.py
    saved in the model. Classes whose probabilities print the same (a peaked model's 0.0000s) are a tie that either
    order reports rightly: where C++ names another class than Python, Python's probability of that class is within
    1e-4 of the one printed there (at most Python's last one for a class beyond its top-k)."""
    cpp, python = top_k(cpp_output), top_k(python_output)
    assert list(cpp) == list(python) == paths
    _, _, names, _ = predict.load_model(model_file)
    for path in paths:
        assert len(cpp[path]) == len(python[path]) and cpp[path], (cpp[path], python[path])
        python_probability = {index: p for p, index, _ in python[path]}
        for (_, index, _), (theirs_p, theirs, _) in zip(cpp[path], python[path], strict=True):
            tied = abs(python_probability.get(index, python[path][-1][0]) - theirs_p) <= 1.01e-4
            assert index == theirs or tied, (path, cpp[path], python[path])
        assert all(abs(a - b) <= 1.01e-4 for (a, _, _), (b, _, _) in zip(cpp[path], python[path], strict=True))
        if names:
            assert all(name == names[index] for _, index, name in cpp[path])


def assert_same_summaries(cpp_output: str, python_output: str, paths: list[str]) -> None:
    """One line per output with the same name, shape and dtype, the same min, max and mean (to float rounding and
    the printed four digits) and, for a segmentation's scores, the same most frequent class per pixel and shares
    within a point."""
    cpp, python = summaries(cpp_output), summaries(python_output)
    assert list(cpp) == list(python) == paths, cpp_output
    for path in paths:
        assert list(cpp[path]) == list(python[path]) and cpp[path], (cpp[path], python[path])
        for name, (kind, numbers, shares) in cpp[path].items():
            their_kind, their_numbers, their_shares = python[path][name]
            assert kind == their_kind, name
            pairs = zip(numbers, their_numbers, strict=True)
            close = [abs(a - b) <= 2e-3 * max(abs(a), abs(b)) + 1e-6 for a, b in pairs]
            assert all(close), (name, numbers, their_numbers)
            if shares:
                assert next(iter(shares)) == next(iter(their_shares)), (shares, their_shares)
                assert all(abs(share - their_shares.get(index, 0.0)) <= 1.0 for index, share in shares.items())


@pytest.fixture(scope="module")
def classifier(artifacts: Path, formats: list, top_k: int) -> bool:
    """Whether the model is a classifier: it has classes to compare (top_k, 0 for a detector), and its first output,
    as export.py recorded it, is (batch, classes) scores."""
    first = next(iter(artifact_format.load_tensors(artifacts / formats[0].expected())[0].values()))
    return top_k > 0 and artifact_format.is_scores(first)


def test_cpp_answers_images_as_python_does(
    images: dict[str, Path], image_runner: Path, model_file: Path, classifier: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """ts-infer --image and predict.py give the same answer for the images of given sizes (the decoding cases add
    nothing here: their inputs are equal): a classifier's top-k, or for another model (a segmentation, say) what each
    output holds."""
    paths = [str(path) for name, path in images.items() if IMAGES[name][0]]
    # In fp32, as Python runs the model (a bf16 project's default precision would round the probabilities).
    result = run(image_runner, model_file, "--precision", "fp32", *[arg for path in paths for arg in ("--image", path)])
    assert result.returncode == 0, result.stderr
    assert predict.main(["--model", str(model_file), *paths]) == 0
    python = capsys.readouterr().out
    if classifier:
        assert_same_classes(result.stdout, python, paths, model_file)
    else:
        assert_same_summaries(result.stdout, python, paths)


def test_unreadable_images_fail_in_one_line(
    images: dict[str, Path], image_runner: Path, model_file: Path, tmp_path: Path
) -> None:
    """A missing file, one that is not an image, a BMP (a format --image does not read: the line says what to do
    instead), a JPEG and a PNG cut in half: one error line naming the file and why, nothing printed by libjpeg or
    libpng themselves, exit 1. Python refuses the same files but the BMP, which Pillow reads."""
    (tmp_path / "notes.jpg").write_text("not an image")
    Image.new("RGB", (64, 48), (10, 200, 30)).save(tmp_path / "photo.bmp")
    for name in ("portrait.jpg", "landscape.png"):
        data = images[name].read_bytes()
        (tmp_path / f"cut-{name}").write_bytes(data[: len(data) // 2])
    instead = (
        "--image reads JPEG and PNG: convert the image to one of them, or decode it in your own program and pass "
        "torch_deploy::preprocess(pixels, *model.image_settings()) to Model::classify(input, k)"
    )
    truncated = "not an image Pillow can decode (image file is truncated"
    expected = {  # name: ts-infer's reason, the start of predict.py's (None: Pillow reads it)
        "missing.png": ("cannot open the image (missing or unreadable)", "cannot open the image"),
        "notes.jpg": (f"not a JPEG or PNG file (told by its content, not its name); {instead}", "not an image Pillow"),
        "photo.bmp": (f"a BMP image; {instead}", None),
        "cut-portrait.jpg": (
            "cannot decode this JPEG file (damaged or truncated): Premature end of JPEG file",
            truncated,
        ),
        "cut-landscape.png": (
            "cannot decode this PNG file (damaged or truncated): the file ends before the image does",
            truncated,
        ),
    }
    for name, (why, python) in expected.items():
        result = run(image_runner, model_file, "--image", tmp_path / name)
        errors = [line for line in result.stderr.splitlines() if not line.startswith("ts-infer: note:")]
        assert (result.returncode, errors) == (1, [f"ts-infer: error: {tmp_path / name}: {why}"]), name
        if python:
            with pytest.raises(predict.ImageError, match=re.escape(f"{tmp_path / name}: {python}")):
                predict.read_image(tmp_path / name)
