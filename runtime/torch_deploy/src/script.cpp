// Internal: everything that needs TorchScript's headers (see script.h).

#include "script.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/codegen/onednn/interface.h>
#include <torch/csrc/jit/passes/remove_mutation.h>
#include <torch/csrc/jit/passes/subgraph_rewrite.h>
#include <torch/csrc/jit/passes/symbolic_shape_analysis.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/csrc/jit/runtime/graph_iterator.h>
#include <torch/csrc/jit/serialization/import.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/version.h>
#include <torch_deploy/error.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <string_view>
#include <unordered_set>
#include <utility>

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

// oneDNN Graph fuses only the operators its bridge maps (torch/csrc/jit/codegen/onednn/graph_helper.cpp); each one it
// does not map ends a fused partition. The rewrites below put mapped operators in place of unmapped ones that
// classifiers use often, so that more of the model runs fused.

// Activations as operators the bridge maps, so that each fuses into the convolution before it:
// - hardsigmoid(x) = min(max(x + 3, 0), 6) / 6, as ATen computes it, as add, hardtanh (oneDNN's clamp) and div; with
//   it, the product a squeeze-excitation block scales by it fuses too (mobilenet_v3);
// - silu(x) = x * sigmoid(x) as sigmoid and mul (efficientnet's activation, 49 times in efficientnet_b0): the bridge's
//   own decomposition of silu looks for aten::_convolution before it, and a frozen graph has aten::conv2d there.
// In-place variants (silu_, which torchvision's blocks use) are made functional first, where alias analysis allows.
void rewrite_activations(std::shared_ptr<torch::jit::Graph>& graph) {
  // Each pattern and its replacement, in TorchScript's IR (Python's bf16 reference applies the same ones).
  static constexpr std::pair<const char*, const char*> kRewrites[] = {
#include "rewrites.inc"
  };
  torch::jit::RemoveTensorMutation(graph);
  torch::jit::SubgraphRewriter rewriter;
  for (const auto& [pattern, replacement] : kRewrites) {
    rewriter.RegisterRewritePattern(pattern, replacement);
  }
  rewriter.runOnGraph(graph);
}

// A copy of `graph` whose global average pools (adaptive_avg_pool2d to 1 x 1, which the bridge does not map) are
// avg_pool2d with a kernel as large as the pool's input (which it maps), for inputs of the shapes `inputs` records:
// the pool's input sizes come from symbolic shape analysis. nullptr when the graph has no such pool, or the shapes are
// unknown. The copy is right only for inputs of those sizes (a batch of any size): Script::run checks them.
std::shared_ptr<torch::jit::Graph> with_fixed_pools(const std::shared_ptr<torch::jit::Graph>& graph,
                                                    const std::vector<InputSpec>& inputs) {
  using torch::jit::Graph;
  using torch::jit::Node;
  if (inputs.empty() || graph->inputs().size() != inputs.size() + 1) {  // + self
    return nullptr;
  }
  std::shared_ptr<Graph> typed = graph->copy();
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].shape.empty() || inputs[i].dtype == at::ScalarType::Undefined) {
      return nullptr;  // not recorded by export.py
    }
    typed->inputs()[i + 1]->setType(c10::TensorType::createContiguous(inputs[i].dtype, at::kCPU, inputs[i].shape));
  }
  try {
    torch::jit::PropagateShapesOnGraph(typed);
  } catch (const std::exception&) {
    return nullptr;  // an operator shape analysis cannot follow: the model runs with its own pools
  }
  std::shared_ptr<Graph> fixed = graph->copy();
  const c10::Symbol global_pool = c10::Symbol::fromQualString("aten::adaptive_avg_pool2d");
  bool changed = false;
  // The copies list the same nodes in the same order; only the graph's top level is looked at.
  const auto typed_nodes = typed->nodes();
  auto typed_node = typed_nodes.begin();
  for (auto it = fixed->nodes().begin(); it != fixed->nodes().end(); ++typed_node) {
    Node* node = *it++;  // before node may be destroyed
    if (node->kind() != global_pool) {
      continue;
    }
    const std::optional<c10::IValue> size = torch::jit::toIValue(node->input(1));
    const auto type = (*typed_node)->input(0)->type()->cast<c10::TensorType>();
    const auto sizes = type ? type->sizes().concrete_sizes() : std::nullopt;
    if (!size || !size->isIntList() || size->toIntVector() != std::vector<int64_t>{1, 1} || !sizes ||
        sizes->size() < 3) {
      continue;
    }
    const std::vector<int64_t> kernel(sizes->end() - 2, sizes->end());
    torch::jit::WithInsertPoint here(node);
    torch::jit::Value* pooled =
        fixed->insert(c10::Symbol::fromQualString("aten::avg_pool2d"),
                      {node->input(0), fixed->insertConstant(kernel), fixed->insertConstant(kernel),
                       fixed->insertConstant(std::vector<int64_t>{0, 0}), fixed->insertConstant(false),
                       fixed->insertConstant(true), fixed->insertConstant(c10::IValue())});
    pooled->setType(node->output()->type());
    node->output()->replaceAllUsesWith(pooled);
    node->destroy();
    changed = true;
  }
  return changed ? fixed : nullptr;
}

