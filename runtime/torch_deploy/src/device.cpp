// Devices: which ones this library and this machine can run models on, and a GPU's memory. The NVIDIA driver is asked
// directly (libcuda.so.1, opened here by name), as the runtime's Python side asks it (device.py), so that both give the
// same answer in the same words. Nothing here includes a CUDA header: a CPU build compiles it the same way.

#include <c10/core/CachingDeviceAllocator.h>
#include <c10/util/Exception.h>
#include <dlfcn.h>
#include <torch/cuda.h>
#include <torch/version.h>
#include <torch_deploy/error.h>
#include <torch_deploy/model.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "detail.h"

namespace torch_deploy {

namespace {

constexpr const char* kDriver = "libcuda.so.1";  // comes with the machine's NVIDIA driver, never with a program

// The entry points of the NVIDIA driver's API asked here (CUresult is an int, 0 is CUDA_SUCCESS), and why the driver
// cannot be used ("" when it can).
struct Driver {
  void* library = nullptr;
  std::string missing;
  int (*device_count)(int*) = nullptr;
  int (*version)(int*) = nullptr;
  int (*memory)(size_t*, size_t*) = nullptr;

  template <typename Function>
  Function symbol(const char* name) const {
    return reinterpret_cast<Function>(dlsym(library, name));
  }

