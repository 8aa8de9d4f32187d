# TorchDeploy.cmake: find libtorch the way users actually have it, and build the runtime library and the project's
# runners against it. Loaded by find_package(TorchDeploy) (TorchDeployConfig.cmake, beside this file).
#
#   find_package(TorchDeploy CONFIG REQUIRED)  # after project(): finds libtorch, sets up ccache, and defines the
#                                              # runtime library TorchDeploy::runtime (../include/, ../src/)
#   torch_deploy_add_runner(ts-infer src/ts-infer.cpp)
#   torch_deploy_add_parity_test(ts-infer MODEL m.pt INPUT in.pt EXPECTED out.pt)
#   torch_deploy_add_parity_test(ts-infer ARTIFACTS artifacts)  # every exported format (artifacts/formats.txt)
#   torch_deploy_install(RUNNERS ts-infer ARTIFACTS <folder>)   # cmake --install: library, headers, runners, model,
#                                                               # and the CMake package TorchDeploy; cpack: the
#                                                               # bundle that runs without Python or torch
#
# Options (cache variables):
#   TORCH_DEPLOY_LIBTORCH  explicit libtorch folder or torch package folder (wins over everything else; a
#                          -DTorch_DIR or -DCMAKE_PREFIX_PATH given to CMake is honoured next)
#   TORCH_DEPLOY_PYTHON    interpreter whose torch package to use (after Torch_DIR, LIBTORCH, CMAKE_PREFIX_PATH)
#   TORCH_DEPLOY_DEVICE    the device the project runs models on (cpu, cuda, cuda:N; empty, the default: deploy.json's
#                          "device" beside the project, else cpu); decides TORCH_DEPLOY_CUDA=AUTO
#   TORCH_DEPLOY_CUDA      AUTO (default): link libtorch's CUDA libraries when the device is a GPU and the libtorch
#                          found has CUDA; ON: link them (a libtorch without CUDA is an error); OFF: a CPU build, also
#                          against a CUDA wheel. Neither needs the CUDA toolkit: the runtime compiles no CUDA code, and
#                          libtorch_cuda finds the CUDA libraries of the wheel (nvidia/*/lib) itself
#   TORCH_DEPLOY_CCACHE    use ccache when it is found (default ON; TORCH_DEPLOY_CCACHE_PROGRAM names one)
#   TORCH_DEPLOY_IMAGES    AUTO (default): link libjpeg and libpng into the library when they are found, and define
#                          TORCH_DEPLOY_WITH_IMAGES (image decoding); ON: require them; OFF: no search
#   TORCH_DEPLOY_AOTI      ON (default): load AOTInductor packages (.pt2) when libtorch has the loader (torch 2.6+);
#                          OFF: build without it (.pt2 files are then refused in one line)
#
# Discovery and the rule on the exporting torch against this libtorch live in the runtime's discover.py (shared with the
# generator's hooks, `tsgen libtorch` and `tsgen doctor`), so that they can never disagree. How a target links
# libtorch lives in TorchDeployLibtorch.cmake, shared with the installed package.

include_guard(GLOBAL)

set(TORCH_DEPLOY_LIBTORCH "" CACHE PATH "libtorch folder or torch package folder (empty: discover)")
# STRING, not FILEPATH: a command name such as python3 (make's default PYTHON) must not become a path in this folder.
set(TORCH_DEPLOY_PYTHON "" CACHE STRING "Python interpreter whose torch package provides libtorch")
set(TORCH_DEPLOY_DEVICE "" CACHE STRING "The device models run on: cpu, cuda or cuda:N (empty: deploy.json's)")
set(TORCH_DEPLOY_CUDA AUTO CACHE STRING "Link libtorch's CUDA libraries, to run models on GPUs: AUTO, ON or OFF")
set_property(CACHE TORCH_DEPLOY_CUDA PROPERTY STRINGS AUTO ON OFF)
option(TORCH_DEPLOY_CCACHE "Use ccache when it is found" ON)
set(TORCH_DEPLOY_IMAGES AUTO CACHE STRING "Decode images with libjpeg and libpng (ts-infer --image): AUTO, ON or OFF")
set_property(CACHE TORCH_DEPLOY_IMAGES PROPERTY STRINGS AUTO ON OFF)
option(TORCH_DEPLOY_AOTI "Load AOTInductor packages (.pt2) when libtorch has the loader" ON)

