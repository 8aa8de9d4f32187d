// Internal: everything that needs TorchScript's headers (see script.h).

#include "script.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/codegen/onednn/interface.h>
#include <torch/csrc/jit/serialization/import.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/version.h>
#include <torch_deploy/error.h>

#include <fstream>
#include <string_view>

#include "detail.h"
#include "operators.h"

namespace torch_deploy::detail {

namespace {

// Every tensor of a model's output, in order: a tensor, or a tuple/list/dict of them (depth first).
void flatten(const c10::IValue& value, const std::string& path, std::vector<at::Tensor>& out) {
  if (value.isTensor()) {
    out.push_back(value.toTensor());
  } else if (value.isTuple()) {
    for (const auto& element : value.toTupleRef().elements()) {
      flatten(element, path, out);
    }
  } else if (value.isList()) {
    for (const c10::IValue& element : value.toListRef()) {
      flatten(element, path, out);
    }
  } else if (value.isNone()) {
    // an unused optional output (a scripted googlenet's aux logits): nothing to return
  } else if (value.isGenericDict()) {
    for (const auto& item : value.toGenericDict()) {
      flatten(item.value(), path, out);
    }
  } else {
    throw Error(path + ": the model returned a " + value.tagKind() +
                "; torch_deploy handles tensors and tuples/lists/dicts of tensors");
  }
}

constexpr std::string_view kUnknownOperator = "Unknown builtin op: ";

// The operator a load failed on ("torchvision::nms"), or "" for another failure.
std::string unknown_operator(const std::string& cause) {
  return cause.rfind(kUnknownOperator, 0) == 0 ? cause.substr(kUnknownOperator.size()) : "";
}

// The library an operator belongs to: "torchvision" for torchvision::nms.
std::string library_of(const std::string& op) { return op.substr(0, op.find("::")); }

// Why a TorchScript file did not load, and the fix that cause calls for: an operator no library in this program
// registers (a custom op) is not cured by exporting again. `torchvision`: the version of the torchvision whose
// operators are registered ("" for none).
std::string load_failure(const std::string& path, const char* what, const std::string& cause,
                         const std::string& torchvision) {
  const std::string op = unknown_operator(cause);
  const std::string library = library_of(op);
  if (library == "torchvision" && !torchvision.empty()) {
    return path + ": the " + what + " calls the operator " + op + ", which torchvision " + torchvision +
           " (the one this program loads) does not register; export and build with the same torchvision";
  }
  if (!library.empty()) {
    const std::string where =
        library == "torchvision"
            ? "install torchvision for the Python that exports the model and build again (the build then loads "
              "torchvision's operators when a model needs them): pip install torchvision, then make build"
            : "add the library that registers the " + library +
                  " operators (its TORCH_LIBRARY), linked with -Wl,--no-as-needed, or loaded with dlopen before the "
                  "model";
    return path + ": the " + what + " calls the operator " + op + ", which nothing in this program registers (" +
           cause + "); " + where;
  }
  return path + ": not a TorchScript " + what + " that this libtorch (" TORCH_VERSION ") can load: " + cause +
         "; re-export it with make export (a matching torch version)";
}

}  // namespace

struct Script::Impl {
  torch::jit::Module module;
  std::string path;
};

Script Script::load(const std::string& path, const char* what, std::map<std::string, std::string>* extras,
                    std::optional<c10::Device> device) {
  if (!std::ifstream(path, std::ios::binary)) {
    throw Error(path + ": cannot open the " + what + " (missing or unreadable); run make export");
  }
  torch::jit::ExtraFilesMap files;
  if (extras) {
    files.insert(extras->begin(), extras->end());
  }
  Script script;
  // A model calling torchvision's operators fails on the first one; once they are registered it loads (and a model
  // that needs none never loads their library).
  for (std::string torchvision;;) {
    try {
      script.impl_ = std::make_shared<Impl>(Impl{torch::jit::load(path, device, files), path});
      break;
    } catch (const std::exception& error) {
      const std::string cause = cause_of(error, CauseLine::first);
      const bool register_torchvision = torchvision.empty() && library_of(unknown_operator(cause)) == "torchvision";
      if (register_torchvision) {
        torchvision = torchvision_operators();
      }
      if (!register_torchvision || torchvision.empty()) {
        throw Error(load_failure(path, what, cause, torchvision));
      }
    }
  }
  if (extras) {
    for (auto& [name, contents] : *extras) {
      contents = files.at(name);
    }
  }
  return script;
}

std::map<std::string, std::string> Script::extras(const std::string& path, const std::vector<std::string>& names) {
  std::map<std::string, std::string> found;
  try {
    caffe2::serialize::PyTorchStreamReader archive(path);
    for (const std::string& name : names) {
      const std::string record = "extra/" + name;
      if (archive.hasRecord(record)) {
        const auto [data, size] = archive.getRecord(record);
        found[name] = std::string(static_cast<const char*>(data.get()), size);
      }
    }
  } catch (const std::exception&) {
    found.clear();  // not a TorchScript file (a zip archive of one): load() says what it is
  }
  return found;
}

void Script::eval() { impl_->module.eval(); }

Script Script::in_bfloat16() const {
  Script script;
  script.impl_ = std::make_shared<Impl>(Impl{impl_->module.clone(), impl_->path});
  // Module::to(dtype) would convert integer buffers too (batch norm's counter): convert the floating ones only.
  const auto convert = [](const at::Tensor& tensor) {
    if (tensor.is_floating_point()) {
      tensor.set_data(tensor.to(at::kBFloat16));
    }
  };
  for (const at::Tensor& parameter : script.impl_->module.parameters()) {
    convert(parameter);
  }
  for (const at::Tensor& buffer : script.impl_->module.buffers()) {
    convert(buffer);
  }
  return script;
}

Script Script::prepared(Optimization& mode, const std::function<void(const std::string&)>& note) const {
  auto failed = [&](const std::string& what, const std::exception& error, const char* next) {
    note(what + " failed (" + cause_of(error) + "); using --optimize " + next);
  };
  Script script;
  if (mode == Optimization::onednn) {
    try {
      torch::jit::RegisterLlgaFuseGraph::setEnabled(true);
      script.impl_ = std::make_shared<Impl>(Impl{torch::jit::freeze(impl_->module), impl_->path});
      return script;
    } catch (const std::exception& error) {
      torch::jit::RegisterLlgaFuseGraph::setEnabled(false);
      failed("freezing for oneDNN fusion", error, "ofi");
      mode = Optimization::ofi;
    }
  }
  if (mode == Optimization::ofi) {
    try {
      torch::jit::Module copy = impl_->module.clone();
      script.impl_ = std::make_shared<Impl>(Impl{torch::jit::optimize_for_inference(copy), impl_->path});
      return script;
    } catch (const std::exception& error) {
      failed("optimize_for_inference", error, "none");
    }
  }
  mode = Optimization::none;
  return *this;
}

std::vector<at::Tensor> Script::run(const std::vector<at::Tensor>& inputs) const {
  torch::jit::Module module = impl_->module;  // a handle: forward() is not const, the module it runs is shared
  const c10::IValue result = module.forward(std::vector<c10::IValue>(inputs.begin(), inputs.end()));
  std::vector<at::Tensor> outputs;
  flatten(result, impl_->path, outputs);
  return outputs;
}

std::vector<std::string> Script::argument_names() const {
  std::vector<std::string> names;
  const auto& arguments = impl_->module.get_method("forward").function().getSchema().arguments();
  for (size_t i = 1; i < arguments.size(); ++i) {  // 0 is self
    names.push_back(arguments[i].name());
  }
  return names;
}

std::vector<std::pair<std::string, at::Tensor>> Script::buffers() const {
  std::vector<std::pair<std::string, at::Tensor>> buffers;
  for (const auto& buffer : impl_->module.named_buffers(/*recurse=*/false)) {
    buffers.emplace_back(buffer.name, buffer.value);
  }
  return buffers;
}

std::map<std::string, double> Script::numbers() const {
  std::map<std::string, double> numbers;
  const c10::ClassTypePtr type = impl_->module.type();
  for (size_t slot = 0; slot < type->numAttributes(); ++slot) {
    const c10::IValue value = impl_->module._ivalue()->getSlot(slot);
    if (value.isDouble()) {
      numbers[type->getAttributeName(slot)] = value.toDouble();
    }
  }
  return numbers;
}

void disable_fusion() { torch::jit::RegisterLlgaFuseGraph::setEnabled(false); }

void save_script_tensors(const std::string& path, const std::vector<std::string>& names,
                         const std::vector<at::Tensor>& tensors, const std::map<std::string, double>& numbers) {
  torch::jit::Module module("__torch__.torch_deploy.TensorFile");
  module.register_attribute("training", c10::BoolType::get(), false);  // what Python's torch.jit.load expects
  for (size_t i = 0; i < tensors.size(); ++i) {
    module.register_buffer(names[i], tensors[i].contiguous());
  }
  for (const auto& [name, value] : numbers) {
    module.register_attribute(name, c10::FloatType::get(), value);
  }
  try {
    module.save(path);
  } catch (const std::exception& error) {
    throw Error(path + ": cannot write the tensor file there (" + cause_of(error) + ")");
  }
}

std::vector<char> pickle(const std::vector<at::Tensor>& tensors) {
  if (tensors.size() == 1) {
    return torch::jit::pickle_save(tensors.front());
  }
  return torch::jit::pickle_save(c10::ivalue::Tuple::create(std::vector<c10::IValue>(tensors.begin(), tensors.end())));
}

}  // namespace torch_deploy::detail
