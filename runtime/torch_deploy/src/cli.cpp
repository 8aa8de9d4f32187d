// The full runner behind ts-infer (torch_deploy::run_command_line, include/torch_deploy/cli.h): arguments and printing
// only, the work is done by the library, which applications use the same way.
//
//   ts-infer MODEL                      the tutorial's program: random inputs, the top-k of the softmax
//                                       (MODEL: a model file, or a folder of exports, artifacts/ or a bundle's
//                                       share/<project>/: the first model file its formats.txt lists)
//   ts-infer MODEL --input FILE         run on tensors written by export.py (artifacts/input.pt)
//   ts-infer MODEL --input FILE --expect FILE [--atol A] [--rtol R]
//                                       parity mode: exit 0 only when the output matches Python's
//   ts-infer MODEL --image FILE [--image FILE...]
//                                       classify images: the top-k with probabilities and class names
//                                       (with --bench: time the model on the first image)
//   --save-input FILE  write the model's input (after image preprocessing) for torch.load in Python
//   --top-k K    classes to print and, in parity mode, to compare (default: the project's top_k; 0: none)
//   --threads N  intra-op threads (default: libtorch's choice)
//   --bench N [--warmup W] [--json]   time N runs after W warm-up runs: latency percentiles and throughput
//   --optimize MODE  onednn (default: make tune's choice, else onednn), ofi or none (also --no-optimize): see
//                torch_deploy::Optimization; for TorchScript models (an AOTInductor package runs as compiled)
//   --device D   cpu, cuda or cuda:N (default: the project's, recorded in the model file): see ModelOptions::device;
//                checked before any work
//   --precision P    fp32 or bf16 (default: make tune's choice, else the project's, recorded in the model file): see
//                torch_deploy::Precision; without native bf16 the model runs in fp32, unless --emulate-bf16. In parity
//                mode the precision is the expected file's (Python's bf16 reference, expected_bf16.pt, says bf16),
//                emulated where need be
//   --drift-from FILE  in parity mode: also how far the output is from these reference outputs (fp32's: expected.pt)
//
// The inputs' names, shapes and dtypes, the top-k, the image preprocessing and the class names are read from the
// model file, where export.py recorded them: editing deploy.json and running make export is enough.

#include <ATen/Parallel.h>
#include <ATen/core/Formatting.h>
#include <c10/util/Exception.h>
#include <torch/version.h>
#include <torch_deploy/cli.h>
#include <torch_deploy/torch_deploy.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// The program's name in messages (set from argv[0] by run_command_line).
const char* program = "ts-infer";

constexpr const char* kOptions =
    "MODEL [--input FILE] [--expect FILE] [--atol A] [--rtol R] [--top-k K] "
    "[--image FILE]... [--save-input FILE] [--threads N] [--bench N [--warmup W] [--json]] "
    "[--device cpu|cuda|cuda:N] [--optimize onednn|ofi|none] [--precision fp32|bf16] [--emulate-bf16] "
    "[--drift-from FILE]";

std::string usage() { return std::string("usage: ") + program + " " + kOptions; }

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
  std::optional<torch_deploy::Optimization> optimize;  // unset: the model format's best
  std::optional<torch_deploy::Precision> precision;    // unset: the project's
  std::optional<std::string> device;                   // unset: the project's
  bool emulate_bf16 = false;
  std::string drift_from;
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
      std::cout << usage() << "\n";
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
      const std::string mode = value();
      const auto parsed = torch_deploy::parse_optimization(mode);
      if (!parsed) {
        throw UsageError("--optimize " + mode + ": use onednn, ofi or none");
      }
      options.optimize = parsed;
    } else if (arg == "--precision") {
      const std::string precision = value();
      options.precision = torch_deploy::parse_precision(precision);
      if (!options.precision) {
        throw UsageError("--precision " + precision + ": use fp32 or bf16");
      }
    } else if (arg == "--device") {
      options.device = value();
      if (!torch_deploy::parse_device(*options.device)) {
        throw UsageError("--device " + *options.device + ": use cpu, cuda or cuda:N (N: a GPU's index, from 0)");
      }
    } else if (arg == "--emulate-bf16") {
      options.emulate_bf16 = true;
    } else if (arg == "--drift-from") {
      options.drift_from = value();
    } else if (arg == "--no-optimize") {
      options.optimize = torch_deploy::Optimization::none;
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
  if (!options.drift_from.empty() && options.expect.empty()) {
    throw UsageError("--drift-from goes with --expect (parity mode)");
  }
  if (options.json && options.bench == 0) {
    throw UsageError("--json goes with --bench N");
  }
  if (!options.images.empty() && !options.input.empty()) {
    throw UsageError("--image and --input are alternatives: give one of them");
  }
  return options;
}

