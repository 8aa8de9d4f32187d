# TorchDeployLibtorch.cmake: the imported target TorchDeploy::torch, everything a target needs to compile and link
# against one libtorch. Shared by the plugin (TorchDeploy.cmake, after discovery) and the installed package
# (TorchDeployConfig.cmake, with the libtorch recorded at build time), so that both link libtorch the same way.
#
#   torch_deploy_import_libtorch(PREFIX <dir> CXX_STANDARD <17|20> [CUDA <version>] [LINK_CUDA <ON|OFF>]
#                                [CXX_FLAGS <flags>] [CPU_LIBRARIES_ONLY <ON|OFF>])
#
# PREFIX is a libtorch folder or a torch package folder; CUDA the CUDA version of a CUDA build (empty for a CPU
# build); LINK_CUDA whether to link libtorch's CUDA libraries (needs the CUDA toolkit); CXX_FLAGS the flags of
# TorchConfig.cmake's TORCH_CXX_FLAGS (e.g. the pre-2.7 wheels' -D_GLIBCXX_USE_CXX11_ABI=0); CPU_LIBRARIES_ONLY
# imports libtorch_cpu and c10 directly, as for a CUDA wheel: a bundle (make package) holds those and no TorchConfig.

include_guard(GLOBAL)
if(POLICY CMP0174)  # CMake 3.31+: an empty keyword value (CUDA "" for a CPU build) is a value, without a warning
  cmake_policy(SET CMP0174 NEW)
endif()

function(torch_deploy_import_libtorch)
  cmake_parse_arguments(PARSE_ARGV 0 arg "" "PREFIX;CXX_STANDARD;CUDA;LINK_CUDA;CXX_FLAGS;CPU_LIBRARIES_ONLY" "")
  add_library(TorchDeploy::torch INTERFACE IMPORTED)
  if(arg_CPU_LIBRARIES_ONLY OR (arg_CUDA AND NOT arg_LINK_CUDA))
    # A CUDA wheel's TorchConfig.cmake insists on finding the CUDA toolkit, which most users do not have and a
    # CPU program does not need ("Caffe2: CUDA cannot be found", pytorch#73427). Import the CPU half directly:
    # libtorch_cpu holds every CPU kernel and the TorchScript runtime; libtorch_cuda is never loaded.
    # (Plain paths, not find_library(): its cached results would outlive a switch to another libtorch.)
    foreach(_name torch_cpu c10)
      set(_${_name} "${arg_PREFIX}/lib/${CMAKE_SHARED_LIBRARY_PREFIX}${_name}${CMAKE_SHARED_LIBRARY_SUFFIX}")
      if(NOT EXISTS "${_${_name}}")
        message(FATAL_ERROR "TorchDeploy: ${_${_name}} is missing; this libtorch looks incomplete, reinstall it "
          "(pip install --force-reinstall torch) or point TORCH_DEPLOY_LIBTORCH at another one")
      endif()
    endforeach()
    target_include_directories(TorchDeploy::torch SYSTEM INTERFACE
      "${arg_PREFIX}/include" "${arg_PREFIX}/include/torch/csrc/api/include")
    # --no-as-needed: libtorch_cpu registers its operators in static initialisers; the linker must keep it.
    target_link_libraries(TorchDeploy::torch INTERFACE
      "-Wl,--no-as-needed,\"${_torch_cpu}\" -Wl,--as-needed" "${_c10}")
    if(arg_CXX_FLAGS)
      separate_arguments(_flags UNIX_COMMAND "${arg_CXX_FLAGS}")
      target_compile_options(TorchDeploy::torch INTERFACE ${_flags})
    endif()
  else()
    set(Torch_DIR "${arg_PREFIX}/share/cmake/Torch")
    set(Caffe2_DIR "${arg_PREFIX}/share/cmake/Caffe2")
    find_package(Torch REQUIRED CONFIG)
    # Link all of ${TORCH_LIBRARIES}: naming single libraries lets the linker drop torch_cuda (pytorch#36437).
    # (TorchConfig.cmake puts TORCH_CXX_FLAGS on its torch target, so they come along.)
    target_link_libraries(TorchDeploy::torch INTERFACE "${TORCH_LIBRARIES}")
  endif()
  # The standard libtorch's headers need, as a usage requirement: whoever links libtorch through this target gets it.
  target_compile_features(TorchDeploy::torch INTERFACE cxx_std_${arg_CXX_STANDARD})
endfunction()
