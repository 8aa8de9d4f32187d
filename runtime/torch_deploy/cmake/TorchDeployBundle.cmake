# TorchDeployBundle.cmake: run by `cmake --install` for the component "bundle" (make package, through CPack), after
# the ordinary install into the same folder. It makes that folder a bundle that runs where there is no Python or
# torch: the shared libraries the runners and the library load, found as their dependency closure and copied into
# lib/, and every RPATH pointing inside the bundle. The C and C++ runtime and the CUDA driver stay the machine's
# (cmake/system-libraries.txt). Set by torch_deploy_install() before this file runs:
#   TORCH_DEPLOY_BUNDLE_RUNNERS    the runners' paths below the install prefix (bin/ts-infer)
#   TORCH_DEPLOY_BUNDLE_LIBRARY    the runtime library's path below the install prefix (lib/libtorch_deploy.so.0.2.0)
#   TORCH_DEPLOY_BUNDLE_LIBDIR     where the libraries go (lib)
#   TORCH_DEPLOY_BUNDLE_SEARCH     where the build found libtorch's libraries, searched after each file's own RPATH
#   TORCH_DEPLOY_BUNDLE_SYSTEM     the file of regular expressions naming the system's libraries

set(_root "$ENV{DESTDIR}${CMAKE_INSTALL_PREFIX}")
set(_libdir "${_root}/${TORCH_DEPLOY_BUNDLE_LIBDIR}")
file(STRINGS "${TORCH_DEPLOY_BUNDLE_SYSTEM}" _system REGEX "^[^#]")
list(TRANSFORM TORCH_DEPLOY_BUNDLE_RUNNERS PREPEND "${_root}/" OUTPUT_VARIABLE _runners)
set(_library "${_root}/${TORCH_DEPLOY_BUNDLE_LIBRARY}")

# Resolved as the dynamic loader will on the build machine: through each file's RPATH (the runners' still name the
# libtorch they were built with), so the closure is what actually runs there, CUDA wheel's libcudart included.
function(_torch_deploy_closure result)
  file(GET_RUNTIME_DEPENDENCIES
    ${ARGN}
    DIRECTORIES ${TORCH_DEPLOY_BUNDLE_SEARCH}
    PRE_EXCLUDE_REGEXES ${_system}
    RESOLVED_DEPENDENCIES_VAR _resolved
    UNRESOLVED_DEPENDENCIES_VAR _unresolved)
  if(_unresolved)
    string(REPLACE ";" ", " _unresolved "${_unresolved}")
    message(FATAL_ERROR "TorchDeploy: cannot find ${_unresolved}, which the runner needs; the bundle would not run "
      "(is the libtorch this build used still installed? make build, then make package)")
  endif()
  set(${result} ${_resolved} PARENT_SCOPE)
endfunction()
_torch_deploy_closure(_resolved EXECUTABLES ${_runners} LIBRARIES "${_library}")

# A build that runs models on GPUs: the libraries that libtorch's CUDA libraries open by name while running (dlopen),
# which no NEEDED entry names, come too, with what they need. Pairs of a library of the closure and the files beside
# it that it loads: cuDNN's sub-libraries (its graph API, engines and kernels), NVRTC's builtins (TorchScript compiles
# its fused GPU kernels with NVRTC), and libtorch's linear algebra on the GPU (torch.linalg, with cuSOLVER).
set(_loaded_by_name
  "^libcudnn\\.so\\.[0-9]+$" "libcudnn_*.so.*"
  "^libnvrtc\\.so\\.[0-9]+$" "libnvrtc-builtins.so.*"
  "^libtorch_cuda\\.so$" "libtorch_cuda_linalg.so")
set(_loaded "")
while(_loaded_by_name)
  list(POP_FRONT _loaded_by_name _loader _pattern)
  foreach(_file IN LISTS _resolved)
    get_filename_component(_name "${_file}" NAME)
    if(_name MATCHES "${_loader}")
      get_filename_component(_folder "${_file}" DIRECTORY)
      file(GLOB _found "${_folder}/${_pattern}")
      list(APPEND _loaded ${_found})
    endif()
  endforeach()
endwhile()
if(_loaded)
  list(REMOVE_DUPLICATES _loaded)
  _torch_deploy_closure(_needed LIBRARIES ${_loaded})
  list(APPEND _resolved ${_loaded} ${_needed})
  list(REMOVE_DUPLICATES _resolved)
endif()

foreach(_file IN LISTS _resolved)
  cmake_path(IS_PREFIX _root "${_file}" NORMALIZE _installed)  # the runtime library itself: installed already
  if(_installed)
    continue()
  endif()
  # Under the name the loader asks for, as a file (a link's target would keep its versioned name only).
  get_filename_component(_name "${_file}" NAME)
  file(COPY_FILE "${_file}" "${_libdir}/${_name}")
  # libtorch's libraries name their siblings in the wheel (../../nvidia/...): in the bundle, their siblings are here.
  unset(_rpath)  # READ_ELF leaves a variable alone when the file has no such entry
  unset(_runpath)
  file(READ_ELF "${_libdir}/${_name}" RPATH _rpath RUNPATH _runpath)
  if(_rpath OR _runpath)
    file(RPATH_SET FILE "${_libdir}/${_name}" NEW_RPATH "$ORIGIN")
  endif()
endforeach()

# No path of the build machine stays in the bundle: a folder of the same name elsewhere must not be searched.
foreach(_runner IN LISTS _runners)
  file(RPATH_SET FILE "${_runner}" NEW_RPATH "$ORIGIN/../${TORCH_DEPLOY_BUNDLE_LIBDIR}")
endforeach()
file(RPATH_SET FILE "${_library}" NEW_RPATH "$ORIGIN")
