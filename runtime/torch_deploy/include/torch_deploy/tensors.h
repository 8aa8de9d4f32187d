// Tensor files: the reference inputs and expected outputs that export.py writes, read and written with libtorch alone.
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <vector>

namespace torch_deploy {

// A tensor file: a TorchScript module whose buffers are the tensors, in order, under their names, and whose float
// attributes are numbers (expected.pt records atol, rtol and top_k). Python reads one with torch.jit.load.
struct TensorFile {
  std::vector<std::string> names;
  std::vector<at::Tensor> tensors;
  std::map<std::string, double> numbers;

  // The number recorded under `name`, or `fallback` when there is none.
  double number(const std::string& name, double fallback) const;
};

// Reads a tensor file; throws Error naming the file when it is missing or not a tensor file.
TensorFile load_tensors(const std::string& path);

// Writes a tensor file (names default to "tensor_0", "tensor_1", ...); throws Error when it cannot be written.
void save_tensors(const std::string& path, const std::vector<at::Tensor>& tensors,
                  const std::vector<std::string>& names = {}, const std::map<std::string, double>& numbers = {});

// Writes tensors as torch.save would, for torch.load in Python: one tensor, or a tuple of several.
void save_for_torch_load(const std::string& path, const std::vector<at::Tensor>& tensors);

}  // namespace torch_deploy