  // "CUDA_ERROR_NO_DEVICE, no CUDA-capable device is detected"
  std::string error(int status) const {
    std::string described;
    for (const char* name : {"cuGetErrorName", "cuGetErrorString"}) {
      const char* text = nullptr;
      if (const auto get = symbol<int (*)(int, const char**)>(name); get != nullptr && get(status, &text) == 0) {
        described += (described.empty() ? "" : ", ") + std::string(text);
      }
    }
    return described.empty() ? "error " + std::to_string(status) : described;
  }
};

// The driver, opened and started once per process.
const Driver& driver() {
  static const Driver opened = [] {
    Driver found;
    found.library = dlopen(kDriver, RTLD_NOW | RTLD_LOCAL);
    if (found.library == nullptr) {
      const std::string reason = dlerror();  // "libcuda.so.1: cannot open shared object file: No such file ..."
      const size_t colon = reason.find(": ");
      found.missing = std::string("no NVIDIA driver on this machine (") + kDriver + ": " +
                      (colon == std::string::npos ? reason : reason.substr(colon + 2)) + ")";
      return found;
    }
    const auto init = found.symbol<int (*)(unsigned)>("cuInit");
    found.device_count = found.symbol<int (*)(int*)>("cuDeviceGetCount");
    found.version = found.symbol<int (*)(int*)>("cuDriverGetVersion");
    found.memory = found.symbol<int (*)(size_t*, size_t*)>("cuMemGetInfo_v2");
    if (init == nullptr || found.device_count == nullptr) {
      found.missing = std::string("the NVIDIA driver's ") + kDriver + " lacks cuInit or cuDeviceGetCount";
    } else if (const int status = init(0); status != 0) {
      found.missing = "the NVIDIA driver does not start (cuInit: " + found.error(status) + ")";
    }
    return found;
  }();
  return opened;
}

// "12.4": the newest CUDA version the driver supports.
std::string driver_cuda_version() {
  int version = 0;
  if (driver().version == nullptr || driver().version(&version) != 0) {
    return "unknown";
  }
  constexpr int kMajor = 1000;
  constexpr int kMinor = 10;
  return std::to_string(version / kMajor) + "." + std::to_string(version % kMajor / kMinor);
}

// What this machine lacks to run models on GPU `index` (-1: the first), in a few words; "" when nothing.
std::string gpu_problem(c10::DeviceIndex index) {
  if (!driver().missing.empty()) {
    return driver().missing;
  }
  int count = 0;
  if (driver().device_count(&count) != 0 || count == 0) {
    return "the NVIDIA driver finds no GPU on this machine";
  }
  const std::string gpus = std::to_string(count) + " GPU" + (count > 1 ? "s" : "");
  if (index >= count) {
    return "cuda:" + std::to_string(index) + " does not exist: this machine has " + gpus +
           " (cuda:0 to cuda:" + std::to_string(count - 1) + ")";
  }
  // The driver sees the GPU, and libtorch's CUDA runtime may still refuse it (a driver older than the runtime needs).
  // libtorch would warn about it on stderr too: this line says it once.
  struct Silent : c10::WarningHandler {
    void process(const c10::Warning& /*warning*/) override {}
  } silent;
  const c10::WarningUtils::WarningHandlerGuard quiet(&silent);
  if (torch::cuda::device_count() <= std::max<c10::DeviceIndex>(index, 0)) {
    return "the NVIDIA driver (for CUDA " + driver_cuda_version() + ") sees " + gpus + ", and this libtorch's CUDA " +
           "runtime cannot use it: update the NVIDIA driver to one for this torch's CUDA version";
  }
  return "";
}

}  // namespace

bool cuda_built() {
#ifdef TORCH_DEPLOY_WITH_CUDA
  return true;
#else
  return false;
#endif
}

std::optional<c10::Device> parse_device(const std::string& text) {
  constexpr size_t kIndexDigits = 3;
  constexpr int kIndexes = 128;  // c10::DeviceIndex is 8 bits
  const std::string index = text.rfind("cuda:", 0) == 0 ? text.substr(5) : "";
  const bool numbered = !index.empty() && index.size() <= kIndexDigits &&
                        index.find_first_not_of("0123456789") == std::string::npos && std::stoi(index) < kIndexes;
  if (text != "cpu" && text != "cuda" && !numbered) {
    return std::nullopt;
  }
  return c10::Device(text);
}

c10::Device usable_device(const std::string& text) {
  const std::optional<c10::Device> device = parse_device(text);
  if (!device) {
    throw Error("device '" + text + "' is not a device: use cpu, cuda or cuda:N (N: a GPU's index, from 0)");
  }
  if (device->is_cpu()) {
    return *device;
  }
  const std::string on_cpu = "run the model on the CPU (--device cpu)";
  if (!cuda_built()) {
    throw Error("device " + text + ": this torch_deploy library was built for the CPU only (TORCH_DEPLOY_CUDA off, " +
                "or a libtorch without CUDA); build it with CUDA against a CUDA build of torch (make build " +
                "DEVICE=cuda, or cmake -DTORCH_DEPLOY_CUDA=ON), or " + on_cpu);
  }
  const std::string problem = gpu_problem(device->has_index() ? device->index() : -1);
  if (!problem.empty()) {
    const bool no_such_gpu = problem.rfind("cuda:", 0) == 0;
    throw Error("device " + text + ": " + problem + "; " +
                (no_such_gpu ? "name one of those, or " : "run it where an NVIDIA GPU and its driver are, or ") +
                on_cpu);
  }
  return *device;
}

namespace detail {

std::string gpu_memory() {
  size_t free = 0;
  size_t total = 0;
  if (!driver().missing.empty() || driver().memory == nullptr || driver().memory(&free, &total) != 0) {
    return "";
  }
  constexpr double kMB = 1e6;
  return std::to_string(std::llround(static_cast<double>(free) / kMB)) + " MB free of " +
         std::to_string(std::llround(static_cast<double>(total) / kMB)) + " MB";
}

void release_gpu_memory(c10::Device device) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 9)  // c10's DeviceAllocator
  try {
    c10::getDeviceAllocator(device.type())->emptyCache();
  } catch (const std::exception& error) {  // a destructor's: said, not thrown (the device may be gone)
    print_note("the GPU memory of a model on " + device.str() + " was not given back: " + cause_of(error));
  }
#else
  (void)device;  // before torch 2.9 there is no way to it without CUDA's headers: the cache stays the process's
#endif
}

}  // namespace detail

}  // namespace torch_deploy
