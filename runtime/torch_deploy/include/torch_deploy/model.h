// torch_deploy::Model: an exported model, loaded, optimised for inference and ready to run.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <torch_deploy/image.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace torch_deploy {

// The formats a model file can have; Model tells them apart by the file's contents.
enum class Format {
  torchscript,  // model.pt: a TorchScript module (torch.jit.script or trace), run by libtorch's interpreter
  aoti,         // model.pt2: an AOTInductor package, compiled ahead of time from torch.export for one kind of CPU
};

// "torchscript", "aoti".
const char* to_string(Format format);

// How a TorchScript model is prepared after loading (ts-infer's --optimize). A model that cannot be prepared in the
// mode asked for falls back to the next one (onednn -> ofi -> none), and one that fails when run prepared is run as
// loaded; each time, ModelOptions::on_note hears why. An AOTInductor package is compiled already: it runs as it is
// (none), and asking it for another mode brings a note saying so.
enum class Optimization {
  onednn,  // freeze (weights become constants, conv + batch norm fold), rewrite operators oneDNN Graph does not fuse
           // into ones it does (hardsigmoid, silu, global average pools; in fp32), then oneDNN Graph fusion: the
           // fastest
  ofi,     // freeze, then optimize_for_inference (oneDNN convolutions with prepacked weights)
  none,    // the model as loaded
};

// "onednn", "ofi", "none"; and back (std::nullopt for any other text).
const char* to_string(Optimization optimization);
std::optional<Optimization> parse_optimization(const std::string& text);

// The number format a model computes in (ts-infer's --precision). Callers give and get float32 tensors either way.
enum class Precision {
  fp32,  // float32: the model as exported
  bf16,  // bfloat16 weights and activations (float32 accumulation), on a CPU that has native bf16 (AVX512-BF16 or
         // AMX on x86-64, BF16 on Arm); about 3 significant digits, so outputs drift from fp32's (see make verify)
  int8,  // an AOTInductor package quantized to int8 when it was exported (the aoti_int8 format): what such a package
         // runs in, never a choice (parse_precision() does not take it)
};

// "fp32", "bf16", "int8"; and back for the precisions a caller can choose, fp32 and bf16 (std::nullopt otherwise).
const char* to_string(Precision precision);
std::optional<Precision> parse_precision(const std::string& text);

// Whether this CPU computes bf16 natively. Without it, oneDNN emulates bf16 in fp32 arithmetic, which is slower than
// fp32 itself: a Model asked for bf16 then runs in fp32 (unless ModelOptions::emulate_bf16).
bool native_bf16();

// Writes a note to stderr, prefixed "torch_deploy: note: " (the default of ModelOptions::on_note).
void print_note(const std::string& note);

// Whether this library was built to run models on NVIDIA GPUs (TORCH_DEPLOY_CUDA: linked with libtorch_cuda).
bool cuda_built();

// The device `text` names: "cpu", "cuda" (the first GPU) or "cuda:N"; std::nullopt for any other text.
std::optional<c10::Device> parse_device(const std::string& text);

// The device `text` names (parse_device()), once this library and this machine can run models there. Otherwise
// throws Error, one line naming what is wrong or missing: the text, a library built without CUDA, the NVIDIA driver
// (libcuda.so.1), a GPU, that GPU (an index past the last). Asks the driver: no CUDA header or toolkit needed.
c10::Device usable_device(const std::string& text);

// make tune's choice for the model files of a folder of exports, `tuned.txt` there: a comment line, then
// "<model file> optimize=<mode> precision=<precision>" (a package's line has neither). The fastest configuration
// that reproduced Python's outputs on the machine make tune ran on; a Model loading that file on the CPU takes it
// for the options left unset.
struct Tuned {
  std::string model_file;
  std::optional<Optimization> optimization;
  std::optional<Precision> precision;
};

// The tuned.txt of `folder`; std::nullopt when it has none. Throws Error on a malformed file (naming it and the fix).
std::optional<Tuned> read_tuned(const std::string& folder);

struct ModelOptions {
  // Unset: make tune's choice for the model file (read_tuned()), else the format's best (onednn for TorchScript;
  // none, i.e. as compiled, for an AOTInductor package).
  std::optional<Optimization> optimization;
  // Unset: make tune's choice for the model file, else the precision the project recorded in the model file at export
  // (fp32 when it records none). bf16 converts a TorchScript model's floating-point weights after loading, and float32
  // inputs on each run; bf16 outputs come back as float32. On a CPU without native bf16 the model runs in fp32 and
  // on_note hears so; an AOTInductor package runs in the precision it was compiled in (fp32, or int8 for a
  // quantized one), also with a note.
  std::optional<Precision> precision;
  // Run bf16 even without native bf16 (emulated, slower than fp32): to check a bf16 model's numbers on a machine that
  // will not serve it (make verify does).
  bool emulate_bf16 = false;
  // The device to run on: "cpu", "cuda" (the first GPU) or "cuda:N". Unset: the one the project recorded in the
  // model file at export (deploy.json's "device"; cpu when it records none). The constructor checks it before loading
  // (usable_device()). On a GPU a TorchScript model is loaded onto it and prepared with optimize_for_inference
  // (oneDNN Graph fusion is for the CPU: asked for, it brings a note); an AOTInductor package runs on the kind of
  // device it was compiled for, any GPU of that kind (cuda:N). run() takes inputs on any device.
  std::optional<std::string> device;
  // Leave run()'s outputs on the model's device. By default they come back on the CPU, where a caller can read them.
  bool outputs_on_device = false;
  // Intra-op threads. libtorch has one pool per process, so this sets it for every Model (at::set_num_threads);
  // 0 leaves libtorch's choice (the number of cores).
  int threads = 0;
  // Receives one line when the model did not survive an optimisation and runs in a simpler mode (see
  // optimization()), or runs in another precision than asked (see precision()); nullptr silences the notes.
  std::function<void(const std::string&)> on_note = print_note;
};

