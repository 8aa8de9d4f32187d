// Internal: AOTInductor packages (.pt2) behind a narrow interface, as script.h does for TorchScript. Only package.cpp
// includes libtorch's AOTInductor headers, and only when the build found them (TORCH_DEPLOY_WITH_AOTI).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace torch_deploy::detail {

// Whether the file is an AOTInductor package (a zip archive holding <name>/archive_format), from its contents: the
// name of a file says nothing for sure. False for anything else, TorchScript files included.
bool is_package(const std::string& path);

// An AOTInductor package: a model compiled ahead of time into a shared library for this CPU, with its metadata.
// A handle: copies share the loaded model, and run() may be called from several threads at once.
class Package {
 public:
  // The package's metadata (export.py's texts, and AOTInductor's own AOTI_* entries), read without loading the
  // model's code. Errors name the file and the fix.
  static std::map<std::string, std::string> metadata(const std::string& path);
  // Loads the model's code onto `device`, after refusing what cannot run there: a package compiled by another torch
  // version than this libtorch (`torch` is the version export.py recorded; empty: unknown), for another kind of
  // device, or for CPU features this machine lacks. `concurrency` calls may run at once; more wait for a free one.
  static Package load(const std::string& path, const std::map<std::string, std::string>& metadata,
                      const std::string& torch, int concurrency, c10::Device device);
  // The kind of device a package was compiled for, from its metadata ("cpu", "cuda").
  static std::string compiled_for(const std::map<std::string, std::string>& metadata);

  // The model on `inputs`: its outputs, flattened in the order Model::run() documents (AOTInductor returns them so).
  std::vector<at::Tensor> run(const std::vector<at::Tensor>& inputs) const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace torch_deploy::detail
