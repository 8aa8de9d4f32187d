{%- import 'macros.j2' as m -%}
// ts-infer: load a TorchScript model with libtorch and run inference on the CPU.
//
//   ts-infer MODEL                      the tutorial's program: a random input, the top-k of the softmax
//   ts-infer MODEL --input FILE         run on tensors written by export.py (artifacts/input.pt)
//   ts-infer MODEL --input FILE --expect FILE [--atol A] [--rtol R]
//                                       parity mode: exit 0 only when the output matches Python's
//   ts-infer MODEL --image FILE [--image FILE...]
//                                       classify images: the top-k with probabilities and class names
//                                       (with --bench: time the model on the first image)
//   --save-input FILE  write the input the model was given (after image preprocessing; a tuple of them for several
//                      images) for torch.load in Python
//   --top-k K    classes to print and, in parity mode, to compare (default: the project's top_k; 0: none)
//   --threads N  intra-op threads (default: libtorch's choice)
//   --bench N [--warmup W] [--json]
//                time N runs after W warm-up runs (default 10): p50/p90/p99/mean latency and throughput
//   --optimize MODE  onednn (default): freeze, then oneDNN Graph fusion; ofi: freeze + optimize_for_inference;
//                    none (also --no-optimize): the model as loaded
//
// The optimisation happens here, after loading: a saved optimize_for_inference module cannot be loaded again.
// Measured on resnet18, batch 1, 2 threads: as loaded 13.1 ms, ofi 11.4 ms, onednn 7.8 ms (p50).
//
// Tensor files are TorchScript modules whose buffers are the tensors, so libtorch alone reads them.
//
// --image needs OpenCV (to decode the files), found by CMake when it is installed. The preprocessing itself is
// written in ATen operations, the kernels torchvision's transforms run in Python, and its values travel inside
// model.pt (extra files written by export.py), so C++ and Python preprocess identically.

#include <ATen/Parallel.h>
#include <torch/csrc/jit/codegen/onednn/interface.h>
#include <torch/script.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <iterator>
#include <numeric>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#if defined(TORCH_DEPLOY_WITH_OPENCV)
#include <opencv2/core/utils/logger.hpp>
#include <opencv2/imgcodecs.hpp>
#endif