// A count in JSON: null for -1 (not measured).
std::string json_count(int64_t count) { return count < 0 ? "null" : std::to_string(count); }

int print_bench(const torch_deploy::Model& model, const std::vector<at::Tensor>& inputs, const Options& options) {
  const torch_deploy::Timing timing = torch_deploy::bench(model, inputs, options.bench, options.warmup);
  const char* format = torch_deploy::to_string(model.format());
  const char* mode = torch_deploy::to_string(model.optimization());
  const char* precision = torch_deploy::to_string(model.precision());
  const std::string device = model.device().str();
  std::ostringstream out;
  out << std::fixed << std::setprecision(3);
  if (options.json) {
    out << "{\"runner\": \"" << program << "\", \"libtorch\": \"" TORCH_VERSION "\", \"runs\": " << options.bench
        << ", \"warmup\": " << options.warmup << ", \"threads\": " << at::get_num_threads() << ", \"format\": \""
        << format << "\", \"device\": \"" << device << "\", \"optimize\": \"" << mode << "\", \"precision\": \""
        << precision << "\", \"native_bf16\": " << (torch_deploy::native_bf16() ? "true" : "false")
        << ", \"batch\": " << timing.batch << ", \"p50_ms\": " << timing.p50_ms << ", \"p90_ms\": " << timing.p90_ms
        << ", \"p99_ms\": " << timing.p99_ms << ", \"mean_ms\": " << timing.mean_ms
        << ", \"throughput_per_s\": " << timing.throughput_per_s
        << ", \"fused_partitions\": " << json_count(timing.fused_partitions)
        << ", \"unfused_operators\": " << json_count(timing.unfused_operators) << ", \"latencies_ms\": [";
    for (size_t i = 0; i < timing.latencies_ms.size(); ++i) {
      out << (i ? ", " : "") << timing.latencies_ms[i];
    }
    out << "]}";
  } else {
    out << "bench: " << options.bench << " runs after " << options.warmup << " warm-up, " << at::get_num_threads()
        << " threads, " << format << " --device " << device << " --optimize " << mode << " --precision " << precision
        << ": p50 " << timing.p50_ms << " ms, p90 " << timing.p90_ms << " ms, p99 " << timing.p99_ms << " ms, mean "
        << timing.mean_ms << " ms, throughput " << std::setprecision(1) << timing.throughput_per_s << "/s";
    if (timing.fused_partitions >= 0) {
      out << "; " << timing.fused_partitions << " fused partitions, " << timing.unfused_operators
          << (timing.unfused_operators == 1 ? " operator" : " operators") << " outside them";
    }
  }
  std::cout << out.str() << "\n";
  return 0;
}

