// Model: loading a TorchScript file or an AOTInductor package with what export.py recorded in it, preparing it for
// inference, running it.

#include <ATen/Parallel.h>
#include <ATen/core/Formatting.h>
#include <ATen/core/Tensor.h>  // before the _ops headers, which need it
#include <ATen/ops/rand_ops.h>
#include <ATen/ops/randint_ops.h>
#include <c10/core/DeviceGuard.h>
#include <c10/core/InferenceMode.h>
#include <torch_deploy/compare.h>
#include <torch_deploy/error.h>
#include <torch_deploy/model.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <tuple>
#include <utility>

#if defined(__x86_64__)
#include <cpuid.h>
#elif defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

#include "detail.h"
#include "package.h"
#include "script.h"

namespace torch_deploy {

namespace {

// What export.py saves inside the model file (torch.jit.save's extra files).
constexpr const char* kDeployFile = "deploy.txt";          // input specs, output names, top_k
constexpr const char* kPreprocessFile = "preprocess.txt";  // image preprocessing
constexpr const char* kClassesFile = "classes.txt";        // class names, one per line
constexpr int64_t kTutorialTopK = 5;

struct Description {
  std::vector<InputSpec> inputs;
  std::vector<std::string> output_names;
  int64_t top_k = kTutorialTopK;
  std::string torch;                      // the version that exported the model
  bool dynamic_batch = false;             // whether the inputs' first dimension may differ from the recorded one
  Precision precision = Precision::fp32;  // the project's default
  std::string device = "cpu";             // the project's default
};

// deploy.txt: "input <name> <dtype> <dim>...", "output <name>", "top_k <k>", "torch <version>" and "dynamic_batch 1"
// lines, "precision bf16" for a project that runs in bf16 and "device cuda" for one that runs on a GPU ('#' starts a
// comment).
Description parse_description(const std::string& path, const std::string& text) {
  Description description;
  detail::for_each_field(text, [&](const std::string& key, std::istream& fields, const std::string& line) {
    if (key == "input") {
      InputSpec spec;
      std::string dtype;
      fields >> spec.name >> dtype;
      spec.shape.assign(std::istream_iterator<int64_t>(fields), {});
      const auto type = detail::scalar_type_named(dtype);
      if (spec.name.empty() || !type || spec.shape.empty()) {
        throw Error(path + ": its " + kDeployFile + " has a malformed input line (" + line +
                    "); re-export it with make export");
      }
      spec.dtype = *type;
      description.inputs.push_back(std::move(spec));
    } else if (key == "output") {
      std::string name;
      fields >> name;
      description.output_names.push_back(name);
    } else if (key == "top_k") {
      fields >> description.top_k;
    } else if (key == "torch") {
      fields >> description.torch;
    } else if (key == "dynamic_batch") {
      fields >> description.dynamic_batch;
    } else if (key == "precision") {
      std::string name;
      fields >> name;
      const auto precision = parse_precision(name);
      if (!precision) {
        throw Error(path + ": its " + kDeployFile + " names an unknown precision (" + line +
                    "); re-export it with make export");
      }
      description.precision = *precision;
    } else if (key == "device") {
      fields >> description.device;
    }
  });
  return description;
}

// "[1, 3, 224, 224] Float, [2, 16] Long": inputs' shapes and dtypes as messages show them (those of unknown dtype,
// which a model file not written by export.py has, left out).
std::string kinds(const std::vector<InputSpec>& specs) {
  std::ostringstream out;
  for (const InputSpec& spec : specs) {
    if (spec.dtype != at::ScalarType::Undefined) {
      out << (out.tellp() > 0 ? ", " : "") << c10::IntArrayRef(spec.shape) << " " << spec.dtype;
    }
  }
  return out.str();
}

std::string kinds(const std::vector<at::Tensor>& tensors) {
  std::vector<InputSpec> specs;
  specs.reserve(tensors.size());
  for (const at::Tensor& tensor : tensors) {
    specs.push_back({"", tensor.sizes().vec(), tensor.scalar_type()});
  }
  return kinds(specs);
}

// The model, loaded in its format, as one callable: a handle (TorchScript module or AOTInductor package) that copies
// share and that may be called from several threads at once.
using Runner = std::function<std::vector<at::Tensor>(const std::vector<at::Tensor>&)>;

Runner runner_of(const detail::Script& script) {
  return [script](const std::vector<at::Tensor>& inputs) { return script.run(inputs); };
}

// The size of a file in MB, for messages ("?" when it cannot be read).
std::string megabytes(const std::string& path) {
  std::error_code error;
  const auto bytes = std::filesystem::file_size(path, error);
  constexpr double kMB = 1e6;
  return error ? std::string("?") : std::to_string(std::llround(static_cast<double>(bytes) / kMB));
}

// Compiled code takes inputs of the kinds it was compiled for (the first dimension may vary with a dynamic batch).
// Its own check of them also writes to stderr, so they are checked here first, for one clean error.
void check_kinds(const std::vector<at::Tensor>& inputs, const Description& description) {
  const std::vector<InputSpec>& specs = description.inputs;
  if (inputs.size() != specs.size()) {
    throw std::invalid_argument(std::to_string(inputs.size()) + " inputs, and the model takes " +
                                std::to_string(specs.size()));
  }
  const std::ptrdiff_t first = description.dynamic_batch ? 1 : 0;  // the dimension to compare from: any batch size
  for (size_t i = 0; i < specs.size(); ++i) {
    const at::IntArrayRef shape = inputs[i].sizes();
    const std::vector<int64_t>& wanted = specs[i].shape;
    const bool same_shape = shape.size() == wanted.size() &&
                            (shape.empty() || std::equal(shape.begin() + first, shape.end(), wanted.begin() + first));
    if (inputs[i].scalar_type() != specs[i].dtype || !same_shape) {
      throw std::invalid_argument("input " + specs[i].name + " is not of the kind the package was compiled for" +
                                  (description.dynamic_batch ? " (only the first dimension may differ)" : ""));
    }
  }
}

}  // namespace

const char* to_string(Format format) { return format == Format::aoti ? "aoti" : "torchscript"; }

void print_note(const std::string& note) { std::cerr << "torch_deploy: note: " << note << "\n"; }

const char* to_string(Optimization optimization) {
  switch (optimization) {
    case Optimization::onednn:
      return "onednn";
    case Optimization::ofi:
      return "ofi";
    case Optimization::none:
      return "none";
  }
  return "none";
}

std::optional<Optimization> parse_optimization(const std::string& text) {
  for (const Optimization mode : {Optimization::onednn, Optimization::ofi, Optimization::none}) {
    if (text == to_string(mode)) {
      return mode;
    }
  }
  return std::nullopt;
}

const char* to_string(Precision precision) {
  switch (precision) {
    case Precision::bf16:
      return "bf16";
    case Precision::int8:
      return "int8";
    default:
      return "fp32";
  }
}

std::optional<Precision> parse_precision(const std::string& text) {
  for (const Precision precision : {Precision::fp32, Precision::bf16}) {
    if (text == to_string(precision)) {
      return precision;
    }
  }
  return std::nullopt;
}

bool native_bf16() {
#if defined(__x86_64__)
  // CPUID leaf 7: sub-leaf 1 EAX bit 5 is AVX512_BF16; sub-leaf 0 EDX bit 22 is AMX-BF16. AVX-512 also needs the OS
  // to save its registers, which __builtin_cpu_supports checks; oneDNN asks Linux for AMX's tiles itself.
  constexpr unsigned kAvx512Bf16 = 1U << 5U;
  constexpr unsigned kAmxBf16 = 1U << 22U;
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  const bool avx512_bf16 =
      __builtin_cpu_supports("avx512f") && __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) && (eax & kAvx512Bf16) != 0;
  const bool amx_bf16 = __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) && (edx & kAmxBf16) != 0;
  return avx512_bf16 || amx_bf16;
