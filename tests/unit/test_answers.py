"""The answer rules (hooks/answers.py) accept what the template can render and refuse the rest in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tsgen import template

answers = template.answers()


def defaults(**overrides: object) -> dict[str, object]:
    """The template's default answers, as cookiecutter renders them, with ``overrides``."""
    values: dict[str, object] = {item.name: item.default_value for item in answers.questions()}
    values["project_slug"] = "resnet18_deploy"
    values["description"] = "TorchScript deployment"
    values.update(overrides)
    return values


def test_the_default_answers_are_valid() -> None:
    """--no-input must always work: the defaults pass every rule."""
    answers.validate(defaults(), [])


def test_a_model_file_relative_to_a_base_folder_is_accepted(tmp_path: Path) -> None:
    """path/to/file.py:factory is looked up relative to where the user runs the generator."""
    (tmp_path / "nets").mkdir()
    (tmp_path / "nets" / "net.py").write_text("def make(): ...\n")
    answers.validate(defaults(model="nets/net.py:make"), [tmp_path])
    assert answers.resolve_model_file("nets/net.py:make", [tmp_path]) == tmp_path / "nets" / "net.py"


BAD = [
    ("project_name", "", "is empty"),
    ("project_name", "two\nlines", "newline"),
    ("project_slug", "", "is empty"),
    ("project_slug", "my-model", "not a valid C++/CMake/Python identifier"),
    ("project_slug", "my model", "not a valid C++/CMake/Python identifier"),
    ("project_slug", "1model", "not a valid C++/CMake/Python identifier"),
    ("project_slug", "modèle", "not a valid C++/CMake/Python identifier"),
    ("project_slug", "class", "reserved word"),
    ("project_slug", "import", "reserved word"),
    ("project_slug", "x" * 65, "longer than 64"),
    ("project_slug", 'a";rm -rf /', "not a valid C++/CMake/Python identifier"),
    ("description", "line\rbreak", "newline"),
    ("model", "resnet18", "neither torchvision:<arch>, path/to/file.py:factory nor path/to/model.pt"),
    ("model", "torchvision:", "not a torchvision model name"),
    ("model", "torchvision:ResNet-18", "not a torchvision model name"),
    ("model", "net.py", "neither torchvision:<arch>, path/to/file.py:factory nor path/to/model.pt"),
    ("model", "net.txt:make", "neither torchvision:<arch>, path/to/file.py:factory nor path/to/model.pt"),
    ("model", "net.py:make-model", "neither torchvision:<arch>, path/to/file.py:factory nor path/to/model.pt"),
    ("model", "missing.py:make", "does not exist"),
    ("export_method", "compile", "is not an export method"),
    ("formats", "onnx", "is not a format"),
    ("precision", "fp16", "is not a precision"),
    ("weights", "imagenet", "is neither none, DEFAULT, a torchvision weights name nor a .pt/.pth file"),
    ("weights", "missing.pth", "does not exist"),
    ("weights", "DEFAULT; rm -rf /", "does not exist"),  # a slash makes it a path
    ("weights", "DEFAULT; rm", "is neither none, DEFAULT, a torchvision weights name nor a .pt/.pth file"),
    ("model", "missing.pt", "does not exist"),
    ("input_shape", "", "positive integers"),
    ("input_shape", "1,0,224", "positive integers"),
    ("input_shape", "1,-3", "positive integers"),
    ("input_shape", "1,3.5", "positive integers"),
    ("input_shape", "1,,3", "positive integers"),
    ("input_shape", ",".join(["1"] * 9), "more than 8 dimensions"),
    ("inputs", "x:1,0:float32", "the shape of x is not a comma-separated list of positive integers"),
    ("inputs", "x:1,3:complex64", "'complex64' is not a dtype"),
    ("inputs", "x:1,3", "'x:1,3' is not name:shape:dtype"),
    ("inputs", "1x:1:bool", "'1x:1:bool' is not name:shape:dtype"),
    ("inputs", "x:1:bool;x:2:bool", "needs up to 16 inputs with distinct names"),
    ("top_k", "-1", "whole number >= 0"),
    ("top_k", "five", "whole number >= 0"),
    ("atol", "nan", "finite number >= 0"),
    ("atol", "-1e-3", "finite number >= 0"),
    ("rtol", "inf", "finite number >= 0"),
    ("seed", "0x10", "whole number >= 0"),
    ("libtorch", "/opt/lib\ntorch", "newline"),
    ("first_build", "maybe", "is not yes or no"),
    ("preprocess", "resize=256 size=224", "'size=224' is not one of resize, mean, std, interpolation =value"),
    ("preprocess", "resize", "'resize' is not one of resize, mean, std, interpolation =value"),
    ("preprocess", "resize=256 resize=288", "gives resize twice"),
    ("preprocess", "resize=200", "resize=200 is not a whole number >= the crop 224x224"),
    ("preprocess", "resize=256.5", "resize=256.5 is not a whole number"),
    ("preprocess", "mean=0.5,0.5", "mean=0.5,0.5 is not 3 comma-separated numbers"),
    ("preprocess", "mean=a,b,c", "mean=a,b,c is not 3 comma-separated numbers"),
    ("preprocess", "mean=nan,0,0", "mean=nan,0,0 is not 3 comma-separated numbers"),
    ("preprocess", "std=0.2,0,0.2", "std=0.2,0,0.2 is not 3 comma-separated numbers > 0"),
    ("preprocess", "interpolation=lanczos", "interpolation=lanczos is unknown"),
    ("labels", "classes.csv", "is neither auto, none nor a .txt file"),
    ("labels", "missing.txt", "does not exist"),
]