// --image: each image preprocessed as the model's input, and the top-k with probabilities and class names.
int classify_images(const torch_deploy::Model& model, const Options& options, int64_t top_k) {
  const int64_t k = top_k > 0 ? top_k : 5;
  std::vector<at::Tensor> preprocessed;  // for --save-input: one image's tensor, or a tuple of them, in order
  for (const std::string& path : options.images) {
    const at::Tensor input = model.image_input(path);
    preprocessed.push_back(input);
    if (options.bench > 0) {
      if (!options.save_input.empty()) {
        torch_deploy::save_for_torch_load(options.save_input, {input});
      }
      return print_bench(model, {input}, options);
    }
    const std::vector<at::Tensor> outputs = model.run({input});
    // top_k 0 (a detector's, say) or no class scores (a segmentation's): what each output holds
    if (outputs.empty() || top_k <= 0 || !torch_deploy::is_scores(outputs.front())) {
      const std::vector<std::string>& names = model.output_names();
      std::cout << path << ": outputs (not class scores)\n";
      for (size_t i = 0; i < outputs.size(); ++i) {
        const std::string name = i < names.size() ? names[i] : "output_" + std::to_string(i);
        std::cout << "  " << torch_deploy::summarize_output(name, outputs[i], model.class_names(), k) << "\n";
      }
      continue;
    }
    const std::vector<torch_deploy::Prediction> predictions = model.top_classes(outputs.front(), k);
    std::cout << path << ": top-" << predictions.size() << "\n" << std::fixed << std::setprecision(4);
    for (const torch_deploy::Prediction& prediction : predictions) {
      std::cout << "  " << prediction.probability << "  " << prediction.index;
      if (!prediction.label.empty()) {
        std::cout << "  " << prediction.label;
      }
      std::cout << "\n";
    }
    std::cout.unsetf(std::ios::floatfield);
  }
  if (!options.save_input.empty()) {
    torch_deploy::save_for_torch_load(options.save_input, preprocessed);
  }
  return 0;
}

int run(const Options& options) {
  if (options.device) {  // before any work: a GPU that this machine or build lacks is named at once
    torch_deploy::usable_device(*options.device);
  }
  if (!options.images.empty() && !torch_deploy::images_supported()) {  // before the model is loaded
    throw std::runtime_error(
        "--image " + options.images.front() + ": this ts-infer was built without libjpeg and libpng, which " +
        "--image needs to decode images; install their development files (Debian/Ubuntu: apt install libjpeg-dev " +
        "libpng-dev; conda: libjpeg-turbo libpng) and rebuild: make build CMAKE_ARGS=-DTORCH_DEPLOY_IMAGES=ON");
  }
  for (const std::string& path : options.images) {  // a wrong path or format named at once, not after the model loads
    torch_deploy::check_image(path);
  }
  const bool quiet = options.json || !options.images.empty();
  if (!quiet) {
    std::cout << "Loading model...\n";
  }
  std::optional<torch_deploy::TensorFile> expected;
  if (!options.expect.empty()) {
    expected = torch_deploy::load_tensors(options.expect);
  }
  torch_deploy::ModelOptions model_options;
  model_options.optimization = options.optimize;
  model_options.precision = options.precision;
  model_options.device = options.device;
  model_options.emulate_bf16 = options.emulate_bf16;
  if (expected && !options.precision) {  // the reference's precision, even emulated: that is what it checks
    const bool bf16 = expected->number("bf16", 0) != 0;
    model_options.precision = bf16 ? torch_deploy::Precision::bf16 : torch_deploy::Precision::fp32;
    model_options.emulate_bf16 = model_options.emulate_bf16 || bf16;
  }
  model_options.threads = options.threads;
  model_options.on_note = [](const std::string& note) { std::cerr << program << ": note: " << note << "\n"; };
  if (options.json) {
    model_options.on_note = nullptr;  // one JSON line on stdout, nothing else
  }
  const torch_deploy::Model model(options.model, model_options);
  if (!quiet) {
    std::cout << "Model loaded successfully\n";
  }

  const auto recorded = static_cast<double>(model.top_k());  // the expected file's top_k wins: it made the check
  const int64_t top_k = options.top_k.value_or(expected ? expected->number("top_k", recorded) : recorded);

  if (!options.images.empty()) {
    return classify_images(model, options, top_k);
  }
  const std::vector<at::Tensor> inputs = options.input.empty() ? torch_deploy::random_inputs(model.inputs())
                                                               : torch_deploy::load_tensors(options.input).tensors;
  if (!options.save_input.empty()) {
    torch_deploy::save_for_torch_load(options.save_input, inputs);
  }
  if (options.bench > 0) {
    return print_bench(model, inputs, options);
  }

  std::vector<at::Tensor> outputs = model.run(inputs);
  if (expected) {
    // TorchScript optimises (fuses) the model after its first, profiling, run: the parity check is of what it computes
    // from then on, which is what a long-running program gets.
    outputs = model.run(inputs);
  }
  // Names: the expected file's (they are Python's), else the model file's, else by position.
  torch_deploy::print_outputs(std::cout, outputs, expected ? expected->names : model.output_names(), top_k);

  if (!expected) {
    std::cout << "\nDONE\n";
    return 0;
  }
  torch_deploy::Report report =
      torch_deploy::compare(outputs, expected->tensors, options.atol.value_or(expected->number("atol", 1e-4)),
                            options.rtol.value_or(expected->number("rtol", 1e-4)), top_k);
  if (!options.drift_from.empty()) {
    report.drift = torch_deploy::drift(outputs, torch_deploy::load_tensors(options.drift_from).tensors, top_k);
    report.drift_from = options.drift_from;
  }
  const bool bf16 = model.precision() == torch_deploy::Precision::bf16;
  report.show_scale = !bf16;
  const std::string on = model.device().is_cpu() ? "" : " on " + model.device().str();
  std::cout << (bf16 ? "parity in bf16" : "parity") << on << ": " << report.describe(expected->names) << "\n";
  return report.pass ? 0 : 1;
}

}  // namespace

