// Internal helpers of the library (not installed).
#pragma once

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <exception>
#include <functional>
#include <istream>
#include <optional>
#include <string>

namespace torch_deploy::detail {

// The cause in an exception from libtorch, as one line: without the C++ backtrace, the TorchScript traceback (the
// interpreter's errors end with the cause), the "[enforce fail at ...]" prefix and boilerplate advice, and without
// a closing period (callers go on with "; <fix>"). Which line: the last for errors of a running model (the
// interpreter's traceback comes first, the cause last); the first for a TorchScript file that does not load (the
// cause, "Unknown builtin op: ...", comes first, then the model's code where it happened).
enum class CauseLine { first, last };
std::string cause_of(const std::exception& error, CauseLine which = CauseLine::last);

// The "key value..." lines of the text files export.py saves in the model file (deploy.txt, preprocess.txt): calls
// `field` with each line's first word, a stream at the rest of the line, and the whole line (for messages).
void for_each_field(
    const std::string& text,
    const std::function<void(const std::string& key, std::istream& values, const std::string& line)>& field);

// The free and total memory of the current GPU, "1234 MB free of 81559 MB", as the NVIDIA driver reports them ("" when
// it cannot say).
std::string gpu_memory();

// Gives the GPU memory that libtorch's caching allocator holds unused on `device` back to the driver.
void release_gpu_memory(c10::Device device);

// The dtype that export.py writes as "float32", "int64", ... (the names of torch's dtypes without "torch.").
std::optional<c10::ScalarType> scalar_type_named(const std::string& name);

}  // namespace torch_deploy::detail