namespace {

constexpr const char* kUsage =
    "usage: ts-infer MODEL [--input FILE] [--expect FILE] [--atol A] [--rtol R] [--top-k K] "
    "[--image FILE]... [--save-input FILE] [--threads N] [--bench N [--warmup W] [--json]] "
    "[--optimize onednn|ofi|none]";

// The inputs of the tutorial's random run (no --input): the project's input names, shapes and dtypes.
struct InputSpec {
  const char* name;
  std::vector<int64_t> shape;
  at::ScalarType dtype;
};
const std::vector<InputSpec> kDefaultInputs = {
{%- for item in m.input_items(cookiecutter).split(';') %}
{%- set name, dims, dtype = item.split(':') %}
    {"{{ name }}", { {{- dims -}} }, {{ m.scalar_type(dtype) }}},
{%- endfor %}
};

// The classes to print by default.
constexpr int64_t kDefaultTopK = {{ cookiecutter.top_k | int }};

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Options {
  std::string model;
  std::string input;
  std::string expect;
  std::vector<std::string> images;
  std::string save_input;
  std::optional<double> atol;
  std::optional<double> rtol;
  std::optional<int64_t> top_k;
  int threads = 0;
  int bench = 0;
  int warmup = 10;
  bool json = false;
  std::string optimize = "onednn";
};

template <typename T>
T parse_number(const std::string& flag, const std::string& text) {
  std::istringstream in(text);
  T value{};
  if (!(in >> value) || !in.eof()) {
    throw UsageError(flag + " " + text + ": not a number");
  }
  return value;
}

Options parse_args(int argc, const char* argv[]) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        throw UsageError(arg + " needs a value");
      }
      return argv[++i];
    };
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage << "\n";
      std::exit(0);
    } else if (arg == "--input") {
      options.input = value();
    } else if (arg == "--expect") {
      options.expect = value();
    } else if (arg == "--image") {
      options.images.push_back(value());
    } else if (arg == "--save-input") {
      options.save_input = value();
    } else if (arg == "--atol") {
      options.atol = parse_number<double>(arg, value());
    } else if (arg == "--rtol") {
      options.rtol = parse_number<double>(arg, value());
    } else if (arg == "--top-k") {
      options.top_k = parse_number<int64_t>(arg, value());
    } else if (arg == "--threads") {
      options.threads = parse_number<int>(arg, value());
    } else if (arg == "--bench") {
      options.bench = parse_number<int>(arg, value());
    } else if (arg == "--warmup") {
      options.warmup = parse_number<int>(arg, value());
    } else if (arg == "--json") {
      options.json = true;
    } else if (arg == "--optimize") {
      options.optimize = value();
      if (options.optimize != "onednn" && options.optimize != "ofi" && options.optimize != "none") {
        throw UsageError("--optimize " + options.optimize + ": use onednn, ofi or none");
      }
    } else if (arg == "--no-optimize") {
      options.optimize = "none";
    } else if (!arg.empty() && arg[0] == '-') {
      throw UsageError("unknown option " + arg);
    } else if (options.model.empty()) {
      options.model = arg;
    } else {
      throw UsageError("unexpected argument " + arg);
    }
  }
  if (options.model.empty()) {
    throw UsageError("MODEL is missing");
  }
  if (!options.expect.empty() && options.input.empty()) {
    throw UsageError("--expect needs --input (the input the expected output was computed from)");
  }
  if (options.bench < 0 || options.warmup < 0 || options.threads < 0) {
    throw UsageError("--bench, --warmup and --threads take numbers >= 0");
  }
  if (options.json && options.bench == 0) {
    throw UsageError("--json goes with --bench N");
  }
  if (!options.images.empty() && !options.input.empty()) {
    throw UsageError("--image and --input are alternatives: give one of them");
  }
  return options;
}

// The text of an exception without libtorch's C++ backtrace.
std::string message_of(const std::exception& error) {
  const auto* c10_error = dynamic_cast<const c10::Error*>(&error);
  return c10_error ? c10_error->what_without_backtrace() : error.what();
}

// One line out of a libtorch error: the last non-empty line (TorchScript interpreter errors end with the cause,
// after a TorchScript traceback), without the "[enforce fail at ...]" prefix and the boilerplate advice.
std::string one_line(const std::string& text) {
  std::istringstream lines(text);
  std::string line;
  std::string last;
  while (std::getline(lines, line)) {
    if (line.find_first_not_of(" \t") != std::string::npos) {
      last = line;
    }
  }
  if (last.rfind("[enforce fail at ", 0) == 0 && last.find("] . ") != std::string::npos) {
    last = last.substr(last.find("] . ") + 4);
  }
  for (const char* boilerplate : {" This is an internal miniz error", "  (Could this error message be improved?"}) {
    last = last.substr(0, last.find(boilerplate));
  }
  return last.substr(0, last.find_last_not_of(" .") + 1);  // the caller goes on with "; <fix>"
}

// torch::jit::load with one-line errors that name the file and what to do about it; the extra files asked for
// in `extras` are filled in when the file has them.
torch::jit::Module load_module(const std::string& path, const char* what, torch::jit::ExtraFilesMap* extras = nullptr) {
  std::ifstream probe(path, std::ios::binary);
  if (!probe) {
    throw std::runtime_error(path + ": cannot open the " + what + " (missing or unreadable); run make export");
  }
  try {
    torch::jit::ExtraFilesMap none;
    return torch::jit::load(path, std::nullopt, extras ? *extras : none);
  } catch (const std::exception& error) {
    throw std::runtime_error(path + ": not a TorchScript " + what +
                             " that this libtorch (" TORCH_VERSION ") can load: " + one_line(message_of(error)) +
                             "; re-export it with make export (a matching torch version)");
  }
}