#elif defined(__aarch64__) && defined(__linux__) && defined(HWCAP2_BF16)
  return (getauxval(AT_HWCAP2) & HWCAP2_BF16) != 0;
#else
  return false;
#endif
}

struct Model::Impl {
  // What runs: the prepared model, its optimisation and precision. Replaced as a whole (under `mutex`) when a
  // TorchScript model fails prepared and falls back (to optimize_for_inference, or to the module as loaded, in fp32);
  // callers run the snapshot they took.
  struct Prepared {
    Runner run;
    Optimization optimization;
    Precision precision = Precision::fp32;
  };

  // Declared first, so destroyed last, after everything the model holds on its GPU: that memory then goes back to the
  // driver, rather than staying in libtorch's cache for the rest of the process.
  struct GpuMemory {
    c10::Device device{c10::kCPU};
    GpuMemory() = default;
    GpuMemory(const GpuMemory&) = delete;
    GpuMemory& operator=(const GpuMemory&) = delete;
    GpuMemory(GpuMemory&&) = delete;
    GpuMemory& operator=(GpuMemory&&) = delete;
    ~GpuMemory() {
      if (!device.is_cpu()) {
        detail::release_gpu_memory(device);
      }
    }
  } memory;

  std::string path;
  Format format = Format::torchscript;
  c10::Device device{c10::kCPU};
  std::optional<Tuned> tuned;  // make tune's choice for this model file, measured on the CPU
  bool outputs_on_device = false;
  detail::Script loaded;  // TorchScript: the module as loaded, the fallback of a prepared one that fails
  std::function<void(const std::string&)> note;
  Description description;
  std::optional<ImageSettings> image_settings;
  std::vector<std::string> class_names;
  mutable std::mutex mutex;
  std::shared_ptr<const Prepared> prepared;