namespace torch_deploy {

void print_outputs(std::ostream& out, const std::vector<at::Tensor>& outputs, const std::vector<std::string>& names,
                   int64_t top_k) {
  const bool named = outputs.size() > 1;  // one of several outputs; a lone classifier prints exactly as the tutorial
  for (size_t i = 0; i < outputs.size(); ++i) {
    const at::Tensor& output = outputs[i];
    const std::string name = names.size() == outputs.size() ? names[i]
                             : named                        ? "output_" + std::to_string(i)
                                                            : "output";
    if (top_k > 0 && is_scores(output)) {
      if (named) {
        out << name << " top-" << std::min(top_k, output.size(1)) << ":\n";
      }
      out << top_k_indices(output, top_k)[0] << "\n";
      continue;
    }
    out << summarize_output(name, output, {}, top_k) << "\n";
  }
}

std::string summarize_output(const std::string& name, const at::Tensor& output,
                             const std::vector<std::string>& class_names, int64_t k) {
  std::ostringstream out;
  out << name << " " << output.sizes() << " " << output.scalar_type();
  if (output.numel() == 0) {
    return out.str();
  }
  const at::Tensor values = output.to(at::kDouble);
  out << " min " << format_number(values.min().item<double>()) << " max " << format_number(values.max().item<double>())
      << " mean " << format_number(values.mean().item<double>());
  if (output.dim() == 4 && output.is_floating_point() && output.size(1) > 1) {
    const int64_t classes = output.size(1);
    const at::Tensor counts = values[0].argmax(0).flatten().bincount({}, classes);
    const auto [shown, indices] = counts.topk(std::min(std::max<int64_t>(k, 1), classes));
    const double pixels = static_cast<double>(values[0][0].numel());
    out << "; per pixel:" << std::fixed << std::setprecision(1);
    for (int64_t i = 0; i < shown.size(0) && shown[i].item<int64_t>() > 0; ++i) {
      const int64_t index = indices[i].item<int64_t>();
      out << (i ? ", " : " ") << index;
      if (index < static_cast<int64_t>(class_names.size())) {
        out << " " << class_names[static_cast<size_t>(index)];
      }
      out << " " << 100.0 * static_cast<double>(shown[i].item<int64_t>()) / pixels << "%";
    }
  }
  return out.str();
}

int run_command_line(int argc, const char* argv[]) {
  if (argc > 0 && argv[0] != nullptr && *argv[0] != '\0') {
    const char* slash = std::strrchr(argv[0], '/');
    program = slash != nullptr ? slash + 1 : argv[0];
  }
  try {
    return run(parse_args(argc, argv));
  } catch (const UsageError& e) {
    std::cerr << program << ": " << e.what() << "\n" << usage() << "\n";
    return 2;
  } catch (const c10::Error& e) {  // from a tensor operation (the library's own errors are torch_deploy::Error)
    std::cerr << program << ": error: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << program << ": error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace torch_deploy
