// Internal: libraries loaded into the program at run time (see operators.h): torchvision's operators, and the
// stand-ins that let such libraries load where the libraries they name are not wanted.

#include "operators.h"

#include <dlfcn.h>
#include <torch_deploy/error.h>

#include <cstdio>
#include <mutex>
#include <sstream>
#include <vector>

namespace torch_deploy::detail {

namespace {

// The folder of this library, where the stand-ins are built and installed, with a trailing slash.
std::string library_folder() {
  Dl_info self{};
  if (dladdr(reinterpret_cast<void*>(&library_folder), &self) == 0 || self.dli_fname == nullptr) {
    throw Error("cannot locate the torch_deploy library, beside which its stand-in libraries are");
  }
  const std::string file = self.dli_fname;
  return file.substr(0, file.find_last_of('/') + 1);
}

bool loaded(const std::string& soname) { return dlopen(soname.c_str(), RTLD_NOW | RTLD_NOLOAD) != nullptr; }

void open_global(const std::string& path, const std::string& why) {
  if (dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL) == nullptr) {
    throw Error("cannot load " + path + " (" + dlerror() + "), which " + why);
  }
}

}  // namespace

void provide(const std::string& soname, const std::string& stand_in, const std::string& why) {
  if (!loaded(soname)) {
    open_global(library_folder() + stand_in, why + "; reinstall the torch_deploy library with its stand-ins");
  }
}

#ifdef TORCH_DEPLOY_LIBTORCH_STAND_IN
void provide_libtorch(const std::string& why) { provide("libtorch.so", TORCH_DEPLOY_LIBTORCH_STAND_IN, why); }
#endif

#ifdef TORCH_DEPLOY_TORCHVISION_OPS

namespace {

// The first of the candidate files that exists: the installed copy beside this library, then where the build found it.
std::string first_existing(const std::vector<std::string>& candidates) {
  for (const std::string& candidate : candidates) {
    if (FILE* file = std::fopen(candidate.c_str(), "rb")) {
      std::fclose(file);
      return candidate;
    }
  }
  return candidates.back();
}

std::vector<std::string> split(const std::string& list) {
  std::vector<std::string> items;
  std::istringstream stream(list);
  for (std::string item; std::getline(stream, item, ':');) {
    if (!item.empty()) {
      items.push_back(item);
    }
  }
  return items;
}

std::string file_name(const std::string& path) { return path.substr(path.find_last_of('/') + 1); }

}  // namespace

std::string torchvision_operators() {
  static std::once_flag once;
  static std::string failure;
  std::call_once(once, [] {
    try {
      // torchvision's op library NEEDs libtorch (see provide_libtorch()), libtorch_python (torch's Python bindings,
      // none of whose symbols its operators use, and which cannot load without an interpreter), and in a CUDA wheel
      // libtorch_cuda and libc10_cuda (3 symbols, called by its CUDA kernels only). A CUDA build has linked those two
      // (and builds no stand-ins for them); a CPU build gets stand-ins, and the CUDA kernels are registered but never
      // run.
      const std::string why = "torchvision's operators need here";
      provide_libtorch(why);
      provide("libtorch_python.so", TORCH_DEPLOY_PYTHON_STAND_IN, why);
#ifdef TORCH_DEPLOY_CUDA_STAND_IN
      provide("libtorch_cuda.so", TORCH_DEPLOY_CUDA_STAND_IN, why);
      provide("libc10_cuda.so", TORCH_DEPLOY_C10_CUDA_STAND_IN, why);
#endif
      const std::string folder = library_folder();
      // What else it NEEDs from the wheel (libcudart), loaded first by path: nothing on the loader's path has it.
      for (const std::string& companion : split(TORCH_DEPLOY_TORCHVISION_COMPANIONS)) {
        if (!loaded(file_name(companion))) {
          open_global(first_existing({folder + file_name(companion), companion}), why);
        }
      }
      const std::string ops = TORCH_DEPLOY_TORCHVISION_OPS;
      open_global(first_existing({folder + "torchvision/" + file_name(ops), ops}),
                  "holds torchvision " TORCH_DEPLOY_TORCHVISION_VERSION "'s operators");
    } catch (const Error& error) {
      failure = error.what();
    }
  });
  if (!failure.empty()) {
    throw Error(failure);
  }
  return TORCH_DEPLOY_TORCHVISION_VERSION;
}

#else

std::string torchvision_operators() { return ""; }

#endif

}  // namespace torch_deploy::detail