  std::shared_ptr<const Prepared> current() const {
    std::lock_guard<std::mutex> lock(mutex);
    return prepared;
  }

  std::vector<at::Tensor> run(const std::vector<at::Tensor>& inputs) {
    const std::shared_ptr<const Prepared> taken = current();
    try {
      return taken->run(inputs);
    } catch (const Error&) {
      throw;  // the model ran: its result is what cannot be used
    } catch (const std::exception& error) {
      if (format == Format::aoti ||
          (taken->optimization == Optimization::none && taken->precision == Precision::fp32)) {
        throw;  // nothing simpler to run: a package runs as compiled
      }
      const bool bf16 = taken->precision == Precision::bf16;
      const std::string failed = std::string("the model failed") + (bf16 ? " in bf16" : "") + " with --optimize " +
                                 to_string(taken->optimization) + " (" + detail::cause_of(error) + "); ran it ";
      // If the inputs are what is wrong, the model fails again as loaded and only that is reported (by run()).
      const Runner as_loaded = runner_of(loaded);
      std::vector<at::Tensor> outputs = as_loaded(inputs);
      // Frozen for oneDNN Graph, a model can fail only once it runs (a torchvision detector: "Couldn't find an
      // argument called self"): then optimize_for_inference, as when preparing fails, on inputs the model takes (an
      // optimize_for_inference model given a wrong shape may crash rather than throw), else the model as loaded.
      Runner fallback = as_loaded;
      Optimization fallback_mode = Optimization::none;
      if (taken->optimization == Optimization::onednn && !bf16) {
        if (auto ran = run_optimized_for_inference(loaded, inputs)) {
          std::tie(fallback, outputs) = std::move(*ran);
          fallback_mode = Optimization::ofi;
        }
      }
      bool first = false;
      {
        std::lock_guard<std::mutex> lock(mutex);
        if (prepared == taken) {
          detail::disable_fusion();
          prepared = std::make_shared<const Prepared>(Prepared{fallback, fallback_mode});
          first = true;
        }
      }
      if (first) {
        note(failed + (fallback_mode == Optimization::ofi ? "with --optimize ofi" : "as loaded") +
             (bf16 ? ", in fp32" : ""));
      }
      return outputs;
    }
  }