std::string describe(const std::vector<torch::jit::IValue>& inputs) {
  std::ostringstream out;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const at::Tensor& tensor = inputs[i].toTensor();
    out << (i ? ", " : "") << tensor.sizes() << " " << tensor.scalar_type();
  }
  return out.str();
}

// A tensor file written by export.py: a TorchScript module holding the tensors as buffers, in order.
struct TensorFile {
  torch::jit::Module module;
  std::vector<std::pair<std::string, at::Tensor>> tensors;

  explicit TensorFile(const std::string& path) : module(load_module(path, "tensor file")) {
    for (const auto& buffer : module.named_buffers(/*recurse=*/false)) {
      tensors.emplace_back(buffer.name, buffer.value);
    }
  }

  double number(const char* name, double fallback) const {
    return module.hasattr(name) ? module.attr(name).toDouble() : fallback;
  }
};

// Every tensor of a model's output, in order: a tensor, or a tuple/list/dict of them.
void flatten(const c10::IValue& value, std::vector<at::Tensor>& out) {
  if (value.isTensor()) {
    out.push_back(value.toTensor());
  } else if (value.isTuple()) {
    for (const auto& element : value.toTupleRef().elements()) {
      flatten(element, out);
    }
  } else if (value.isList()) {
    for (const c10::IValue element : value.toListRef()) {
      flatten(element, out);
    }
  } else if (value.isNone()) {
    // an unused optional output (a scripted googlenet's aux logits): nothing to compare
  } else if (value.isGenericDict()) {
    for (const auto& item : value.toGenericDict()) {
      flatten(item.value(), out);
    }
  } else {
    throw std::runtime_error("the model returned a " + value.tagKind() +
                             "; ts-infer handles tensors and tuples/lists/dicts of tensors");
  }
}

bool is_scores(const at::Tensor& output) { return output.dim() == 2 && output.is_floating_point(); }

at::Tensor top_k_indices(const at::Tensor& scores, int64_t k) {
  return std::get<1>(scores.softmax(1).topk(std::min(k, scores.size(1)), 1));
}

std::string format_number(double value) {
  std::ostringstream out;
  out << std::setprecision(3) << std::scientific << value;
  return out.str();
}

// Compares the runner's outputs with Python's, prints one summary line, and returns whether they match.
bool check_parity(const std::vector<at::Tensor>& outputs, const TensorFile& expected, const Options& options,
                  int64_t top_k) {
  const double atol = options.atol.value_or(expected.number("atol", 1e-4));
  const double rtol = options.rtol.value_or(expected.number("rtol", 1e-4));
  const std::string tolerance = "(atol " + format_number(atol) + ", rtol " + format_number(rtol) + ")";

  if (outputs.size() != expected.tensors.size()) {
    std::cout << "parity: FAIL: the model returned " << outputs.size() << " tensors, Python recorded "
              << expected.tensors.size() << "\n";
    return false;
  }
  bool close = true;
  bool same_top_k = true;
  double max_abs_diff = 0.0;
  std::string per_output;  // "name diff" for each output, when there are several
  for (size_t i = 0; i < outputs.size(); ++i) {
    const at::Tensor actual = outputs[i].to(at::kDouble);
    const at::Tensor wanted = expected.tensors[i].second.to(at::kDouble);
    if (actual.sizes() != wanted.sizes()) {
      std::cout << "parity: FAIL: output " << expected.tensors[i].first << " has shape " << actual.sizes()
                << ", Python's has " << wanted.sizes() << "\n";
      return false;
    }
    const at::Tensor diff = (actual - wanted).abs();
    const double output_diff = diff.numel() > 0 ? diff.max().item<double>() : 0.0;
    max_abs_diff = std::max(max_abs_diff, output_diff);
    per_output += (i ? ", " : "") + expected.tensors[i].first + " " + format_number(output_diff);
    close = close && (diff <= atol + rtol * wanted.abs()).all().item<bool>();
    if (top_k > 0 && is_scores(outputs[i])) {
      same_top_k = same_top_k && top_k_indices(actual, top_k).equal(top_k_indices(wanted, top_k));
    }
  }
  const bool pass = close && same_top_k;
  std::cout << "parity: " << (pass ? "PASS" : "FAIL") << ": max abs diff " << format_number(max_abs_diff)
            << (close ? " within " : " exceeds ") << tolerance;
  if (top_k > 0 && is_scores(outputs.front())) {
    std::cout << ", top-" << top_k << (same_top_k ? " identical to Python" : " differs from Python");
  }
  if (outputs.size() > 1) {
    std::cout << "; per output: " << per_output;
  }
  std::cout << "\n";
  return pass;
}

