// Internal: TorchScript behind a narrow interface. TorchScript's headers (and IValue's) are by far the slowest part of
// the build, about 15 s of parsing for each file that includes them, so script.cpp is the only file that does: this
// header speaks in tensors.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <torch_deploy/model.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace torch_deploy::detail {

// A TorchScript module: a model, or a tensor file. A handle: copies share the module, and run() may be called from
// several threads at once.
class Script {
 public:
  // torch::jit::load onto `device` (the CPU by default), with errors that name the file, the cause and the fix; `what`
  // says what the file should be ("model", "tensor file"). Each key of `extras` names an extra file to read; its value
  // is filled in when the file has it.
  static Script load(const std::string& path, const char* what, std::map<std::string, std::string>* extras = nullptr,
                     std::optional<c10::Device> device = std::nullopt);
  // The extra files `names` of a TorchScript file, read without loading the model (kilobytes, not its weights): those
  // it has. Empty when the file is not a TorchScript file: load() then says what it is.
  static std::map<std::string, std::string> extras(const std::string& path, const std::vector<std::string>& names);

  // Dropout and batch norm in inference behaviour.
  void eval();
  // A copy whose floating-point parameters and buffers are bfloat16 (integer buffers stay as they are, as Python's
  // Module.to(torch.bfloat16) leaves them). Its run() converts float32 inputs to bf16 and bf16 outputs back to float32
  // (inputs and outputs of other dtypes, float16 or float64 ones included, are the model's choice and stay as they
  // are).
  Script in_bfloat16() const;
  // A copy prepared for inference in `mode`: a module that cannot be prepared that way (e.g. one that mutates its
  // attributes cannot be frozen) falls back to the next mode (onednn -> ofi -> none), and `note` hears why. `mode`
  // becomes the optimisation in effect. For onednn, operators that oneDNN Graph does not fuse are rewritten as ones it
  // does, the global average pools only when `inputs` are given, and for inputs of the shapes they record: run() then
  // checks; and run() gives the model its images (4-D floating-point inputs) channels-last.
  Script prepared(Optimization& mode, const std::function<void(const std::string&)>& note,
                  const std::vector<InputSpec>& inputs = {}) const;
  // forward() on `inputs`, and every tensor of its result in the order Model::run() documents. A result that is not
  // made of tensors throws Error naming the file.
  std::vector<at::Tensor> run(const std::vector<at::Tensor>& inputs) const;
  // The names of forward()'s arguments, without self.
  std::vector<std::string> argument_names() const;
  // A tensor file's contents: its buffers in order, and its float attributes.
  std::vector<std::pair<std::string, at::Tensor>> buffers() const;
  std::map<std::string, double> numbers() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// Switches oneDNN Graph fusion off in this process (a model failed with it).
void disable_fusion();

// In the graph that this thread's last TorchScript run executed: its oneDNN Graph partitions, and the operators on
// tensors computed from the inputs outside them (-1, -1 when it ran none).
std::pair<int64_t, int64_t> fusion_of_last_run();

// Writes a tensor file: a module holding `tensors` as buffers under `names`, and `numbers` as float attributes.
void save_script_tensors(const std::string& path, const std::vector<std::string>& names,
                         const std::vector<at::Tensor>& tensors, const std::map<std::string, double>& numbers);

// torch.save's format of one tensor, or of a tuple of several, for torch.load in Python.
std::vector<char> pickle(const std::vector<at::Tensor>& tensors);

}  // namespace torch_deploy::detail