  // The module as loaded, prepared with optimize_for_inference, and its outputs on `inputs`; none when preparing or
  // running it fails (the model as loaded, run next, says what is wrong, if anything is).
  static std::optional<std::pair<Runner, std::vector<at::Tensor>>> run_optimized_for_inference(
      const detail::Script& script, const std::vector<at::Tensor>& inputs) {
    detail::disable_fusion();
    Optimization mode = Optimization::ofi;
    const detail::Script ready = script.prepared(mode, [](const std::string&) {});
    if (mode != Optimization::ofi) {
      return std::nullopt;
    }
    try {
      Runner runner = runner_of(ready);
      std::vector<at::Tensor> outputs = runner(inputs);
      return std::make_pair(std::move(runner), std::move(outputs));
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }

  // The texts export.py saved in the model file: deploy.txt, preprocess.txt and classes.txt ("" when absent).
  void describe(const std::map<std::string, std::string>& texts) {
    static const std::string absent;
    const auto text = [&](const char* name) -> const std::string& {
      const auto found = texts.find(name);
      return found == texts.end() ? absent : found->second;
    };
    if (!text(kDeployFile).empty()) {
      description = parse_description(path, text(kDeployFile));
    }
    if (!text(kPreprocessFile).empty()) {
      try {
        image_settings = ImageSettings::parse(text(kPreprocessFile));
      } catch (const Error& error) {
        throw Error(path + ": " + error.what());
      }
    }
    std::istringstream classes(text(kClassesFile));
    for (std::string name; std::getline(classes, name);) {
      class_names.push_back(name);
    }
  }

  // A TorchScript model's precision: the one asked for, else make tune's (on the CPU), else the project's; bf16 on the
  // CPU only where it pays (native_bf16()); GPUs compute bf16 natively (Ampere and newer).
  Precision precision_for(std::optional<Precision> asked, bool emulate_bf16) const {
    const std::optional<Precision> from_tune = tuned && device.is_cpu() ? tuned->precision : std::nullopt;
    const Precision wanted = asked.value_or(from_tune.value_or(description.precision));
    if (wanted == Precision::bf16 && device.is_cpu() && !native_bf16() && !emulate_bf16) {
      note("this CPU has no native bf16 (AVX512-BF16 or AMX), where emulated bf16 is slower than fp32: running " +
           path + " in fp32 (--emulate-bf16 runs bf16 anyway, to check its numbers)");
      return Precision::fp32;
    }
    return wanted;
  }

  // One line for running out of memory on the model's device: while doing what, the model's size, the GPU's free
  // memory, and the fixes.
  std::string out_of_memory(const std::string& doing, const c10::OutOfMemoryError& error) const {
    std::string cause = detail::cause_of(error);
    const size_t asked = cause.find("Tried to allocate");  // libtorch's sentence on the allocation that failed
    if (asked != std::string::npos) {
      cause = cause.substr(asked, cause.find(". ", asked) - asked);
    }
    const std::string free = device.is_cpu() ? "" : detail::gpu_memory();
    return path + ": out of memory on " + device.str() + " " + doing + " (" + cause + "; the model file is " +
           megabytes(path) + " MB" + (free.empty() ? "" : ", and the GPU has " + free) + "); free memory there " +
           (device.is_cpu() ? "" : "(other processes on the GPU: nvidia-smi) ") + "or give smaller batches" +
           (device.is_cpu() ? "" : ", or run the model on the CPU (--device cpu)");
  }

  // The model's device: the one asked for, else the project's; checked before anything is loaded onto it.
  void choose_device(const std::optional<std::string>& asked) {
    device = usable_device(asked.value_or(description.device));
    memory.device = device;
  }

  // TorchScript's preparation off the CPU: oneDNN Graph fusion is for the CPU, optimize_for_inference is not.
  Optimization optimization_for(std::optional<Optimization> asked) const {
    if (device.is_cpu()) {
      const std::optional<Optimization> from_tune = tuned ? tuned->optimization : std::nullopt;
      return asked.value_or(from_tune.value_or(Optimization::onednn));
    }
    if (asked == Optimization::onednn) {
      note("--optimize onednn (oneDNN Graph fusion) is for the CPU; on " + device.str() +
           " the model runs with --optimize ofi");
    }
    return asked == Optimization::none ? Optimization::none : Optimization::ofi;
  }

  void load_script(std::optional<Optimization> optimization, std::optional<Precision> precision, bool emulate_bf16,
                   const std::optional<std::string>& asked_device) {
    // export.py's texts first (kilobytes): the project's device is among them, and is checked before loading.
    describe(detail::Script::extras(path, {kDeployFile, kPreprocessFile, kClassesFile}));
    choose_device(asked_device);
    // Not an AOTInductor package (is_package() looked): a TorchScript file, or neither.
    loaded = detail::Script::load(path, "model", nullptr, device);
    loaded.eval();
    if (description.inputs.empty()) {  // not exported by export.py: the names of forward()'s arguments only
      for (const std::string& name : loaded.argument_names()) {
        description.inputs.push_back({name, {}, at::ScalarType::Undefined});
      }
    }
    const Precision in_effect = precision_for(precision, emulate_bf16);
    Optimization mode = optimization_for(optimization);
    if (in_effect == Precision::bf16) {
      // The activation rewrites and the fixed pools, which bf16's reference (expected_bf16.pt, Python's frozen and
      // fused model) makes too (artifacts.run_in_bf16 reads rewrites.inc, and fix_pools mirrors with_fixed_pools). In
      // bf16 a rewritten operator rounds where a fused one does not: unrewritten, that reference would be another
      // computation.
      const detail::Script ready = loaded.in_bfloat16().prepared(mode, note, description.inputs);
      prepared = std::make_shared<const Prepared>(Prepared{runner_of(ready), mode, Precision::bf16});
    } else {
      const detail::Script ready = loaded.prepared(mode, note, description.inputs);
      prepared = std::make_shared<const Prepared>(Prepared{runner_of(ready), mode});
    }
  }

  void load_package(std::optional<Optimization> optimization, std::optional<Precision> precision,
                    const std::optional<std::string>& asked_device) {
    const std::map<std::string, std::string> metadata = detail::Package::metadata(path);
    describe(metadata);
    if (description.device == "cpu") {  // a package made elsewhere: the device it was compiled for is its own
      description.device = detail::Package::compiled_for(metadata);
    }
    choose_device(asked_device);
    // The aoti_int8 format's package says so in its metadata (export.py's "quantization").
    const auto quantization = metadata.find("quantization");
    const Precision compiled_in =
        quantization != metadata.end() && quantization->second == "int8" ? Precision::int8 : Precision::fp32;
    if (precision == Precision::bf16) {  // asked for: a project's default of bf16 is its TorchScript model's
      note("--precision bf16 is for TorchScript models; " + path +
           " is an AOTInductor package, compiled ahead of time in " + to_string(compiled_in) + ", and runs in " +
           to_string(compiled_in));
    }
    if (optimization && *optimization != Optimization::none) {
      note(std::string("--optimize ") + to_string(*optimization) + " is for TorchScript models; " + path +
           " is an AOTInductor package, compiled ahead of time, and runs as compiled");
    }
    // On the CPU one model instance per core, as many calls at once as there are cores to run them; on a GPU one:
    // calls take turns on its stream.
    const int concurrency = device.is_cpu() ? static_cast<int>(std::max(1U, std::thread::hardware_concurrency())) : 1;
    const detail::Package package = detail::Package::load(path, metadata, description.torch, concurrency, device);
    prepared = std::make_shared<const Prepared>(
        Prepared{[package, kinds = description](const std::vector<at::Tensor>& inputs) {
                   if (!kinds.inputs.empty()) {
                     check_kinds(inputs, kinds);
                   }
                   return package.run(inputs);
                 },
                 Optimization::none, compiled_in});
  }
};

std::optional<Tuned> read_tuned(const std::string& folder) {
  const std::filesystem::path file = std::filesystem::path(folder) / "tuned.txt";
  std::ifstream in(file);
  if (!in) {
    return std::nullopt;
  }
  const auto malformed = [&](const std::string& line) {
    return Error(file.string() + ": not make tune's (" + line + "); run make tune again, or delete it");
  };
  std::optional<Tuned> tuned;
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    Tuned entry;
    if (line.empty() || line[0] == '#' || !(fields >> entry.model_file)) {
      continue;
    }
    if (tuned) {
      throw malformed(line);  // one choice
    }
    for (std::string setting; fields >> setting;) {
      const size_t equals = setting.find('=');
      const std::string key = setting.substr(0, equals);
      const std::string value = equals == std::string::npos ? "" : setting.substr(equals + 1);
      if (key == "optimize" && parse_optimization(value)) {
        entry.optimization = parse_optimization(value);
      } else if (key == "precision" && parse_precision(value)) {
        entry.precision = parse_precision(value);
      } else {
        throw malformed(line);
      }
    }
    tuned = std::move(entry);
  }
  return tuned;
}