// The model prepared for inference in the requested mode, and the mode it ended up in: a model that cannot be
// frozen (e.g. one that mutates its attributes) falls back to the next mode, with a note on stderr.
//   onednn: freeze (weights become constants, conv+batchnorm fold), then the graph executor fuses with oneDNN Graph
//   ofi:    freeze + optimize_for_inference (oneDNN convolutions with prepacked weights)
std::pair<torch::jit::Module, std::string> prepare(const torch::jit::Module& loaded, std::string mode, bool quiet) {
  auto note = [&](const std::string& what, const std::exception& error, const char* next) {
    if (!quiet) {
      std::cerr << "ts-infer: note: " << what << " failed (" << one_line(message_of(error)) << "); using --optimize "
                << next << "\n";
    }
  };
  if (mode == "onednn") {
    try {
      torch::jit::RegisterLlgaFuseGraph::setEnabled(true);
      return {torch::jit::freeze(loaded), mode};
    } catch (const std::exception& error) {
      torch::jit::RegisterLlgaFuseGraph::setEnabled(false);
      note("freezing for oneDNN fusion", error, "ofi");
      mode = "ofi";
    }
  }
  if (mode == "ofi") {
    try {
      torch::jit::Module copy = loaded.clone();
      return {torch::jit::optimize_for_inference(copy), mode};
    } catch (const std::exception& error) {
      note("optimize_for_inference", error, "none");
    }
  }
  return {loaded, "none"};
}

