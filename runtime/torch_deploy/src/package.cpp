// Internal: AOTInductor packages (see package.h).

#include "package.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/version.h>
#include <torch_deploy/error.h>

#include "detail.h"
#include "operators.h"

#ifdef TORCH_DEPLOY_WITH_AOTI
#include <ATen/Version.h>
#include <ATen/cpu/Utils.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#endif

namespace torch_deploy::detail {

bool is_package(const std::string& path) {
  try {
    return caffe2::serialize::PyTorchStreamReader(path).hasRecord("archive_format");
  } catch (const std::exception&) {
    return false;  // not a zip archive of one folder: not a package (TorchScript's loader says what it is)
  }
}

#ifdef TORCH_DEPLOY_WITH_AOTI

namespace {

// "2.14.1+cu130" -> "2.14": the versions whose compiled packages share one ABI with each other.
std::string minor_version(const std::string& version) {
  const size_t first = version.find('.');
  return version.substr(0, version.find_first_of(".+", first == std::string::npos ? 0 : first + 1));
}

// The CPU features a package was compiled for (AOTInductor's AOTI_CPU_ISA: "AVX512 AVX512_VNNI AMX_TILE") that this
// machine lacks, as libtorch sees it (ATEN_CPU_CAPABILITY lowers what it sees, to check a package for a smaller CPU).
std::string missing_cpu_features(const std::string& wanted) {
  const std::string capability = at::get_cpu_capability();  // "DEFAULT", "AVX2" or "AVX512" on x86
  std::istringstream features(wanted);
  std::string missing;
  for (std::string feature; features >> feature;) {
    bool present = true;
    if (feature == "AVX2") {
      present = capability == "AVX2" || capability == "AVX512";
    } else if (feature == "AVX512") {
      present = capability == "AVX512";
    } else if (feature == "AVX512_VNNI") {
      present = capability == "AVX512" && at::cpu::is_avx512_vnni_supported();
    } else if (feature == "AMX_TILE") {
      present = capability == "AVX512" && at::cpu::init_amx();
    }
    if (!present) {
      missing += (missing.empty() ? "" : " ") + feature;
    }
  }
  return missing;
}

// The instruction set extensions a package's code may use (export.py records them: the exporting CPU's, for gcc's
// -march=native, or those of the level deploy.json's "aoti_isa" names) that this CPU lacks, by the names of Linux's
// /proc/cpuinfo; a CPU without one would stop at an illegal instruction. Empty where /proc/cpuinfo cannot be read.
std::string missing_extensions(const std::string& wanted) {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line) && line.rfind("flags", 0) != 0) {
  }
  std::istringstream flags(line.substr(std::min(line.size(), line.find(':') + 1)));
  const std::set<std::string> present{std::istream_iterator<std::string>(flags), {}};
  std::istringstream extensions(wanted);
  std::string missing;
  for (std::string extension; extensions >> extension;) {
    if (!present.empty() && present.count(extension) == 0) {
      missing += (missing.empty() ? "" : " ") + extension;
    }
  }
  return missing;
}

}  // namespace

struct Package::Impl {
  std::string path;
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> loader;
};

std::map<std::string, std::string> Package::metadata(const std::string& path) {
  try {  // (is_package() has read the file: it is there)
    const auto metadata = torch::inductor::AOTIModelPackageLoader::load_metadata_from_package(path, "model");
    return {metadata.begin(), metadata.end()};
  } catch (const std::exception& error) {
    throw Error(path + ": not an AOTInductor package that this libtorch (" TORCH_VERSION ") can read: " +
                cause_of(error) + "; re-export it with make export");
  }
}

std::string Package::compiled_for(const std::map<std::string, std::string>& metadata) {
  const auto found = metadata.find("AOTI_DEVICE_KEY");
  return found == metadata.end() || found->second.empty() ? "cpu" : found->second;
}