# --- build type ----------------------------------------------------------------------------------------------
# Optimised unless asked otherwise. With Ninja or Makefiles, CMake's default is no build type, which compiles the
# runtime and the runners without optimisation: the generated Makefile and CMakePresets.json say Release, a hand-run
# `cmake -S . -B build` does not. Multi-config generators (Ninja Multi-Config, Visual Studio) choose per build.
get_property(_torch_deploy_multi_config GLOBAL PROPERTY GENERATOR_IS_MULTI_CONFIG)
if(NOT CMAKE_BUILD_TYPE AND NOT _torch_deploy_multi_config)
  set(CMAKE_BUILD_TYPE Release CACHE STRING "Build type: Release, Debug, RelWithDebInfo or MinSizeRel" FORCE)
  message(STATUS "TorchDeploy: no CMAKE_BUILD_TYPE given: building Release (-DCMAKE_BUILD_TYPE=Debug for a debug build)")
endif()

# --- libtorch ------------------------------------------------------------------------------------------------
function(_torch_deploy_discover)
  set(_python "${TORCH_DEPLOY_PYTHON}")
  if(NOT _python)
    find_program(TORCH_DEPLOY_PYTHON3 NAMES python3 python)
    set(_python "${TORCH_DEPLOY_PYTHON3}")
  endif()
  if(NOT _python)
    message(FATAL_ERROR
      "TorchDeploy: no Python 3 found to locate libtorch; install python3 or pass -DTORCH_DEPLOY_PYTHON=/path/to/python")
  endif()
  # An explicit path: ours, else a -DTorch_DIR the user gave. Torch_DIR is also written below for find_package;
  # a value that differs from what this file wrote is the user's, and is remembered across reconfigures.
  if(Torch_DIR AND NOT Torch_DIR STREQUAL "${_TORCH_DEPLOY_WRITTEN_Torch_DIR}")
    set(_TORCH_DEPLOY_USER_Torch_DIR "${Torch_DIR}" CACHE INTERNAL "Torch_DIR as the user gave it")
  endif()
  set(_explicit "${TORCH_DEPLOY_LIBTORCH}")
  set(_how "the explicit path (TORCH_DEPLOY_LIBTORCH)")
  if(NOT _explicit AND _TORCH_DEPLOY_USER_Torch_DIR)
    set(_explicit "${_TORCH_DEPLOY_USER_Torch_DIR}")
    set(_how "the CMake variable Torch_DIR")
  endif()
  execute_process(
    COMMAND "${_python}" "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/../discover.py" libtorch --json
            --libtorch "${_explicit}" --how "${_how}" --prefix-path "${CMAKE_PREFIX_PATH}"
            --python "${TORCH_DEPLOY_PYTHON}"
    OUTPUT_VARIABLE _json ERROR_VARIABLE _error RESULT_VARIABLE _result
    OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_STRIP_TRAILING_WHITESPACE)
  if(NOT _result EQUAL 0)
    if(NOT _error)  # the interpreter did not start: _result says why ("No such file or directory")
      set(_error "cannot run ${_python} (${_result}); give the Python that has torch: -DTORCH_DEPLOY_PYTHON=/path/to/python (make PYTHON=...)")
    endif()
    message(FATAL_ERROR "TorchDeploy: ${_error}")
  endif()
  foreach(_key prefix how version cxx_standard cuda cxx_flags cmake_dir agreement agreement_message
          torchvision_version torchvision_ops torchvision_companions)
    string(JSON _value ERROR_VARIABLE _ignored GET "${_json}" ${_key})
    if(_value STREQUAL "null" OR _value MATCHES "NOTFOUND$")
      set(_value "")
    endif()
    set(TORCH_DEPLOY_${_key} "${_value}" PARENT_SCOPE)
  endforeach()
  set(TORCH_DEPLOY_python "${_python}" PARENT_SCOPE)  # the interpreter used: the parity test runs the runtime with it
endfunction()

_torch_deploy_discover()

# The exporting torch against this libtorch: discover.py's verdict (another major version is refused, another minor
# one warned about: a file saved by a newer torch may use features an older libtorch cannot read).
if(TORCH_DEPLOY_agreement STREQUAL "major")
  message(FATAL_ERROR "TorchDeploy: ${TORCH_DEPLOY_agreement_message}")
elseif(TORCH_DEPLOY_agreement STREQUAL "minor")
  message(WARNING "TorchDeploy: ${TORCH_DEPLOY_agreement_message}")
endif()

# Switching libtorch in an existing build folder: forget every cached path into the previous one (TorchConfig.cmake
# caches its libraries with find_library), so that nothing of the old libtorch is linked by mistake.
if(DEFINED _TORCH_DEPLOY_PREFIX AND NOT _TORCH_DEPLOY_PREFIX STREQUAL TORCH_DEPLOY_prefix)
  message(STATUS "TorchDeploy: libtorch changed from ${_TORCH_DEPLOY_PREFIX}; forgetting its cached paths")
  get_cmake_property(_cached CACHE_VARIABLES)
  foreach(_variable IN LISTS _cached)
    string(FIND "${${_variable}}" "${_TORCH_DEPLOY_PREFIX}" _at)
    if(_at EQUAL 0 AND NOT _variable MATCHES "^(CMAKE_|TORCH_DEPLOY_|_TORCH_DEPLOY_)")
      unset(${_variable} CACHE)
    endif()
  endforeach()