std::string model_file(const std::string& path) {
  if (!std::filesystem::is_directory(path)) {
    return path;
  }
  if (const auto tuned = read_tuned(path)) {
    return (std::filesystem::path(path) / tuned->model_file).string();
  }
  const std::filesystem::path listing = std::filesystem::path(path) / "formats.txt";
  std::ifstream in(listing);
  std::string line;
  while (std::getline(in, line) && (line.empty() || line[0] == '#')) {  // its comment first
  }
  std::istringstream entry(line);
  std::string format;
  std::string file;
  if (!(entry >> format >> file)) {
    throw Error(path + ": a folder without a list of exports (" + listing.string() +
                "); give a model file (model.pt or model.pt2), or the folder make export wrote");
  }
  return (std::filesystem::path(path) / file).string();
}

Model::Model(const std::string& given, ModelOptions options) : impl_(std::make_shared<Impl>()) {
  Impl& impl = *impl_;
  const std::string path = model_file(given);
  impl.path = path;
  const std::filesystem::path file(path);
  impl.tuned = read_tuned(file.has_parent_path() ? file.parent_path().string() : ".");
  if (impl.tuned && impl.tuned->model_file != file.filename().string()) {
    impl.tuned.reset();  // the choice is another model file's
  }
  impl.note = options.on_note ? std::move(options.on_note) : [](const std::string&) {};
  impl.outputs_on_device = options.outputs_on_device;
  if (options.threads > 0) {
    at::set_num_threads(options.threads);
  }
  impl.format = detail::is_package(path) ? Format::aoti : Format::torchscript;
  try {
    if (impl.format == Format::aoti) {
      impl.load_package(options.optimization, options.precision, options.device);
    } else {
      impl.load_script(options.optimization, options.precision, options.emulate_bf16, options.device);
    }
  } catch (const c10::OutOfMemoryError& error) {
    throw Error(impl.out_of_memory("loading it", error));
  }
}

