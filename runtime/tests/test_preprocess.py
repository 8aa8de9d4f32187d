"""The runtime's image preprocessing, for every torchvision classification architecture: torch_deploy.export derives
the values of each architecture's DEFAULT weights, and torch_deploy.predict then computes exactly what those weights'
transforms() compute. (The C++ side is compared with predict in every generated project's own tests.)"""

from __future__ import annotations

from types import ModuleType

import pytest
import torch
import torchvision
from torch_deploy import export, predict

ARCHITECTURES = sorted(torchvision.models.list_models(module=torchvision.models))


@pytest.fixture(scope="module")
def project_modules() -> tuple[ModuleType, ModuleType]:
    """The runtime's export and predict modules, as the lane's Python has them installed."""
    return export, predict


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    """A 3x300x451 uint8 RGB image: smooth fields and noise, landscape, odd width (uneven crop offsets)."""
    generator = torch.Generator().manual_seed(0)
    coarse = torch.rand(1, 3, 20, 30, generator=generator)
    smooth = torch.nn.functional.interpolate(coarse, size=(300, 451), mode="bicubic", align_corners=False)[0]
    noise = torch.rand(3, 300, 451, generator=generator)
    return ((0.8 * smooth + 0.2 * noise) * 255).clamp(0, 255).round().to(torch.uint8)


AUTO = {"resize": "auto", "mean": "auto", "std": "auto", "interpolation": "auto"}


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_auto_preprocessing_is_the_weights_transforms(
    arch: str, project_modules: tuple[ModuleType, ModuleType], photo: torch.Tensor
) -> None:
    export, predict = project_modules
    weights = torchvision.models.get_model_weights(arch).DEFAULT
    transforms = weights.transforms()
    crop = transforms.crop_size[0]
    source = export.Source(torch.nn.Identity(), recipe=weights)
    settings = export.image_settings({"preprocess": AUTO}, source, {"input": torch.zeros(1, 3, crop, crop)})
    assert (settings.resize, settings.crop) == (transforms.resize_size[0], (crop, crop))
    assert (settings.mean, settings.std) == (transforms.mean, transforms.std)
    assert settings.interpolation == transforms.interpolation.value
    assert settings.source == f"{type(weights).__name__}.{weights.name}"
    assert torch.equal(predict.preprocess(photo, settings), transforms(photo).unsqueeze(0))
    names, origin = export.class_names({"labels": "auto"}, source)
    assert names == weights.meta["categories"] and origin == settings.source


def test_auto_resize_scales_with_the_input_size(project_modules: tuple[ModuleType, ModuleType]) -> None:
    """An input of another size keeps the recipe's resize/crop ratio; without weights, 256/224 of the crop."""
    export, _ = project_modules
    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    recipe = export.Source(torch.nn.Identity(), recipe=weights)
    plain = export.Source(torch.nn.Identity())
    for source, size, resize in ((recipe, 299, 342), (recipe, 112, 128), (plain, 224, 256), (plain, 32, 37)):
        image = {"input": torch.zeros(1, 3, size, size)}
        assert export.image_settings({"preprocess": AUTO}, source, image).resize == resize
    grey = export.image_settings({"preprocess": AUTO}, plain, {"input": torch.zeros(1, 1, 28, 28)})
    assert grey.mean == [pytest.approx(0.449)] and grey.std == [pytest.approx(0.226)]


def test_values_given_win_and_bad_ones_are_refused(project_modules: tuple[ModuleType, ModuleType]) -> None:
    """Given values replace the auto ones (the source says so); an edited deploy.json that cannot work is refused
    in one line; a model without one image input gets no preprocessing, or an error when values were given."""
    export, _ = project_modules
    plain = export.Source(torch.nn.Identity())
    image = {"input": torch.zeros(1, 3, 224, 224, dtype=torch.float16)}
    given = export.image_settings({"preprocess": {**AUTO, "resize": 300, "interpolation": "nearest"}}, plain, image)
    assert (given.resize, given.interpolation, given.dtype) == (300, "nearest", "float16")
    assert given.source == "ImageNet's usual values, deploy.json"
    assert export.image_settings({"preprocess": None}, plain, image) is None
    for wrong, why in (
        ({"resize": 100}, "resize 100 is below the crop 224x224"),
        ({"mean": [0.5]}, "1 mean values for 3 channels"),
        ({"std": [1, 0, 1]}, "a std value is not > 0"),
        ({"interpolation": "area"}, "interpolation area is not one of bilinear, bicubic, nearest"),
    ):
        with pytest.raises(export.ExportError, match=why):
            export.image_settings({"preprocess": {**AUTO, **wrong}}, plain, image)
    tokens = {"ids": torch.zeros(1, 16, dtype=torch.int64)}
    assert export.image_settings({"preprocess": AUTO}, plain, tokens) is None
    with pytest.raises(export.ExportError, match=r"inputs \(\(1, 16\) int64\) are not one image"):
        export.image_settings({"preprocess": {**AUTO, "resize": 256}}, plain, tokens)


def test_settings_survive_the_text_format(project_modules: tuple[ModuleType, ModuleType]) -> None:
    """preprocess.txt (what ts-infer parses) gives back exactly the values written."""
    _, predict = project_modules
    settings = predict.ImageSettings(
        resize=342, crop=(299, 280), mean=[0.1, 1 / 3, 0.7], std=[0.2, 0.3, 0.4], interpolation="bicubic",
        dtype="bfloat16", source="Inception_V3_Weights.IMAGENET1K_V1",
    )  # fmt: skip
    assert predict.ImageSettings.from_text(settings.to_text()) == settings
    with pytest.raises(predict.ImageError, match="preprocess.txt is malformed"):
        predict.ImageSettings.from_text("resize 256\n")