endif()
set(_TORCH_DEPLOY_PREFIX "${TORCH_DEPLOY_prefix}" CACHE INTERNAL "The libtorch this build folder was configured with")
if(TORCH_DEPLOY_cuda)
  set(_torch_deploy_flavour "CUDA ${TORCH_DEPLOY_cuda} wheel")
else()
  set(_torch_deploy_flavour "CPU build")
endif()
message(STATUS "TorchDeploy: libtorch ${TORCH_DEPLOY_version} (${_torch_deploy_flavour}) from ${TORCH_DEPLOY_how}")
message(STATUS "TorchDeploy: prefix ${TORCH_DEPLOY_prefix}")
message(STATUS "TorchDeploy: C++${TORCH_DEPLOY_cxx_standard} (what libtorch ${TORCH_DEPLOY_version} needs)")

# --- CUDA ---------------------------------------------------------------------------------------------------
# The device: TORCH_DEPLOY_DEVICE (make's DEVICE), else the "device" of deploy.json beside the project, else cpu.
set(_torch_deploy_device "${TORCH_DEPLOY_DEVICE}")
set(_torch_deploy_device_from "TORCH_DEPLOY_DEVICE (make's DEVICE)")
if(NOT _torch_deploy_device)
  set(_torch_deploy_device cpu)
  set(_torch_deploy_device_from "no device named")
  if(EXISTS "${PROJECT_SOURCE_DIR}/deploy.json")
    file(READ "${PROJECT_SOURCE_DIR}/deploy.json" _torch_deploy_config)
    string(JSON _value ERROR_VARIABLE _no_device GET "${_torch_deploy_config}" device)
    if(NOT _no_device)
      set(_torch_deploy_device "${_value}")
      set(_torch_deploy_device_from "deploy.json")
    endif()
  endif()
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/deploy.json")
endif()
if(NOT _torch_deploy_device MATCHES "^(cpu|cuda(:[0-9]+)?)$")
  message(FATAL_ERROR "TorchDeploy: the device '${_torch_deploy_device}' (${_torch_deploy_device_from}) is not a "
    "device; use cpu, cuda or cuda:N")
endif()
string(TOUPPER "${TORCH_DEPLOY_CUDA}" _torch_deploy_cuda_mode)
if(_torch_deploy_cuda_mode MATCHES "^(ON|YES|TRUE|Y|1)$")
  set(_torch_deploy_cuda_mode ON)
elseif(_torch_deploy_cuda_mode MATCHES "^(OFF|NO|FALSE|N|0)$")
  set(_torch_deploy_cuda_mode OFF)
elseif(NOT _torch_deploy_cuda_mode STREQUAL "AUTO")
  message(FATAL_ERROR "TorchDeploy: TORCH_DEPLOY_CUDA=${TORCH_DEPLOY_CUDA} is not AUTO, ON or OFF")
endif()
set(TORCH_DEPLOY_WITH_CUDA OFF)
set(_torch_deploy_why "device ${_torch_deploy_device}")
if(NOT _torch_deploy_device_from STREQUAL "no device named")
  string(APPEND _torch_deploy_why " from ${_torch_deploy_device_from}")
endif()
if(_torch_deploy_cuda_mode STREQUAL "ON")
  if(NOT TORCH_DEPLOY_cuda)
    message(FATAL_ERROR "TorchDeploy: TORCH_DEPLOY_CUDA=ON but libtorch ${TORCH_DEPLOY_version} at "
      "${TORCH_DEPLOY_prefix} is a CPU build; install a CUDA build of torch (pip install torch, on Linux) or pass "
      "-DTORCH_DEPLOY_CUDA=AUTO")
  endif()
  set(TORCH_DEPLOY_WITH_CUDA ON)
  set(_torch_deploy_why "TORCH_DEPLOY_CUDA=ON")
elseif(_torch_deploy_cuda_mode STREQUAL "AUTO" AND _torch_deploy_device MATCHES "^cuda")
  if(TORCH_DEPLOY_cuda)
    set(TORCH_DEPLOY_WITH_CUDA ON)
  else()
    message(WARNING "TorchDeploy: ${_torch_deploy_why}, and libtorch ${TORCH_DEPLOY_version} at "
      "${TORCH_DEPLOY_prefix} is a CPU build: this build runs models on the CPU only; install a CUDA build of torch "
      "(pip install torch, on Linux) to run them on the GPU")
  endif()
