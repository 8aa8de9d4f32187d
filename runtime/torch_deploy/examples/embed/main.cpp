// embed: load the deployed model, run it, and compare with Python's reference output when given one.
//
//   embed MODEL                     random inputs of the recorded kinds; prints each output's name and shape
//   embed MODEL INPUT EXPECTED      the reference input and output export.py wrote: prints the parity line

#include <torch_deploy/torch_deploy.h>

#include <iostream>

int main(int argc, char* argv[]) {
  if (argc != 2 && argc != 4) {
    std::cerr << "usage: embed MODEL [INPUT EXPECTED]\n";
    return 2;
  }
  try {
    const torch_deploy::Model model(argv[1]);
    const std::vector<at::Tensor> inputs =
        argc == 4 ? torch_deploy::load_tensors(argv[2]).tensors : torch_deploy::random_inputs(model.inputs());
    const std::vector<at::Tensor> outputs = model.run(inputs);
    for (size_t i = 0; i < outputs.size(); ++i) {
      const std::string name = i < model.output_names().size() ? model.output_names()[i] : "output";
      std::cout << name << " " << outputs[i].sizes() << "\n";
    }
    if (argc == 4) {
      const torch_deploy::TensorFile expected = torch_deploy::load_tensors(argv[3]);
      const torch_deploy::Report report = torch_deploy::compare(
          outputs, expected.tensors, expected.number("atol", 1e-4), expected.number("rtol", 1e-4), model.top_k());
      std::cout << "parity: " << report.describe(expected.names) << "\n";
      return report.pass ? 0 : 1;
    }
    return 0;
  } catch (const torch_deploy::Error& error) {
    std::cerr << "embed: " << error.what() << "\n";
    return 1;
  }
}
