// torch_deploy::Error: the one exception type the library throws.
#pragma once

#include <stdexcept>
#include <string>

namespace torch_deploy {

// Every failure of the library: a missing or unreadable file, a model this libtorch cannot load, inputs the model
// rejects. what() is one line that names the file and the cause (and, where there is one, the fix), without
// libtorch's C++ backtrace, so that it can be shown to a user as it is.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace torch_deploy
