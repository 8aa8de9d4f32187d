// Internal: an empty library whose SONAME is libtorch.so (see provide_libtorch() in package.cpp).
//
// The model code of an AOTInductor package NEEDs libtorch.so. In a CUDA wheel that library NEEDs libtorch_cuda and
// the CUDA libraries, which a CPU build does not link and a CPU bundle does not ship; every symbol the model code
// uses is in libtorch_cpu. Loaded before such a package, this stand-in satisfies that NEEDED entry, and nothing else
// is asked of it.
