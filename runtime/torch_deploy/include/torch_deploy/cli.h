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
// are several outputs), any other tensor as its name, shape, dtype, min, max and mean. `names` may be empty.
void print_outputs(std::ostream& out, const std::vector<at::Tensor>& outputs, const std::vector<std::string>& names,
                   int64_t top_k);

}  // namespace torch_deploy