def test_an_aoti_format_needs_the_python_model(tmp_path: Path) -> None:
    """torch.export cannot export a TorchScript file: formats aoti (or both) with a .pt model is refused up front."""
    (tmp_path / "net.pt").write_bytes(b"")
    with pytest.raises(
        answers.AnswerError, match="torch.export cannot export a TorchScript file; use formats torchscript"
    ):
        answers.validate(defaults(model="net.pt", formats="both"), [tmp_path])
    answers.validate(defaults(model="net.pt", formats="torchscript"), [tmp_path])


def test_bf16_needs_the_torchscript_format() -> None:
    """precision bf16 runs model.pt: formats aoti (no model.pt) is refused up front; torchscript and both are not."""
    with pytest.raises(answers.AnswerError, match="use formats torchscript or both, or precision fp32"):
        answers.validate(defaults(precision="bf16", formats="aoti"))
    for formats in ("torchscript", "both"):
        answers.validate(defaults(precision="bf16", formats=formats))
    assert answers.deploy_config(defaults(precision="bf16"))["precision"] == "bf16"


def test_formats_int8_adds_the_quantized_package_for_the_cpu() -> None:
    """formats int8: model.pt and the int8 package (deploy.json lists aoti_int8, so requirements.txt gets torchao);
    a GPU project cannot have it (its kernels are the CPU's), refused up front in one line."""
    assert answers.deploy_config(defaults(formats="int8"))["formats"] == ["torchscript", "aoti_int8"]
    with pytest.raises(answers.AnswerError) as caught:
        answers.validate(defaults(formats="int8", device="cuda"))
    assert str(caught.value) == (
        "ERROR: formats='int8': quantizes for the CPU (oneDNN's x86 int8 kernels), and device cuda runs on a GPU; "
        "use formats torchscript, aoti or both, or device cpu"
    )
    answers.validate(defaults(formats="int8", precision="bf16"))  # bf16 runs model.pt, which int8 keeps


