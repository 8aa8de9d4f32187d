// ts-infer: the TorchScript tutorial's C++ program, over the torch_deploy runtime library (find_package(TorchDeploy)).
// This file is yours: change it, or start your own program from it.
//
//   ts-infer MODEL          the tutorial's lines: load the model, run it on a random input, print the top-5 classes
//   ts-infer MODEL OPTIONS  the runtime's full runner (ts-infer --help): parity with Python (make verify), images
//                           (make predict), timing (make bench), precision and optimisation modes
//
// MODEL: model.pt, model.pt2, or a folder of exports (artifacts/: the first format it lists). The inputs' names,
// shapes and dtypes and the top-k are read from the model file, where export.py recorded them.

#include <c10/util/Exception.h>
#include <torch_deploy/torch_deploy.h>

#include <iostream>
#include <string>
#include <vector>

int main(int argc, const char* argv[]) {
  if (argc != 2 || argv[1][0] == '-') {
    return torch_deploy::run_command_line(argc, argv);
  }

  std::cout << "Loading model...\n";
  try {
    // Loads model.pt (TorchScript) or model.pt2 (AOTInductor), then optimises it for inference: freeze, then oneDNN
    // Graph fusion, which the tutorial's torch::jit::load alone leaves out.
    torch_deploy::ModelOptions options;
    options.on_note = [](const std::string& note) { std::cerr << "ts-infer: note: " << note << "\n"; };
    const torch_deploy::Model model(argv[1], options);
    std::cout << "Model loaded successfully\n";

    // The tutorial's input "image", torch::rand({1, 3, 224, 224}): random inputs of the kinds the model records.
    const std::vector<at::Tensor> outputs = model.run(torch_deploy::random_inputs(model.inputs()));
    torch_deploy::print_outputs(std::cout, outputs, model.output_names(), model.top_k());
  } catch (const c10::Error& e) {  // from a tensor operation (the library's own errors are torch_deploy::Error)
    std::cerr << "ts-infer: error: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "ts-infer: error: " << e.what() << "\n";
    return 1;
  }

  std::cout << "\nDONE\n";
  return 0;
}