endif()
if(TORCH_DEPLOY_WITH_CUDA)
  # What libtorch_cuda will load, through its own RPATH: the CUDA libraries of the wheel (site-packages/nvidia/*/lib),
  # or those a libtorch download carries in its lib/.
  file(GLOB _torch_deploy_cuda_dirs LIST_DIRECTORIES true "${TORCH_DEPLOY_prefix}/../nvidia/*/lib")
  if(_torch_deploy_cuda_dirs)
    get_filename_component(_torch_deploy_cuda_from "${TORCH_DEPLOY_prefix}/../nvidia" ABSOLUTE)
  else()
    set(_torch_deploy_cuda_from "${TORCH_DEPLOY_prefix}/lib")
  endif()
  message(STATUS "TorchDeploy: CUDA build (${_torch_deploy_why}): links libtorch_cuda (CUDA ${TORCH_DEPLOY_cuda}); "
    "the CUDA libraries come from ${_torch_deploy_cuda_from}, no CUDA toolkit needed")
elseif(TORCH_DEPLOY_cuda AND _torch_deploy_cuda_mode STREQUAL "OFF")
  message(STATUS "TorchDeploy: CPU-only build against the CUDA wheel (no CUDA toolkit needed; TORCH_DEPLOY_CUDA=OFF; "
    "-DTORCH_DEPLOY_CUDA=AUTO links CUDA for a GPU device, ON always)")
elseif(TORCH_DEPLOY_cuda)
  message(STATUS "TorchDeploy: CPU-only build against the CUDA wheel (no CUDA toolkit needed; ${_torch_deploy_why}; "
    "make build DEVICE=cuda or -DTORCH_DEPLOY_CUDA=ON links CUDA)")
endif()
if(NOT TORCH_DEPLOY_cuda)
  # FORCE: a Torch_DIR cached by an earlier configure must not win over the libtorch just discovered.
  set(Torch_DIR "${TORCH_DEPLOY_cmake_dir}" CACHE PATH "Set by TorchDeploy from discovery" FORCE)
  set(_TORCH_DEPLOY_WRITTEN_Torch_DIR "${Torch_DIR}" CACHE INTERNAL "Torch_DIR as TorchDeploy wrote it")
endif()
include("${CMAKE_CURRENT_LIST_DIR}/TorchDeployLibtorch.cmake")
torch_deploy_import_libtorch(PREFIX "${TORCH_DEPLOY_prefix}" CXX_STANDARD "${TORCH_DEPLOY_cxx_standard}"
  CUDA "${TORCH_DEPLOY_cuda}" LINK_CUDA "${TORCH_DEPLOY_WITH_CUDA}" CXX_FLAGS "${TORCH_DEPLOY_cxx_flags}")