std::vector<at::Tensor> Model::run(const std::vector<at::Tensor>& inputs) const {
  c10::InferenceMode inference_mode;  // no autograd bookkeeping (thread-local: each call sets its own)
  const Impl& impl = *impl_;
  const bool gpu = !impl.device.is_cpu();
  std::optional<c10::DeviceGuard> on_device;  // the model's GPU is this thread's current one during the call
  try {
    std::vector<at::Tensor> moved;
    if (gpu) {
      on_device.emplace(impl.device);
      moved.reserve(inputs.size());
      for (const at::Tensor& input : inputs) {
        moved.push_back(input.to(impl.device));
      }
    }
    std::vector<at::Tensor> outputs = impl_->run(gpu ? moved : inputs);
    if (gpu && !impl.outputs_on_device) {
      for (at::Tensor& output : outputs) {
        output = output.cpu();
      }
    }
    return outputs;
  } catch (const Error&) {
    throw;
  } catch (const c10::OutOfMemoryError& error) {
    throw Error(impl.out_of_memory("running it on input " + kinds(inputs), error));
  } catch (const std::exception& error) {
    const std::string cause = detail::cause_of(error);
    // A model that makes a tensor of its own on the CPU (torch.zeros(3) without device=) cannot mix it with the GPU's.
    if (gpu && cause.find("on the same device") != std::string::npos) {
      throw Error(impl.path + ": the model failed on " + impl.device.str() + ": " + cause + "; the model makes a " +
                  "tensor on the CPU while it runs on the GPU: make it on its input's device (torch.zeros(..., " +
                  "device=x.device)), export again, or run the model on the CPU (--device cpu)");
    }
    const std::string wanted = kinds(impl.description.inputs);
    throw Error(impl.path + ": the model failed on input " + kinds(inputs) + ": " + cause +
                "; give inputs of the shape and dtype export.py used" +
                (wanted.empty() ? std::string(" (artifacts/input.pt)") : " (" + wanted + ")"));
  }
}