double percentile(const std::vector<double>& sorted, double fraction) {
  const auto rank = static_cast<size_t>(std::ceil(fraction * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}

// --bench: warm-up runs (first calls profile and specialise the graph), then timed runs of forward().
int bench(torch::jit::Module& module, const std::string& mode, const std::vector<torch::jit::IValue>& inputs,
          const Options& options) {
  for (int i = 0; i < options.warmup; ++i) {
    module.forward(inputs);
  }
  std::vector<double> latencies_ms;
  latencies_ms.reserve(static_cast<size_t>(options.bench));
  for (int i = 0; i < options.bench; ++i) {
    const auto start = std::chrono::steady_clock::now();
    module.forward(inputs);
    const std::chrono::duration<double, std::milli> elapsed = std::chrono::steady_clock::now() - start;
    latencies_ms.push_back(elapsed.count());
  }
  std::vector<double> sorted = latencies_ms;
  std::sort(sorted.begin(), sorted.end());
  const double mean = std::accumulate(sorted.begin(), sorted.end(), 0.0) / static_cast<double>(sorted.size());
  const auto& first = inputs.front().toTensor();
  const int64_t batch = first.dim() > 0 ? first.size(0) : 1;
  const double throughput = 1000.0 * static_cast<double>(batch) / mean;
  std::ostringstream out;
  out << std::fixed << std::setprecision(3);
  if (options.json) {
    out << "{\"runner\": \"ts-infer\", \"libtorch\": \"" TORCH_VERSION "\", \"runs\": " << options.bench
        << ", \"warmup\": " << options.warmup << ", \"threads\": " << at::get_num_threads() << ", \"optimize\": \""
        << mode << "\", \"batch\": " << batch << ", \"p50_ms\": " << percentile(sorted, 0.5)
        << ", \"p90_ms\": " << percentile(sorted, 0.9) << ", \"p99_ms\": " << percentile(sorted, 0.99)
        << ", \"mean_ms\": " << mean << ", \"throughput_per_s\": " << throughput << ", \"latencies_ms\": [";
    for (size_t i = 0; i < latencies_ms.size(); ++i) {
      out << (i ? ", " : "") << latencies_ms[i];
    }
    out << "]}";
  } else {
    out << "bench: " << options.bench << " runs after " << options.warmup << " warm-up, " << at::get_num_threads()
        << " threads, --optimize " << mode << ": p50 " << percentile(sorted, 0.5) << " ms, p90 "
        << percentile(sorted, 0.9) << " ms, p99 " << percentile(sorted, 0.99) << " ms, mean " << mean
        << " ms, throughput " << std::setprecision(1) << throughput << "/s";
  }
  std::cout << out.str() << "\n";
  return 0;
}

// The image preprocessing export.py saved in model.pt (preprocess.txt, "key value..." lines): resize the shorter
// side, center crop, scale to [0, 1], normalize per channel, as torchvision's ImageClassification transform.
struct ImageSettings {
  int64_t resize = 0;
  std::vector<int64_t> crop;  // height, width
  std::vector<double> mean;   // read as double and rounded to float by torch, as Python's torch.tensor does
  std::vector<double> std;
  std::string interpolation = "bilinear";
  at::ScalarType dtype = at::kFloat;

  static ImageSettings parse(const std::string& text) {
    ImageSettings settings;
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
      std::istringstream fields(line);
      std::string key;
      fields >> key;
      if (key == "resize") {
        fields >> settings.resize;
      } else if (key == "crop") {
        settings.crop.assign(std::istream_iterator<int64_t>(fields), {});
      } else if (key == "mean") {
        settings.mean.assign(std::istream_iterator<double>(fields), {});
      } else if (key == "std") {
        settings.std.assign(std::istream_iterator<double>(fields), {});
      } else if (key == "interpolation") {
        fields >> settings.interpolation;
      } else if (key == "dtype") {
        std::string dtype;
        fields >> dtype;
        settings.dtype = dtype == "float16"    ? at::kHalf
                         : dtype == "bfloat16" ? at::kBFloat16
                         : dtype == "float64"  ? at::kDouble
                                               : at::kFloat;
      }
    }
    const bool channels_fit =
        (settings.mean.size() == 1 || settings.mean.size() == 3) && settings.std.size() == settings.mean.size();
    const bool known = settings.interpolation == "bilinear" || settings.interpolation == "bicubic" ||
                       settings.interpolation == "nearest";
    if (settings.resize <= 0 || settings.crop.size() != 2 || !channels_fit || !known) {
      throw std::runtime_error("the model's preprocess.txt is malformed; re-export it with make export");
    }
    return settings;
  }
};

// An image file as a (3, height, width) uint8 RGB tensor. OpenCV's imread applies the EXIF orientation, expands
// grey and palette images to three channels and drops alpha, as predict.py does with Pillow.
at::Tensor read_image(const std::string& path) {
#if defined(TORCH_DEPLOY_WITH_OPENCV)
  if (!std::ifstream(path, std::ios::binary)) {
    throw std::runtime_error(path + ": cannot open the image (missing or unreadable)");
  }
  cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_ERROR);  // our one line says it, not a WARN too
  const cv::Mat bgr = cv::imread(path, cv::IMREAD_COLOR);
  if (bgr.empty()) {
    throw std::runtime_error(path + ": not an image OpenCV can decode (JPEG, PNG, BMP, TIFF, WebP, ...)");
  }
  const at::Tensor pixels =
      torch::from_blob(bgr.data, {bgr.rows, bgr.cols, 3}, {static_cast<int64_t>(bgr.step[0]), 3, 1}, at::kByte);
  return pixels.flip({2}).permute({2, 0, 1}).contiguous();  // BGR -> RGB, channels first (a copy: bgr is freed)
#else
  throw std::runtime_error(
      "--image " + path + ": this ts-infer was built without OpenCV, which --image needs to " +
      "decode images; install its development files (Debian/Ubuntu: apt install " +
      "libopencv-imgcodecs-dev; conda: opencv) and rebuild: make build CMAKE_ARGS=-DTORCH_DEPLOY_OPENCV=ON");
#endif
}