@pytest.mark.parametrize(("answer", "value", "why"), BAD, ids=[f"{a}={v!r}"[:40] for a, v, _ in BAD])
def test_a_bad_answer_is_refused_in_one_line_naming_it(answer: str, value: str, why: str, tmp_path: Path) -> None:
    """Each bad answer raises AnswerError whose one line names the answer, the value, why, and a fix."""
    with pytest.raises(answers.AnswerError) as caught:
        answers.validate(defaults(**{answer: value}), [tmp_path])
    line = str(caught.value)
    assert caught.value.answer == answer
    assert line.startswith(f"ERROR: {answer}={value!r}: ")
    assert why in line
    assert "\n" not in line.replace(repr(value), "")
    assert "; " in line  # the fix follows the reason


def test_weights_apply_to_torchvision_models_only(tmp_path: Path) -> None:
    """A .py factory or a TorchScript file brings its own weights: a weights answer there is refused."""
    (tmp_path / "net.py").write_text("def make(): ...\n")
    with pytest.raises(answers.AnswerError, match="applies to torchvision models only"):
        answers.validate(defaults(model="net.py:make", weights="DEFAULT"), [tmp_path])


@pytest.mark.parametrize("weights", ["none", "DEFAULT", "IMAGENET1K_V1", "ResNet18_Weights.IMAGENET1K_V1", "w/r18.pth"])
def test_weights_forms_are_accepted(weights: str, tmp_path: Path) -> None:
    """none, DEFAULT, a weights name (with or without its enum) and a file that exists."""
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "r18.pth").write_bytes(b"")
    answers.validate(defaults(weights=weights), [tmp_path])


def test_project_files_are_the_model_and_weights_files(tmp_path: Path) -> None:
    """The files the post_gen hook copies into models/: a .py or .pt model and a weights file."""
    (tmp_path / "net.pt").write_bytes(b"")
    (tmp_path / "r18.pth").write_bytes(b"")
    assert answers.project_files({"model": "net.pt", "weights": "none"}, [tmp_path]) == [tmp_path / "net.pt"]
    files = answers.project_files({"model": "torchvision:resnet18", "weights": "r18.pth"}, [tmp_path])
    assert files == [tmp_path / "r18.pth"]


def test_labels_file_must_hold_names(tmp_path: Path) -> None:
    """A labels file with no names (or not UTF-8) is refused; one with names, auto and none are accepted."""
    (tmp_path / "empty.txt").write_text("\n \n")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    (tmp_path / "classes.txt").write_text("cat\ndog\n")
    with pytest.raises(answers.AnswerError, match="holds no class names"):
        answers.validate(defaults(labels="empty.txt"), [tmp_path])
    with pytest.raises(answers.AnswerError, match="cannot be read as UTF-8 text"):
        answers.validate(defaults(labels="latin1.txt"), [tmp_path])
    for labels in ("auto", "none", "classes.txt"):
        answers.validate(defaults(labels=labels), [tmp_path])
    files = answers.project_files({"model": "torchvision:resnet18", "labels": "classes.txt"}, [tmp_path])
    assert files == [tmp_path / "classes.txt"]


IMAGE = [("input", [1, 3, 224, 224], "float32")]


def test_preprocess_values_are_parsed_and_the_rest_stays_auto() -> None:
    """auto: {} (every value from the weights or ImageNet); none: None; given values are typed."""
    assert answers.parse_preprocess("auto", IMAGE) == {}
    assert answers.parse_preprocess("none", IMAGE) is None
    given = answers.parse_preprocess(" resize=288  mean=0.5,0.5,.5 std=1,1,1e0 interpolation=bicubic ", IMAGE)
    assert given == {"resize": 288, "mean": [0.5, 0.5, 0.5], "std": [1.0, 1.0, 1.0], "interpolation": "bicubic"}
    grey = [("x", [4, 1, 28, 28], "float16")]
    assert answers.parse_preprocess("resize=32 mean=0.1307 std=0.3081", grey) == {
        "resize": 32,
        "mean": [0.1307],
        "std": [0.3081],
    }


