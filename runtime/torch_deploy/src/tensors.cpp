// Tensor files: TorchScript modules whose buffers are the tensors, so that libtorch alone reads what Python wrote.

#include <torch_deploy/error.h>
#include <torch_deploy/tensors.h>

#include <fstream>

#include "script.h"

namespace torch_deploy {

double TensorFile::number(const std::string& name, double fallback) const {
  const auto found = numbers.find(name);
  return found == numbers.end() ? fallback : found->second;
}

TensorFile load_tensors(const std::string& path) {
  const detail::Script script = detail::Script::load(path, "tensor file");
  TensorFile file;
  for (auto& [name, tensor] : script.buffers()) {
    file.names.push_back(name);
    file.tensors.push_back(tensor);
  }
  file.numbers = script.numbers();
  return file;
}

void save_tensors(const std::string& path, const std::vector<at::Tensor>& tensors,
                  const std::vector<std::string>& names, const std::map<std::string, double>& numbers) {
  if (!names.empty() && names.size() != tensors.size()) {
    throw Error(path + ": " + std::to_string(tensors.size()) + " tensors but " + std::to_string(names.size()) +
                " names; give one name per tensor");
  }
  std::vector<std::string> named = names;
  for (size_t i = named.size(); i < tensors.size(); ++i) {
    named.push_back("tensor_" + std::to_string(i));
  }
  detail::save_script_tensors(path, named, tensors, numbers);
}

void save_for_torch_load(const std::string& path, const std::vector<at::Tensor>& tensors) {
  const std::vector<char> bytes = detail::pickle(tensors);
  std::ofstream out(path, std::ios::binary);
  if (!out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()))) {
    throw Error(path + ": cannot write the tensors there");
  }
}

}  // namespace torch_deploy