// The model's input from a (3, height, width) uint8 RGB image: the steps (and ATen kernels) of torchvision's
// ImageClassification transform on a tensor, which predict.py runs in Python.
at::Tensor preprocess(at::Tensor image, const ImageSettings& settings) {
  if (settings.mean.size() == 1) {  // torchvision's rgb_to_grayscale: weighted sum, truncated back to uint8
    image = (0.2989 * image[0] + 0.587 * image[1] + 0.114 * image[2]).to(at::kByte).unsqueeze(0);
  }
  const int64_t height = image.size(1);
  const int64_t width = image.size(2);
  const int64_t new_short = settings.resize;
  const auto new_long =
      static_cast<int64_t>(static_cast<double>(settings.resize) * static_cast<double>(std::max(height, width)) /
                           static_cast<double>(std::min(height, width)));
  const std::vector<int64_t> size =
      height <= width ? std::vector<int64_t>{new_short, new_long} : std::vector<int64_t>{new_long, new_short};
  if (size[0] != height || size[1] != width) {
    at::Tensor resized;
    const at::Tensor batch = image.unsqueeze(0).to(at::kFloat);
    if (settings.interpolation == "bicubic") {
      resized = at::_upsample_bicubic2d_aa(batch, size, /*align_corners=*/false).clamp(0, 255);
    } else if (settings.interpolation == "nearest") {
      resized = at::upsample_nearest2d(batch, size);
    } else {
      resized = at::_upsample_bilinear2d_aa(batch, size, /*align_corners=*/false);
    }
    image = resized.round().to(at::kByte).squeeze(0);
  }
  // Round half to even, as Python's round() in torchvision's center_crop.
  const auto top = static_cast<int64_t>(std::nearbyint(static_cast<double>(size[0] - settings.crop[0]) / 2.0));
  const auto left = static_cast<int64_t>(std::nearbyint(static_cast<double>(size[1] - settings.crop[1]) / 2.0));
  image = image.slice(1, top, top + settings.crop[0]).slice(2, left, left + settings.crop[1]);
  const auto channels = static_cast<int64_t>(settings.mean.size());
  const at::Tensor mean = torch::tensor(settings.mean).to(at::kFloat).view({channels, 1, 1});
  const at::Tensor std = torch::tensor(settings.std).to(at::kFloat).view({channels, 1, 1});
  return ((image.to(at::kFloat) / 255 - mean) / std).unsqueeze(0).to(settings.dtype);
}

// A random input like export.py's: floats in [0, 1) (the tutorial's dummy image), integers in [0, 10), coin flips.
at::Tensor random_input(const InputSpec& spec) {
  if (spec.dtype == at::kBool) {
    return torch::rand(spec.shape) > 0.5;
  }
  if (at::isFloatingType(spec.dtype)) {
    return torch::rand(spec.shape).to(spec.dtype);
  }
  return torch::randint(0, 10, spec.shape, at::TensorOptions().dtype(spec.dtype));
}