// One input of the model: its name, shape (batch first) and dtype, as export.py recorded them in the model file. A
// model file written elsewhere records none: the names then come from forward()'s signature, and the shape is empty
// and the dtype Undefined.
struct InputSpec {
  std::string name;
  std::vector<int64_t> shape;
  at::ScalarType dtype = at::ScalarType::Undefined;
};

// One class of a classifier's answer: its index in the scores, its name (empty when the model file records no class
// names) and its softmax probability.
struct Prediction {
  int64_t index = 0;
  std::string label;
  double probability = 0.0;
};

// The model file `path` names: `path` itself, or for a folder of exports the model file make tune chose (its
// tuned.txt), else the first model file of its formats.txt (export.py's list of what it exported: a comment line, then
// "<format> <model file> <reference outputs>..." lines).
std::string model_file(const std::string& path);

// A deployed model: a TorchScript file or an AOTInductor package (see Format), both as export.py writes them. Loading
// reads the file, puts the model on its device in eval mode and prepares it (see Optimization). Every failure throws
// torch_deploy::Error naming the file and the cause; running out of memory on a GPU names the model's size and the
// GPU's free memory. When the last copy of a Model on a GPU goes, the GPU memory it held goes back to the driver (the
// blocks libtorch's caching allocator keeps unused are released), not kept for the rest of the process.
//
// Thread safety: one Model may be used from several threads at once. run() and classify() are const and may be
// called concurrently: each call runs the model on its own inputs (TorchScript's interpreter supports concurrent
// calls of one module; an AOTInductor package is loaded with one model instance per core) under its own inference
// mode; calls do not wait for each other (beyond a package's instances), and together they share libtorch's
// intra-op thread pool. Copies of a Model share the loaded model. On a GPU, calls run on the device's current stream
// and take turns there.
class Model {
 public:
  // `path`: a model file, or a folder of exports (artifacts/, a bundle's share/<project>/), which stands for the
  // first model file its formats.txt lists (deploy.json's first format; see model_file()).
  explicit Model(const std::string& path, ModelOptions options = {});

  // Runs the model on `inputs` (in forward()'s order, as inputs() describes them) under inference mode, on the
  // model's device (inputs elsewhere are copied there; outputs come back on the CPU unless
  // ModelOptions::outputs_on_device). Returns every tensor of the model's output in the documented order, which is
  // also output_names()'s: a tensor; the elements of a tuple or list, in order; the values of a dict, in insertion
  // order; nested ones depth first; None (an unused optional output) skipped.
  std::vector<at::Tensor> run(const std::vector<at::Tensor>& inputs) const;

  // The file this model was loaded from, and its format.
  const std::string& path() const;
  Format format() const;
  // The device it runs on (see ModelOptions::device).
  c10::Device device() const;
  // The optimisation in effect (after any fallback).
  Optimization optimization() const;
  // The precision in effect (after any fallback).
  Precision precision() const;
  // The inputs recorded in the model file (see InputSpec).
  const std::vector<InputSpec>& inputs() const;
  // The names of run()'s outputs as export.py recorded them ("output"; "output_0", "output_1" for a tuple; a dict's
  // keys): the names of the parity line. Empty when the model file records none.
  const std::vector<std::string>& output_names() const;
  // The number of classes to compare and print for a classifier, as the project recorded it (5 when it did not).
  int64_t top_k() const;

  // The image preprocessing recorded in the model file, when its only input is an image.
  const std::optional<ImageSettings>& image_settings() const;
  // The class names recorded in the model file, in score order (empty when there are none).
  const std::vector<std::string>& class_names() const;
  // The model's input for an image file: decoded (JPEG and PNG; needs libjpeg and libpng, see images_supported())
  // and preprocessed with image_settings().
  at::Tensor image_input(const std::string& image_path) const;
  // The k most probable classes of an image file, most probable first: image_input(), run(), softmax of the first
  // output's first row.
  std::vector<Prediction> classify(const std::string& image_path, int64_t k) const;
  // The same for an input already made by image_input().
  std::vector<Prediction> classify(const at::Tensor& input, int64_t k) const;
  // The k most probable classes of a classifier's first output `scores` (batch, classes), first row, with their names;
  // what classify() returns from run()'s first output.
  std::vector<Prediction> top_classes(const at::Tensor& scores, int64_t k) const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// Random inputs of the given kinds, as export.py makes its reference inputs: floats uniform in [0, 1), integers in
// [0, 10), booleans fair coin flips. Throws Error when a spec has no shape (a model file that records no inputs).
std::vector<at::Tensor> random_inputs(const std::vector<InputSpec>& specs);

}  // namespace torch_deploy