# --- faster rebuilds -----------------------------------------------------------------------------------------
if(TORCH_DEPLOY_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  # The Makefile names the ccache that came with tsgen (local.mk); else look on PATH and beside the project's Python.
  get_filename_component(_python_bin "${TORCH_DEPLOY_PYTHON}" DIRECTORY)
  find_program(TORCH_DEPLOY_CCACHE_PROGRAM ccache HINTS ${_python_bin})
  if(TORCH_DEPLOY_CCACHE_PROGRAM)
    # base_dir + nohashdir: the same sources in another project folder hit the same cache entries.
    # include_file_mtime,include_file_ctime: headers just installed by pip are cached too.
    set(CMAKE_CXX_COMPILER_LAUNCHER
      "${CMAKE_COMMAND}" -E env "CCACHE_BASEDIR=${CMAKE_SOURCE_DIR}" CCACHE_NOHASHDIR=1
      CCACHE_SLOPPINESS=include_file_mtime,include_file_ctime "${TORCH_DEPLOY_CCACHE_PROGRAM}")
    message(STATUS "TorchDeploy: ccache ${TORCH_DEPLOY_CCACHE_PROGRAM}")
  endif()
endif()

# --- images (optional) ---------------------------------------------------------------------------------------
# libjpeg (libjpeg-turbo) and libpng decode JPEG and PNG files for ts-infer --image, to the pixels Pillow gives Python;
# everything after decoding is ATen. Two C libraries, found by CMake's own FindJPEG and FindPNG, whose whole closure
# is themselves and zlib (about 1 MB), which is what a self-contained deployment has to ship for images.
set(TORCH_DEPLOY_WITH_IMAGES OFF)
string(TOUPPER "${TORCH_DEPLOY_IMAGES}" _torch_deploy_images)
if(NOT _torch_deploy_images MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "TorchDeploy: TORCH_DEPLOY_IMAGES=${TORCH_DEPLOY_IMAGES} is not AUTO, ON or OFF")
endif()
if(_torch_deploy_images STREQUAL "OFF")
  message(STATUS "TorchDeploy: ts-infer --image disabled (TORCH_DEPLOY_IMAGES=OFF)")
else()
  find_package(JPEG QUIET)
  find_package(PNG QUIET)
  if(JPEG_FOUND AND PNG_FOUND)
    set(TORCH_DEPLOY_WITH_IMAGES ON)
    message(STATUS "TorchDeploy: libjpeg ${JPEG_VERSION} and libpng ${PNG_VERSION_STRING}: ts-infer --image enabled")
  else()
    set(_torch_deploy_missing "libjpeg and libpng")
    if(JPEG_FOUND)
      set(_torch_deploy_missing "libpng")
    elseif(PNG_FOUND)
      set(_torch_deploy_missing "libjpeg")
    endif()
    set(_torch_deploy_no_images "${_torch_deploy_missing} not found; install the development files (Debian/Ubuntu: apt install libjpeg-dev libpng-dev; conda: libjpeg-turbo libpng)")
    if(_torch_deploy_images STREQUAL "ON")
      message(FATAL_ERROR "TorchDeploy: TORCH_DEPLOY_IMAGES=ON but ${_torch_deploy_no_images}")
    endif()
    message(STATUS "TorchDeploy: ts-infer --image disabled: ${_torch_deploy_no_images}")
  endif()
endif()

# --- AOTInductor packages (optional) ------------------------------------------------------------------------
# libtorch's loader of .pt2 files came with torch 2.6; a build without it still builds, and refuses .pt2 files.
set(TORCH_DEPLOY_WITH_AOTI OFF)
if(NOT TORCH_DEPLOY_AOTI)
  message(STATUS "TorchDeploy: AOTInductor packages (.pt2) disabled (TORCH_DEPLOY_AOTI=OFF)")
elseif(EXISTS "${TORCH_DEPLOY_prefix}/include/torch/csrc/inductor/aoti_package/model_package_loader.h")
  set(TORCH_DEPLOY_WITH_AOTI ON)
  message(STATUS "TorchDeploy: AOTInductor packages (.pt2) enabled")
else()
  message(STATUS "TorchDeploy: AOTInductor packages (.pt2) disabled: libtorch ${TORCH_DEPLOY_version} has no loader for them (torch 2.6 or newer has)")
endif()

# --- targets -------------------------------------------------------------------------------------------------
include(GNUInstallDirs)
# build/compile_commands.json, for clang-tidy (.clang-tidy) and editors that understand C++ through it.
if("${CMAKE_EXPORT_COMPILE_COMMANDS}" STREQUAL "")  # CMake's own default is an empty cache entry: unless given
  set(CMAKE_EXPORT_COMPILE_COMMANDS ON)
endif()
# The runtime's folder (include/, src/): the one above cmake/. Its version is the package's (TorchDeployConfigVersion).
get_filename_component(_torch_deploy_root "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
set(TORCH_DEPLOY_RUNTIME_VERSION "${TorchDeploy_VERSION}")
set(TORCH_DEPLOY_RUNTIME_VERSION_MAJOR "${TorchDeploy_VERSION_MAJOR}")

# What every target of the project is compiled with: libtorch's standard, exactly (no GNU extensions), and an RPATH
# to libtorch's lib folder, so that programs run without LD_LIBRARY_PATH.
function(_torch_deploy_target_defaults target)
  set_target_properties(${target} PROPERTIES
    CXX_STANDARD ${TORCH_DEPLOY_cxx_standard}
    CXX_STANDARD_REQUIRED ON
    CXX_EXTENSIONS OFF
    BUILD_RPATH "${TORCH_DEPLOY_prefix}/lib"
    INSTALL_RPATH "${TORCH_DEPLOY_prefix}/lib")
  # DT_RPATH rather than the newer DT_RUNPATH, as libtorch's own libraries have: it also serves the libraries loaded
  # through this one that have no RPATH of their own (in a bundle, libpng loading libz), where DT_RUNPATH serves the
  # target's direct dependencies only.
  target_link_options(${target} PRIVATE "LINKER:--disable-new-dtags")
endfunction()

# The runtime library, TorchDeploy::runtime: the public API in include/torch_deploy/, one source file per concern.
# Linking it brings libtorch's include folders, definitions, libraries and C++ standard along (TorchDeploy::torch).
# script.cpp first: the only file with TorchScript's headers takes as long as all the others together, and the
# build starts files in this order.
add_library(torch_deploy SHARED
  "${_torch_deploy_root}/src/script.cpp"
  "${_torch_deploy_root}/src/package.cpp"
  "${_torch_deploy_root}/src/model.cpp"
  "${_torch_deploy_root}/src/cli.cpp"
  "${_torch_deploy_root}/src/image.cpp"
  "${_torch_deploy_root}/src/tensors.cpp"
  "${_torch_deploy_root}/src/compare.cpp"
  "${_torch_deploy_root}/src/bench.cpp"
  "${_torch_deploy_root}/src/operators.cpp"
  "${_torch_deploy_root}/src/device.cpp"
  "${_torch_deploy_root}/src/detail.cpp")
add_library(TorchDeploy::runtime ALIAS torch_deploy)
target_include_directories(torch_deploy PUBLIC
  "$<BUILD_INTERFACE:${_torch_deploy_root}/include>" "$<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>")
target_link_libraries(torch_deploy PUBLIC TorchDeploy::torch)
_torch_deploy_target_defaults(torch_deploy)
set_target_properties(torch_deploy PROPERTIES
  EXPORT_NAME runtime VERSION "${TORCH_DEPLOY_RUNTIME_VERSION}" SOVERSION "${TORCH_DEPLOY_RUNTIME_VERSION_MAJOR}")
if(TORCH_DEPLOY_WITH_IMAGES)
  # On image.cpp alone, the one file that includes their headers: switching images off or on recompiles only it.
  target_link_libraries(torch_deploy PRIVATE JPEG::JPEG PNG::PNG)
  set_property(SOURCE "${_torch_deploy_root}/src/image.cpp" APPEND PROPERTY COMPILE_DEFINITIONS
    TORCH_DEPLOY_WITH_IMAGES)
endif()
target_link_libraries(torch_deploy PRIVATE ${CMAKE_DL_LIBS})
# Stand-ins: libraries named after ones that something loaded at run time NEEDs but must not bring in (see
# empty_stand_in.cpp and cuda_stand_in.cpp), built beside the library, which loads them by file name (operators.cpp).
# Their names are defined on operators.cpp alone, so that switching AOTInductor or torchvision off or on recompiles
# that file (and package.cpp), not the whole library.
set(_torch_deploy_stand_ins "")
function(_torch_deploy_stand_in name soname source)
  add_library(torch_deploy_${name}_stand_in SHARED "${_torch_deploy_root}/src/${source}")
  set_target_properties(torch_deploy_${name}_stand_in PROPERTIES NO_SONAME ON)
  target_link_options(torch_deploy_${name}_stand_in PRIVATE "LINKER:-soname,${soname}")
  add_dependencies(torch_deploy torch_deploy_${name}_stand_in)
  string(TOUPPER "${name}" _macro)
  set_property(SOURCE "${_torch_deploy_root}/src/operators.cpp" APPEND PROPERTY COMPILE_DEFINITIONS
    "TORCH_DEPLOY_${_macro}_STAND_IN=\"$<TARGET_FILE_NAME:torch_deploy_${name}_stand_in>\"")
  set(_torch_deploy_stand_ins ${_torch_deploy_stand_ins} torch_deploy_${name}_stand_in PARENT_SCOPE)
endfunction()
if(TORCH_DEPLOY_WITH_AOTI OR TORCH_DEPLOY_torchvision_ops)
  _torch_deploy_stand_in(libtorch libtorch.so empty_stand_in.cpp)
endif()
if(TORCH_DEPLOY_WITH_AOTI)
  set_property(SOURCE "${_torch_deploy_root}/src/package.cpp" APPEND PROPERTY COMPILE_DEFINITIONS
    TORCH_DEPLOY_WITH_AOTI)
endif()
if(TORCH_DEPLOY_WITH_CUDA)  # on device.cpp alone: switching CUDA off or on recompiles that file only
  set_property(SOURCE "${_torch_deploy_root}/src/device.cpp" APPEND PROPERTY COMPILE_DEFINITIONS
    TORCH_DEPLOY_WITH_CUDA)
endif()

# --- torchvision's operators (when the exporting Python has torchvision) --------------------------------------
# Detectors call torchvision::nms and roi_align, which torchvision registers from its own C++ library: the runtime
# loads that very library (the exporting torchvision's, so the two always agree) when a model needs it, with the
# libraries of the wheel it needs beside it; a CUDA build uses the real libtorch_cuda, a CPU build stand-ins.
if(TORCH_DEPLOY_torchvision_ops)
  _torch_deploy_stand_in(python libtorch_python.so empty_stand_in.cpp)
  if(NOT TORCH_DEPLOY_WITH_CUDA)  # a CUDA build has linked the real ones
    _torch_deploy_stand_in(cuda libtorch_cuda.so cuda_stand_in.cpp)
    _torch_deploy_stand_in(c10_cuda libc10_cuda.so empty_stand_in.cpp)
  endif()
  string(REPLACE ";" ":" _torch_deploy_companions "${TORCH_DEPLOY_torchvision_companions}")
  set_property(SOURCE "${_torch_deploy_root}/src/operators.cpp" APPEND PROPERTY COMPILE_DEFINITIONS
    "TORCH_DEPLOY_TORCHVISION_OPS=\"${TORCH_DEPLOY_torchvision_ops}\""
    "TORCH_DEPLOY_TORCHVISION_VERSION=\"${TORCH_DEPLOY_torchvision_version}\""
    "TORCH_DEPLOY_TORCHVISION_COMPANIONS=\"${_torch_deploy_companions}\"")
  message(STATUS "TorchDeploy: torchvision ${TORCH_DEPLOY_torchvision_version}'s operators (detectors): ${TORCH_DEPLOY_torchvision_ops}")
else()
  message(STATUS "TorchDeploy: no torchvision beside the exporting Python: models calling its operators (detectors) are refused")
endif()

# torch_deploy_add_runner(<target> <sources>...): an executable linked to the runtime library (and so to libtorch,
# with the right C++ standard) that runs without LD_LIBRARY_PATH, also once installed.
function(torch_deploy_add_runner target)
  add_executable(${target} ${ARGN})
  target_link_libraries(${target} PRIVATE TorchDeploy::runtime)
  _torch_deploy_target_defaults(${target})
  set_property(TARGET ${target} APPEND PROPERTY INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}")
endfunction()

# torch_deploy_add_parity_test(<runner> MODEL <file> INPUT <file> EXPECTED <file> [NAME <test>]):
# a ctest test that passes only when the runner reproduces Python's output within the recorded tolerance.
# torch_deploy_add_parity_test(<runner> ARTIFACTS <folder> [NAME <test>]): the same for every format export.py
# wrote into the folder (its formats.txt, read when the test runs), and at the second batch size when there is one.
function(torch_deploy_add_parity_test runner)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "NAME;MODEL;INPUT;EXPECTED;ARTIFACTS" "")
  if(NOT arg_NAME)
    set(arg_NAME ${runner}_parity)
  endif()
  if(arg_ARTIFACTS)
    # The runtime's one parity driver (make verify's), from this very runtime: its folder's parent on PYTHONPATH.
    get_filename_component(_runtime_parent "${_torch_deploy_root}" DIRECTORY)
    add_test(NAME ${arg_NAME}
      COMMAND "${CMAKE_COMMAND}" -E env "PYTHONPATH=${_runtime_parent}"
              "${TORCH_DEPLOY_python}" -m torch_deploy verify --runner "$<TARGET_FILE:${runner}>"
              --artifacts "${arg_ARTIFACTS}"
      WORKING_DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}")
  else()
    add_test(NAME ${arg_NAME}
      COMMAND ${runner} "${arg_MODEL}" --input "${arg_INPUT}" --expect "${arg_EXPECTED}"
      WORKING_DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}")
  endif()
endfunction()

# torch_deploy_install([RUNNERS <target>...] [ARTIFACTS <folder>]): `cmake --install` puts the runtime library, its
# headers, the runners, the model artifacts (<datadir>/<project>/) and the CMake package TorchDeploy
# (<libdir>/cmake/TorchDeploy/), which records the libtorch this build used, so that an outside project builds with
# find_package(TorchDeploy CONFIG REQUIRED) without knowing where libtorch is.
function(torch_deploy_install)
  cmake_parse_arguments(PARSE_ARGV 0 arg "" "ARTIFACTS" "RUNNERS")
  include(CMakePackageConfigHelpers)
  set(_package_dir "${CMAKE_INSTALL_LIBDIR}/cmake/TorchDeploy")
  install(TARGETS torch_deploy EXPORT TorchDeployTargets
    LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}" ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}"
    RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}")
  if(_torch_deploy_stand_ins)  # loaded beside the library, by their file names
    install(TARGETS ${_torch_deploy_stand_ins} LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}")
  endif()
  if(TORCH_DEPLOY_torchvision_ops)  # looked for beside the library first (operators.cpp)
    install(FILES "${TORCH_DEPLOY_torchvision_ops}" DESTINATION "${CMAKE_INSTALL_LIBDIR}/torchvision")
    install(FILES ${TORCH_DEPLOY_torchvision_companions} DESTINATION "${CMAKE_INSTALL_LIBDIR}")
  endif()
  install(DIRECTORY "${_torch_deploy_root}/include/torch_deploy" DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
  install(EXPORT TorchDeployTargets NAMESPACE TorchDeploy:: DESTINATION "${_package_dir}")
  if(arg_RUNNERS)
    install(TARGETS ${arg_RUNNERS} RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}")
  endif()
  set(TORCH_DEPLOY_PROJECT "${PROJECT_NAME}")
  set(TORCH_DEPLOY_PROJECT_VERSION "${PROJECT_VERSION}")
  configure_file("${CMAKE_CURRENT_FUNCTION_LIST_DIR}/TorchDeployInstalledConfig.cmake.in"
    "${CMAKE_CURRENT_BINARY_DIR}/TorchDeployConfig.cmake" @ONLY)
  write_basic_package_version_file("${CMAKE_CURRENT_BINARY_DIR}/TorchDeployConfigVersion.cmake"
    VERSION "${TORCH_DEPLOY_RUNTIME_VERSION}" COMPATIBILITY SameMinorVersion)
  install(FILES "${CMAKE_CURRENT_BINARY_DIR}/TorchDeployConfig.cmake"
    "${CMAKE_CURRENT_BINARY_DIR}/TorchDeployConfigVersion.cmake"
    "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/TorchDeployLibtorch.cmake"
    DESTINATION "${_package_dir}")
  if(arg_ARTIFACTS)
    # The exported files are made by Python (make export), not by the build: looked for when installing, through
    # the link export.py keeps to its latest export.
    install(CODE "
      file(REAL_PATH \"${arg_ARTIFACTS}\" _artifacts)
      file(GLOB _files \"\${_artifacts}/*.pt\" \"\${_artifacts}/*.pt2\" \"\${_artifacts}/formats.txt\"
           \"\${_artifacts}/tuned.txt\")
      if(NOT EXISTS \"\${_artifacts}/input.pt\")
        message(FATAL_ERROR \"TorchDeploy: ${arg_ARTIFACTS}/input.pt is missing; run make export before installing\")
      endif()
      file(INSTALL \${_files} DESTINATION \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_DATADIR}/${PROJECT_NAME}\")")
  endif()
  _torch_deploy_bundle("${arg_RUNNERS}")
endfunction()

# The bundle (make package, or cpack in the build folder): dist/<project>-<version>-linux-<arch>.tar.gz, the install
# above plus, in the install component "bundle" (which a plain cmake --install leaves out), what makes it run and
# build where there is no Python or torch: the shared libraries it loads (TorchDeployBundle.cmake), libtorch's headers
# (the library's API speaks at::Tensor), the example application and a run guide. The CMake package finds the
# libtorch parts beside itself (TorchDeployConfig.cmake).
function(_torch_deploy_bundle runners)
  set(_component COMPONENT bundle EXCLUDE_FROM_ALL)
  set(_guide_dir "${CMAKE_INSTALL_DATADIR}/${PROJECT_NAME}")
  install(DIRECTORY "${TORCH_DEPLOY_prefix}/include/" DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}" ${_component})
  install(DIRECTORY "${_torch_deploy_root}/examples/embed" DESTINATION "${_guide_dir}/examples" ${_component})
  configure_file("${CMAKE_CURRENT_FUNCTION_LIST_DIR}/bundle-README.md.in"
    "${CMAKE_CURRENT_BINARY_DIR}/bundle-README.md" @ONLY)
  install(FILES "${CMAKE_CURRENT_BINARY_DIR}/bundle-README.md" DESTINATION "${_guide_dir}" RENAME README.md
    ${_component})
  set(_runner_paths "")
  foreach(_runner IN LISTS runners)
    list(APPEND _runner_paths "${CMAKE_INSTALL_BINDIR}/$<TARGET_FILE_NAME:${_runner}>")
  endforeach()
  install(CODE "
    set(TORCH_DEPLOY_BUNDLE_RUNNERS \"${_runner_paths}\")
    set(TORCH_DEPLOY_BUNDLE_LIBRARY \"${CMAKE_INSTALL_LIBDIR}/$<TARGET_FILE_NAME:torch_deploy>\")
    set(TORCH_DEPLOY_BUNDLE_LIBDIR \"${CMAKE_INSTALL_LIBDIR}\")
    set(TORCH_DEPLOY_BUNDLE_SEARCH \"${TORCH_DEPLOY_prefix}/lib\")
    set(TORCH_DEPLOY_BUNDLE_SYSTEM \"${CMAKE_CURRENT_FUNCTION_LIST_DIR}/system-libraries.txt\")" ${_component})
  install(SCRIPT "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/TorchDeployBundle.cmake" ${_component})

  # One archive holding both components, the ordinary one first, under one top folder named like the archive.
  set(CPACK_GENERATOR TGZ)
  set(CPACK_PACKAGE_NAME "${PROJECT_NAME}")
  set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
  string(TOLOWER "${CMAKE_SYSTEM_NAME}-${CMAKE_SYSTEM_PROCESSOR}" _platform)
  set(CPACK_PACKAGE_FILE_NAME "${PROJECT_NAME}-${PROJECT_VERSION}-${_platform}")
  set(CPACK_PACKAGE_DIRECTORY "${PROJECT_SOURCE_DIR}/dist")
  set(CPACK_INSTALL_CMAKE_PROJECTS
    "${PROJECT_BINARY_DIR};${PROJECT_NAME};Unspecified;/" "${PROJECT_BINARY_DIR};${PROJECT_NAME};bundle;/")
  set(CPACK_INCLUDE_TOPLEVEL_DIRECTORY ON)
  include(CPack)
endfunction()