// A classifier's scores as the tutorial prints them (the first row's top-k indices; named when the model has several
// outputs); any other tensor as its name, shape, dtype and simple statistics.
void print_output(const std::string& name, const at::Tensor& output, int64_t top_k, bool named) {
  if (top_k > 0 && is_scores(output)) {
    if (named) {  // one of several outputs; a lone classifier prints exactly as the tutorial
      std::cout << name << " top-" << std::min(top_k, output.size(1)) << ":\n";
    }
    std::cout << top_k_indices(output, top_k)[0] << "\n";
    return;
  }
  std::cout << name << " " << output.sizes() << " " << output.scalar_type();
  if (output.numel() > 0) {
    const at::Tensor values = output.to(at::kDouble);
    std::cout << " min " << format_number(values.min().item<double>()) << " max "
              << format_number(values.max().item<double>()) << " mean " << format_number(values.mean().item<double>());
  }
  std::cout << "\n";
}

// The prepared model, and forward() with a safety net: a model that fails with the optimisation is run again as
// loaded (with a note), so that an optimisation the model does not survive never costs the user the run.
struct Runner {
  torch::jit::Module loaded;
  torch::jit::Module module;
  std::string mode;

  c10::IValue forward(std::vector<torch::jit::IValue> inputs) {
    try {
      try {
        return module.forward(inputs);
      } catch (const std::exception& error) {
        if (mode == "none") {
          throw;
        }
        // If the inputs are what is wrong, it fails again as loaded and only that is reported, below.
        const std::string failed = "ts-infer: note: the model failed with --optimize " + mode + " (" +
                                   one_line(message_of(error)) + "); ran it as loaded\n";
        torch::jit::RegisterLlgaFuseGraph::setEnabled(false);
        module = loaded;
        mode = "none";
        c10::IValue result = module.forward(inputs);
        std::cerr << failed;
        return result;
      }
    } catch (const std::exception& error) {
      throw std::runtime_error("the model failed on input " + describe(inputs) + ": " + one_line(message_of(error)) +
                               "; give inputs of the shape and dtype export.py used (artifacts/input.pt)");
    }
  }
};

// --save-input: the inputs as torch.save would write them (one tensor, or a tuple), for torch.load in Python.
void save_inputs(const std::string& path, const std::vector<torch::jit::IValue>& inputs) {
  const c10::IValue value = inputs.size() == 1 ? inputs.front() : c10::ivalue::Tuple::create(inputs);
  const std::vector<char> bytes = torch::jit::pickle_save(value);
  std::ofstream out(path, std::ios::binary);
  if (!out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()))) {
    throw std::runtime_error(path + ": cannot write the input there (--save-input)");
  }
}

// --image: each image preprocessed as the model's input, and the top-k of the first output with probabilities and
// the class names saved in the model (indices only when it has none).
int classify_images(Runner& runner, const Options& options, const torch::jit::ExtraFilesMap& extras, int64_t top_k) {
  if (extras.at("preprocess.txt").empty()) {
    throw std::runtime_error(options.model + " records no image preprocessing: its input is not one image, or " +
                             "deploy.json says \"preprocess\": null; set it to \"auto\" and run make export");
  }
  const ImageSettings settings = ImageSettings::parse(extras.at("preprocess.txt"));
  std::vector<std::string> names;
  std::istringstream classes(extras.at("classes.txt"));
  for (std::string name; std::getline(classes, name);) {
    names.push_back(name);
  }
  const int64_t k = top_k > 0 ? top_k : 5;
  std::vector<c10::IValue> preprocessed;  // for --save-input
  for (const std::string& path : options.images) {
    const std::vector<torch::jit::IValue> inputs = {preprocess(read_image(path), settings)};
    preprocessed.push_back(inputs.front());
    if (options.bench > 0) {
      if (!options.save_input.empty()) {
        save_inputs(options.save_input, inputs);
      }
      return bench(runner.module, runner.mode, inputs, options);
    }
    std::vector<at::Tensor> outputs;
    flatten(runner.forward(inputs), outputs);
    if (outputs.empty() || !is_scores(outputs.front())) {
      throw std::runtime_error(
          "the model's first output is not (batch, classes) scores; --image prints a classifier's top-k");
    }
    const at::Tensor probabilities = outputs.front()[0].to(at::kDouble).softmax(0);
    const auto [values, indices] = probabilities.topk(std::min(k, probabilities.size(0)));
    std::cout << path << ": top-" << values.size(0) << "\n" << std::fixed << std::setprecision(4);
    for (int64_t i = 0; i < values.size(0); ++i) {
      const int64_t index = indices[i].item<int64_t>();
      std::cout << "  " << values[i].item<double>() << "  " << index;
      if (index < static_cast<int64_t>(names.size())) {
        std::cout << "  " << names[static_cast<size_t>(index)];
      }
      std::cout << "\n";
    }
    std::cout.unsetf(std::ios::floatfield);
  }
  if (!options.save_input.empty()) {  // one image: its tensor; several: a tuple of them, in order
    save_inputs(options.save_input, preprocessed);
  }
  return 0;
}

