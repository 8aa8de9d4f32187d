// torch_deploy: run the exported model in a C++ program. This header brings the whole public API:
//
//   #include <torch_deploy/torch_deploy.h>
//
//   torch_deploy::Model model("artifacts/model.pt");                 // load, eval, optimise
//   std::vector<at::Tensor> outputs = model.run({input});            // inference
//   auto top = model.classify("photo.jpg", 5);                       // JPEG/PNG (libjpeg, libpng)
//
//   auto reference = torch_deploy::load_tensors("artifacts/input.pt");   // the files export.py writes
//   auto expected = torch_deploy::load_tensors("artifacts/expected.pt");
//   auto report = torch_deploy::compare(model.run(reference.tensors), expected.tensors, 1e-4, 1e-4, 5);
//
// Errors are torch_deploy::Error, one line each. CMake: find_package(TorchDeploy CONFIG REQUIRED) and
// target_link_libraries(app PRIVATE TorchDeploy::runtime); examples/embed/ is a complete application.
#pragma once

#include <torch_deploy/bench.h>
#include <torch_deploy/cli.h>
#include <torch_deploy/compare.h>
#include <torch_deploy/error.h>
#include <torch_deploy/image.h>
#include <torch_deploy/model.h>
#include <torch_deploy/tensors.h>