// Whether the environment leaves on what `variable` names of onednn mode's work beyond freezing (any value but 0):
// TORCH_DEPLOY_REWRITES=0 leaves the graph as freezing made it, TORCH_DEPLOY_CHANNELS_LAST=0 the inputs in their
// layout, to measure what each buys, or to rule it out when parity fails.
bool wanted(const char* variable) {
  const char* value = std::getenv(variable);
  return value == nullptr || std::string_view(value) != "0";
}

// Whether `inputs` have the shapes `specs` records, but for the first dimension (the batch).
bool same_shapes(const std::vector<at::Tensor>& inputs, const std::vector<InputSpec>& specs) {
  if (inputs.size() != specs.size()) {
    return false;
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    const at::IntArrayRef shape = inputs[i].sizes();
    const std::vector<int64_t>& wanted = specs[i].shape;
    if (shape.size() != wanted.size() || !std::equal(shape.begin() + 1, shape.end(), wanted.begin() + 1)) {
      return false;
    }
  }
  return true;
}

}  // namespace

struct Script::Impl {
  torch::jit::Module module;
  std::string path;
  // A prepared model's forward() with global pools fixed for inputs of the recorded shapes (with_fixed_pools), run
  // instead of forward() on such inputs; nullptr when there is none.
  std::shared_ptr<torch::jit::GraphFunction> fixed_pools;
  std::vector<InputSpec> fixed_for;
  // Whether run() gives forward() its 4-D floating-point inputs (images) in the channels-last layout. A oneDNN Graph
  // partition's inputs and outputs have the strides TorchScript's profiling run saw, while its kernels work
  // channels-last: from NCHW images each partition of a model cut into many (squeeze-excitation blocks) reorders its
  // input in and its output back, 34 reorders a run in efficientnet_b0. From channels-last ones the tensors between
  // partitions stay channels-last, as aten's convolutions keep the layout of their input.
  bool channels_last = false;
  // in_bfloat16's module: run() takes and gives float32, converting at the boundary (in the copy that changes an
  // image's layout, when it does).
  bool bfloat16 = false;
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
  script.impl_->bfloat16 = true;
  for (const at::Tensor& parameter : script.impl_->module.parameters()) {
    convert(parameter);
  }
  for (const at::Tensor& buffer : script.impl_->module.buffers()) {
    convert(buffer);
  }
  return script;
}

