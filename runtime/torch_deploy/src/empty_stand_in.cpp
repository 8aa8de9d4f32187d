// Internal: an empty library, built under the SONAMEs of libraries that something loaded at run time NEEDs but does
// not use (see provide() in operators.cpp).
//
// libtorch.so: the model code of an AOTInductor package NEEDs it. In a CUDA wheel that library NEEDs libtorch_cuda and
// the CUDA libraries, which a CPU build does not link and a CPU bundle does not ship; every symbol the model code
// uses is in libtorch_cpu. libtorch_python.so and libc10_cuda.so: torchvision's operator library NEEDs them and uses
// none of their symbols (libtorch_python holds torch's Python bindings, and cannot load without an interpreter).
// Loaded first, such a stand-in satisfies that NEEDED entry, and nothing else is asked of it.
