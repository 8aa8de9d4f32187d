// Internal: a stand-in for libtorch_cuda.so in a CPU build (see provide() in operators.cpp).
//
// torchvision's operator library from a CUDA wheel NEEDs libtorch_cuda for the three functions below, which only its
// CUDA kernels call. A CPU build has no CUDA tensors, so those kernels never run; loading the real library would map
// it and the CUDA libraries it needs (about 265 MB of memory more, measured with torchvision 0.29.1) for nothing, and
// a CPU bundle does not ship them. Should one be called all the same, it fails as a CUDA error does.

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace {
constexpr int32_t kFailure = 1;  // AOTI_TORCH_FAILURE
const char kMessage[] = "CUDA is not available: this is a CPU build of torch_deploy (TORCH_DEPLOY_CUDA=OFF)";
}  // namespace

extern "C" {

__attribute__((visibility("default"))) int32_t aoti_torch_get_current_cuda_stream(int32_t /*device_index*/,
                                                                                  void** ret_stream) {
  *ret_stream = nullptr;
  return kFailure;
}

__attribute__((visibility("default"))) int32_t torch_c10_cuda_check_msg(int32_t error, const char* /*filename*/,
                                                                        const char* /*function_name*/,
                                                                        uint32_t /*line_number*/,
                                                                        bool /*include_device_assertions*/,
                                                                        char** error_message) {
  *error_message = error == 0 ? nullptr : strdup(kMessage);
  return error == 0 ? 0 : kFailure;
}

__attribute__((visibility("default"))) void torch_c10_cuda_free_error_msg(char* error_message) {
  std::free(error_message);
}

}  // extern "C"
