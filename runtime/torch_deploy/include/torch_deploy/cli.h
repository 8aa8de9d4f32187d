// The full command-line runner (ts-infer's options beyond the tutorial's program), for a project's own main().
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace torch_deploy {

// Runs the command line `argv` as ts-infer does (`ts-infer --help` lists the options): parity checks against
// Python's reference outputs, images, timing, precision and optimisation modes. Messages are prefixed with the
// program's file name. Returns the exit code: 0 on success, 1 on an error or a parity failure, 2 on a usage error.
int run_command_line(int argc, const char* argv[]);

// Prints outputs as the tutorial does: a classifier's scores as the top-k indices of the first row (named when there
// are several outputs), any other tensor in summarize_output()'s line. `names` may be empty.
void print_outputs(std::ostream& out, const std::vector<at::Tensor>& outputs, const std::vector<std::string>& names,
                   int64_t top_k);

// An output that is not class scores in one line, as `ts-infer` prints it (and `python -m torch_deploy predict`, for
// an image and a model that is no classifier): its name, shape, dtype (c10's name), min, max and mean, and for a
// (batch, classes, height, width) floating output (a segmentation's scores) the share of the first image's pixels
// given to each of its k most frequent classes (argmax over the channels), named from `class_names` where it has them:
//   "out [1, 21, 520, 520] Float min -1.234e+01 max 9.876e+00 mean 1.000e-01; per pixel: 0 __background__ 61.2%,
//   15 person 30.1%"
std::string summarize_output(const std::string& name, const at::Tensor& output,
                             const std::vector<std::string>& class_names, int64_t k);

}  // namespace torch_deploy