@pytest.mark.parametrize(
    "inputs",
    [
        [("ids", [1, 16], "int64")],
        [("x", [1, 3, 224, 224], "int64")],
        [("x", [1, 4, 224, 224], "float32")],
        [("x", [3, 224, 224], "float32")],
        [("a", [1, 3, 224, 224], "float32"), ("b", [1, 3, 224, 224], "float32")],
    ],
)
def test_preprocess_values_need_one_image_input(inputs: list) -> None:
    """Values for the image preprocessing are refused for a model without one image input; auto and none are not."""
    assert answers.image_input(inputs) is None
    with pytest.raises(answers.AnswerError, match="needs a model with one image input"):
        answers.parse_preprocess("resize=256", inputs)
    assert answers.parse_preprocess("auto", inputs) == {}
    assert answers.parse_preprocess("none", inputs) is None


def test_inputs_are_named_shaped_and_typed() -> None:
    """inputs: name:shape:dtype items; empty means one float32 "input" of input_shape."""
    assert answers.parse_inputs("", "1,3,8,8") == [("input", [1, 3, 8, 8], "float32")]
    assert answers.parse_inputs(" ids : 1,16 : int64 ;mask:1,16:bool", "1") == [
        ("ids", [1, 16], "int64"),
        ("mask", [1, 16], "bool"),
    ]


def test_parse_shape_reads_spaces_and_signs_strictly() -> None:
    """Shapes tolerate spaces around numbers and nothing else."""
    assert answers.parse_shape(" 1, 3 ,224,224 ") == [1, 3, 224, 224]
    with pytest.raises(answers.AnswerError):
        answers.parse_shape("+1,3")


@pytest.mark.parametrize(
    ("value", "expected"), [(True, True), ("yes", True), ("False", False), ("no", False), (0, False)]
)
def test_is_yes_accepts_booleans_and_command_line_strings(value: object, expected: bool) -> None:
    """first_build arrives as a bool from cookiecutter.json and as a string from `cookiecutter ... first_build=no`."""
    assert answers.is_yes(value) is expected


def test_deploy_json_is_derived_once_from_the_answers() -> None:
    """The settings export.py reads: the user's files under models/, the inputs parsed, the preprocessing typed
    (the values not given stay "auto"), labels auto, none or a file, numbers as numbers."""
    config = answers.deploy_config(
        defaults(
            model="/home/me/nets/net.py:make",
            inputs="ids:2,16:int64;mask:2,16:bool",
            dynamic_batch="yes",
            formats="both",
            top_k="3",
            atol="1e-3",
            preprocess="none",
            labels="none",
        )
    )
    assert config == {
        "model": "models/net.py:make",
        "weights": "none",
        "export_method": "script",
        "formats": ["torchscript", "aoti"],
        "precision": "fp32",
        "device": "cpu",
        "inputs": [
            {"name": "ids", "shape": [2, 16], "dtype": "int64"},
            {"name": "mask", "shape": [2, 16], "dtype": "bool"},
        ],
        "dynamic_batch": True,
        "seed": 0,
        "top_k": 3,
        "preprocess": None,
        "labels": None,
        "atol": 1e-3,
        "rtol": 1e-4,
    }
    text = answers.deploy_json(config)
    assert json.loads(text) == config
    assert '    {"name": "ids", "shape": [2, 16], "dtype": "int64"},\n' in text  # one input per line
    images = answers.deploy_config(
        defaults(weights="C:\\data\\r18.pth", preprocess="resize=288 interpolation=bicubic", labels="/x/names.txt")
    )
    assert (images["model"], images["weights"], images["labels"]) == (
        "torchvision:resnet18",
        "models/r18.pth",
        "models/names.txt",
    )
    assert images["preprocess"] == {"resize": 288, "mean": "auto", "std": "auto", "interpolation": "bicubic"}
    assert answers.deploy_config(defaults(weights="DEFAULT", labels=" auto "))["labels"] == "auto"