int run(const Options& options) {
  if (options.threads > 0) {
    at::set_num_threads(options.threads);
  }
#if !defined(TORCH_DEPLOY_WITH_OPENCV)
  if (!options.images.empty()) {
    read_image(options.images.front());  // says how to enable --image, before the model is loaded
  }
#endif

  const bool quiet = options.json || !options.images.empty();
  if (!quiet) {
    std::cout << "Loading model...\n";
  }
  torch::jit::ExtraFilesMap extras;  // what export.py saved beside the model for --image
  extras["preprocess.txt"] = "";
  extras["classes.txt"] = "";
  torch::jit::Module loaded = load_module(options.model, "model", &extras);
  if (!quiet) {
    std::cout << "Model loaded successfully\n";
  }
  loaded.eval();  // dropout and batch norm in inference behaviour
  auto [module, mode] = prepare(loaded, options.optimize, options.json);
  Runner runner{loaded, module, mode};
  c10::InferenceMode inference_mode;  // no autograd bookkeeping: faster than NoGradGuard

  std::optional<TensorFile> expected;
  if (!options.expect.empty()) {
    expected.emplace(options.expect);
  }
  const auto recorded_top_k = expected ? expected->number("top_k", kDefaultTopK) : kDefaultTopK;
  const int64_t top_k = options.top_k.value_or(static_cast<int64_t>(recorded_top_k));

  if (!options.images.empty()) {
    return classify_images(runner, options, extras, top_k);
  }
  std::vector<torch::jit::IValue> inputs;
  if (options.input.empty()) {
    for (const auto& spec : kDefaultInputs) {
      inputs.emplace_back(random_input(spec));
    }
  } else {
    for (const auto& named : TensorFile(options.input).tensors) {
      inputs.emplace_back(named.second);
    }
  }
  if (!options.save_input.empty()) {
    save_inputs(options.save_input, inputs);
  }

  if (options.bench > 0) {
    return bench(runner.module, runner.mode, inputs, options);
  }

  std::vector<at::Tensor> outputs;
  flatten(runner.forward(inputs), outputs);

  for (size_t i = 0; i < outputs.size(); ++i) {
    const bool recorded = expected && expected->tensors.size() == outputs.size();
    const std::string name = recorded              ? expected->tensors[i].first
                             : outputs.size() == 1 ? "output"
                                                   : "output_" + std::to_string(i);
    print_output(name, outputs[i], top_k, outputs.size() > 1);
  }

  if (!expected) {
    std::cout << "\nDONE\n";
    return 0;
  }
  return check_parity(outputs, *expected, options, top_k) ? 0 : 1;
}

}  // namespace

int main(int argc, const char* argv[]) {
  try {
    return run(parse_args(argc, argv));
  } catch (const UsageError& e) {
    std::cerr << "ts-infer: " << e.what() << "\n" << kUsage << "\n";
    return 2;
  } catch (const c10::Error& e) {
    std::cerr << "ts-infer: error: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "ts-infer: error: " << e.what() << "\n";
    return 1;
  }
}