const std::string& Model::path() const { return impl_->path; }

c10::Device Model::device() const { return impl_->device; }

Format Model::format() const { return impl_->format; }

Optimization Model::optimization() const { return impl_->current()->optimization; }

Precision Model::precision() const { return impl_->current()->precision; }

const std::vector<InputSpec>& Model::inputs() const { return impl_->description.inputs; }

const std::vector<std::string>& Model::output_names() const { return impl_->description.output_names; }

int64_t Model::top_k() const { return impl_->description.top_k; }

const std::optional<ImageSettings>& Model::image_settings() const { return impl_->image_settings; }

const std::vector<std::string>& Model::class_names() const { return impl_->class_names; }

at::Tensor Model::image_input(const std::string& image_path) const {
  if (!impl_->image_settings) {
    throw Error(impl_->path + " records no image preprocessing: its input is not one image, or deploy.json says " +
                "\"preprocess\": null; set it to \"auto\" and run make export");
  }
  return preprocess(read_image(image_path), *impl_->image_settings);
}

std::vector<Prediction> Model::classify(const std::string& image_path, int64_t k) const {
  return classify(image_input(image_path), k);
}

std::vector<Prediction> Model::classify(const at::Tensor& input, int64_t k) const {
  const std::vector<at::Tensor> outputs = run({input});
  if (outputs.empty() || !is_scores(outputs.front())) {
    throw Error(impl_->path + ": the model's first output is not (batch, classes) scores; classifying images " +
                "needs a classifier");
  }
  return top_classes(outputs.front(), k);
}

std::vector<Prediction> Model::top_classes(const at::Tensor& scores, int64_t k) const {
  if (!is_scores(scores) || scores.size(0) == 0) {
    throw Error(impl_->path + ": an output of shape " + c10::str(scores.sizes()) + " is not (batch, classes) scores");
  }
  const at::Tensor probabilities = scores[0].to(at::kDouble).softmax(0);
  const auto [values, indices] = probabilities.topk(std::min(std::max<int64_t>(k, 1), probabilities.size(0)));
  std::vector<Prediction> predictions;
  for (int64_t i = 0; i < values.size(0); ++i) {
    const int64_t index = indices[i].item<int64_t>();
    const auto& names = impl_->class_names;
    predictions.push_back({index, index < static_cast<int64_t>(names.size()) ? names[static_cast<size_t>(index)] : "",
                           values[i].item<double>()});
  }
  return predictions;
}

std::vector<at::Tensor> random_inputs(const std::vector<InputSpec>& specs) {
  std::vector<at::Tensor> inputs;
  for (const InputSpec& spec : specs) {
    if (spec.shape.empty()) {
      throw Error("input " + spec.name + ": the model file records no shape for it (not exported by export.py); " +
                  "give the inputs (ts-infer --input FILE) or re-export with make export");
    }
    // at::_ops::X::call is what at::X calls; its header is a fraction of at::X's, which doubles a file's build time.
    const c10::SymIntArrayRef shape = c10::fromIntArrayRefSlow(spec.shape);
    if (spec.dtype == at::kBool) {
      inputs.push_back(at::_ops::rand::call(shape, at::kFloat, {}, {}, {}).gt(0.5));
    } else if (at::isFloatingType(spec.dtype)) {
      inputs.push_back(at::_ops::rand::call(shape, at::kFloat, {}, {}, {}).to(spec.dtype));
    } else {
      inputs.push_back(at::_ops::randint_low::call(0, 10, shape, spec.dtype, {}, {}, {}));
    }
  }
  return inputs;
}

}  // namespace torch_deploy