Script Script::prepared(Optimization& mode, const std::function<void(const std::string&)>& note,
                        const std::vector<InputSpec>& inputs) const {
  auto failed = [&](const std::string& what, const std::exception& error, const char* next) {
    note(what + " failed (" + cause_of(error) + "); using --optimize " + next);
  };
  // A script of `module`, which this one's was prepared into: it runs in the same precision.
  const auto derived = [this](torch::jit::Module module) {
    auto impl = std::make_shared<Impl>(Impl{std::move(module), impl_->path});
    impl->bfloat16 = impl_->bfloat16;
    return impl;
  };
  Script script;
  if (mode == Optimization::onednn) {
    try {
      torch::jit::RegisterLlgaFuseGraph::setEnabled(true);
      script.impl_ = derived(torch::jit::freeze(impl_->module));
      script.impl_->channels_last = wanted("TORCH_DEPLOY_CHANNELS_LAST");
      std::shared_ptr<torch::jit::Graph> graph = script.impl_->module.get_method("forward").graph();
      if (!wanted("TORCH_DEPLOY_REWRITES")) {
        return script;
      }
      rewrite_activations(graph);
      if (auto fixed = with_fixed_pools(graph, inputs)) {
        // A second graph over the same module: its constants (the frozen weights) are shared, not copied.
        script.impl_->fixed_pools = std::make_shared<torch::jit::GraphFunction>("forward_fixed_pools", fixed, nullptr);
        script.impl_->fixed_for = inputs;
      }
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
      script.impl_ = derived(torch::jit::optimize_for_inference(copy));
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
  std::vector<c10::IValue> arguments;
  arguments.reserve(inputs.size() + 1);
  const bool fixed_pools = impl_->fixed_pools && same_shapes(inputs, impl_->fixed_for);
  if (fixed_pools) {
    arguments.emplace_back(module._ivalue());  // self: forward() adds it itself
  }
  for (const at::Tensor& input : inputs) {  // one copy at most: to() returns the input itself when nothing changes
    const bool to_bf16 = impl_->bfloat16 && input.scalar_type() == at::kFloat;
    const bool image = impl_->channels_last && input.dim() == 4 && input.is_floating_point();
    arguments.emplace_back(input.to(to_bf16 ? at::kBFloat16 : input.scalar_type(), /*non_blocking=*/false,
                                    /*copy=*/false,
                                    image ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Preserve));
  }
  const c10::IValue result =
      fixed_pools ? (*impl_->fixed_pools)(std::move(arguments)) : module.forward(std::move(arguments));
  std::vector<at::Tensor> outputs;
  flatten(result, impl_->path, outputs);
  // An image-shaped output (segmentation) in the layout callers expect; a bf16 one in float32.
  const at::MemoryFormat layout = impl_->channels_last ? at::MemoryFormat::Contiguous : at::MemoryFormat::Preserve;
  for (at::Tensor& output : outputs) {
    const bool to_float = impl_->bfloat16 && output.scalar_type() == at::kBFloat16;
    output = output.to(to_float ? at::kFloat : output.scalar_type(), /*non_blocking=*/false, /*copy=*/false, layout);
  }
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

std::pair<int64_t, int64_t> fusion_of_last_run() {
  std::shared_ptr<torch::jit::Graph> graph = torch::jit::lastExecutedOptimizedGraph();
  if (!graph) {
    return {-1, -1};
  }
  int64_t partitions = 0;
  int64_t unfused = 0;
  const auto is_tensor = [](const torch::jit::Value* value) {
    return value->type()->isSubtypeOf(*c10::TensorType::get());
  };
  // The values computed from the model's inputs: operators on other tensors (the scalar constants the bridge turns
  // into tensors) and those giving numbers and lists (aten::size) cost next to nothing. The walk is in graph order, so
  // a node's inputs are seen before it. A partition's operators are in its subgraph, an attribute the walk does not
  // enter; the fallback of a partition whose guard fails is a function called from it, not a block, so it is not
  // counted either.
  const c10::Symbol partition = c10::Symbol::fromQualString("prim::oneDNNFusionGroup");
  std::unordered_set<const torch::jit::Value*> from_inputs(graph->inputs().begin(), graph->inputs().end());
  for (torch::jit::DepthFirstGraphNodeIterator it(graph); const torch::jit::Node* node = it.next();) {
    const auto& inputs = node->inputs();
    if (std::none_of(inputs.begin(), inputs.end(), [&](const torch::jit::Value* v) { return from_inputs.count(v); })) {
      continue;
    }
    from_inputs.insert(node->outputs().begin(), node->outputs().end());
    if (node->kind() == partition) {
      ++partitions;
    } else if (node->kind().is_aten() && node->outputs().size() == 1 && is_tensor(node->output()) &&
               std::any_of(inputs.begin(), inputs.end(),
                           [&](const torch::jit::Value* v) { return from_inputs.count(v) && is_tensor(v); })) {
      ++unfused;
    }
  }
  return {partitions, unfused};
}

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
