// Internal: libraries loaded into the program at run time, once, when a model needs them.
#pragma once

#include <string>

namespace torch_deploy::detail {

// Unless a library with this SONAME is loaded already, loads `stand_in` (a file beside this library whose SONAME is
// `soname`), so that the dynamic loader takes it for that library when a later library NEEDs it. `why` ends the
// message of the Error thrown when it cannot be loaded ("which <why>").
void provide(const std::string& soname, const std::string& stand_in, const std::string& why);

// provide() for libtorch.so: its stand-in's SONAME (see empty_stand_in.cpp). In a CUDA wheel the real libtorch.so
// NEEDs libtorch_cuda and the CUDA libraries, which a CPU build does not link and a CPU bundle does not ship; what the
// libraries loaded at run time use of it is in libtorch_cpu.
void provide_libtorch(const std::string& why);

// Registers torchvision's C++ operators (torchvision::nms, roi_align, ...) from the op library of the torchvision
// that the build found beside the exporting torch (installed with the library: <libdir>/torchvision/), and returns
// that torchvision's version; "" when the build found none. Throws Error when the library does not load.
std::string torchvision_operators();

}  // namespace torch_deploy::detail
