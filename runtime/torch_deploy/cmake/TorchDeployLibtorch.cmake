# TorchDeployLibtorch.cmake: the imported target TorchDeploy::torch, everything a target needs to compile and link
# against one libtorch. Shared by the plugin (TorchDeploy.cmake, after discovery) and the installed package
# (TorchDeployConfig.cmake, with the libtorch recorded at build time), so that both link libtorch the same way.
#
#   torch_deploy_import_libtorch(PREFIX <dir> CXX_STANDARD <17|20> [CUDA <version>] [LINK_CUDA <ON|OFF>]
#                                [CXX_FLAGS <flags>] [DIRECT <ON|OFF>])
#
# PREFIX is a libtorch folder or a torch package folder; CUDA the CUDA version of a CUDA build (empty for a CPU
# build); LINK_CUDA whether to link libtorch's CUDA libraries, to run models on GPUs; CXX_FLAGS the flags of
# TorchConfig.cmake's TORCH_CXX_FLAGS (e.g. the pre-2.7 wheels' -D_GLIBCXX_USE_CXX11_ABI=0); DIRECT imports the
# libraries directly, as for a CUDA build: a bundle (make package) holds them and no TorchConfig.

include_guard(GLOBAL)
if(POLICY CMP0174)  # CMake 3.31+: an empty keyword value (CUDA "" for a CPU build) is a value, without a warning
  cmake_policy(SET CMP0174 NEW)
endif()

function(torch_deploy_import_libtorch)
  cmake_parse_arguments(PARSE_ARGV 0 arg "" "PREFIX;CXX_STANDARD;CUDA;LINK_CUDA;CXX_FLAGS;DIRECT" "")
  add_library(TorchDeploy::torch INTERFACE IMPORTED)
  if(arg_DIRECT OR arg_CUDA)
    # A CUDA wheel's TorchConfig.cmake insists on finding the CUDA toolkit, which most users do not have and no build
    # against the wheel needs ("Caffe2: CUDA cannot be found", pytorch#73427), and then links the toolkit's libraries
    # by name (-lCUDA_nvrtc_LIBRARY-NOTFOUND). Import the libraries directly: libtorch_cpu (every CPU kernel and the
    # TorchScript runtime) and c10; to run models on GPUs also libtorch_cuda (the CUDA kernels) and c10_cuda, which
    # find the CUDA libraries of the wheel (nvidia/*/lib) through their own RPATH. A CPU build never loads those.
    # (Plain paths, not find_library(): its cached results would outlive a switch to another libtorch.)
    set(_names torch_cpu c10)
    if(arg_LINK_CUDA)
      list(APPEND _names torch_cuda c10_cuda)
    endif()
    set(_registering "")  # the libraries that register their operators when loaded
    set(_plain "")
    foreach(_name IN LISTS _names)
      set(_file "${arg_PREFIX}/lib/${CMAKE_SHARED_LIBRARY_PREFIX}${_name}${CMAKE_SHARED_LIBRARY_SUFFIX}")
      if(NOT EXISTS "${_file}")
        message(FATAL_ERROR "TorchDeploy: ${_file} is missing; this libtorch looks incomplete, reinstall it "
          "(pip install --force-reinstall torch) or point TORCH_DEPLOY_LIBTORCH at another one")
      endif()
      if(_name MATCHES "^torch_")
        string(APPEND _registering ",\"${_file}\"")
      else()
        list(APPEND _plain "${_file}")
      endif()
    endforeach()
    target_include_directories(TorchDeploy::torch SYSTEM INTERFACE
      "${arg_PREFIX}/include" "${arg_PREFIX}/include/torch/csrc/api/include")
    # --no-as-needed: libtorch_cpu and libtorch_cuda register their operators in static initialisers, and nothing
    # names them otherwise: the linker must keep them (a dropped libtorch_cuda is why torch::cuda::is_available()
    # answers false in so many programs, pytorch#36437).
    target_link_libraries(TorchDeploy::torch INTERFACE "-Wl,--no-as-needed${_registering} -Wl,--as-needed" ${_plain})
    if(arg_CXX_FLAGS)
      separate_arguments(_flags UNIX_COMMAND "${arg_CXX_FLAGS}")
      target_compile_options(TorchDeploy::torch INTERFACE ${_flags})
    endif()
  else()
    set(Torch_DIR "${arg_PREFIX}/share/cmake/Torch")
    set(Caffe2_DIR "${arg_PREFIX}/share/cmake/Caffe2")
    find_package(Torch REQUIRED CONFIG)
    # Link all of ${TORCH_LIBRARIES}: naming single libraries lets the linker drop some of them (pytorch#36437).
    # (TorchConfig.cmake puts TORCH_CXX_FLAGS on its torch target, so they come along.)
    target_link_libraries(TorchDeploy::torch INTERFACE "${TORCH_LIBRARIES}")
  endif()
  # The standard libtorch's headers need, as a usage requirement: whoever links libtorch through this target gets it.
  target_compile_features(TorchDeploy::torch INTERFACE cxx_std_${arg_CXX_STANDARD})
endfunction()