Package Package::load(const std::string& path, const std::map<std::string, std::string>& metadata,
                      const std::string& torch, int concurrency, c10::Device device) {
  if (!torch.empty() && minor_version(torch) != minor_version(TORCH_VERSION)) {
    throw Error(path + ": compiled by torch " + torch + ", and this libtorch is " + TORCH_VERSION +
                "; an AOTInductor package runs with the torch version that made it: export it with torch " +
                minor_version(TORCH_VERSION) + " (make export with that Python), or use libtorch " +
                minor_version(torch));
  }
  const auto value = [&](const char* key) {
    const auto found = metadata.find(key);
    return found == metadata.end() ? std::string() : found->second;
  };
  // AOTInductor compiles for the device the model was exported on: the package runs on that kind of device only.
  const std::string compiled = compiled_for(metadata);
  if (compiled != c10::DeviceTypeName(device.type(), /*lower_case=*/true)) {
    const bool for_gpu = compiled != "cpu";
    throw Error(path + ": compiled for " + (for_gpu ? "the GPU (" + compiled + ")" : std::string("the CPU")) +
                ", and asked to run on " + device.str() + "; AOTInductor compiles for the device the model is " +
                "exported on: run it with --device " + (for_gpu ? compiled : std::string("cpu")) + ", or export it " +
                "for " + device.str() + " (deploy.json's \"device\"" +
                (device.is_cpu() ? "" : std::string(", on a machine with the GPU")) + ")");
  }
  const std::string missing = device.is_cpu() ? missing_cpu_features(value("AOTI_CPU_ISA")) : "";
  if (!missing.empty()) {
    throw Error(path + ": compiled for " + value("AOTI_CPU_ISA") + ", and this CPU lacks " + missing +
                " (libtorch sees " + at::get_cpu_capability() +
                "); export it on a machine with the CPU features of the one it runs on, or use the TorchScript file");
  }
  const std::string lacking = device.is_cpu() ? missing_extensions(value("cpu_extensions")) : "";
  if (!lacking.empty()) {
    throw Error(path + ": compiled for a CPU with " + lacking + ", which this CPU lacks (its code would stop at an " +
                "illegal instruction); export it for older CPUs (\"aoti_isa\": \"avx2\" in deploy.json), or on a " +
                "machine like this one, or use the TorchScript file");
  }
  provide_libtorch("AOTInductor packages need here (" + path + ")");
  // The model code checks its inputs' dtypes and sizes only when asked; unchecked, a wrong input reads out of
  // bounds instead of failing. Read once per process, before the first run: asked for here unless the user decided.
  setenv("AOTI_RUNTIME_CHECK_INPUTS", "1", /*overwrite=*/0);
  Package package;
  try {
    // The device index: a package compiled for cuda runs on any GPU (cuda:N); -1 leaves the current one.
    const c10::DeviceIndex index = device.is_cpu() || !device.has_index() ? -1 : device.index();
    package.impl_ = std::make_shared<Impl>(
        Impl{path, std::make_unique<torch::inductor::AOTIModelPackageLoader>(
                       path, "model", false, static_cast<size_t>(std::max(concurrency, 1)), index)});
  } catch (const std::exception& error) {
    throw Error(path + ": cannot load this AOTInductor package (" + cause_of(error) +
                "); re-export it with make export");
  }
  return package;
}

std::vector<at::Tensor> Package::run(const std::vector<at::Tensor>& inputs) const { return impl_->loader->run(inputs); }

#else  // a libtorch without AOTInductor's loader (before torch 2.6), or a build with TORCH_DEPLOY_AOTI=OFF

struct Package::Impl {};

namespace {
[[noreturn]] void unsupported(const std::string& path) {
  throw Error(path + ": an AOTInductor package, and this torch_deploy was built without AOTInductor's loader " +
              "(libtorch " TORCH_VERSION "; it needs torch 2.6 or newer, and TORCH_DEPLOY_AOTI=ON); use the " +
              "TorchScript file (formats torchscript), or rebuild against a newer libtorch");
}
}  // namespace

std::map<std::string, std::string> Package::metadata(const std::string& path) { unsupported(path); }

Package Package::load(const std::string& path, const std::map<std::string, std::string>&, const std::string&, int,
                      c10::Device) {
  unsupported(path);
}

std::string Package::compiled_for(const std::map<std::string, std::string>&) { return "cpu"; }

std::vector<at::Tensor> Package::run(const std::vector<at::Tensor>&) const { return {}; }

#endif

}  // namespace torch_deploy::detail
