# TorchDeployConfig.cmake: the torch_deploy runtime as a CMake package of sources. A project finds it the way pybind11
# is found from its wheel, in the Python it exports with (`python -m torch_deploy --cmakedir`), or in the copy it
# carries (tsgen new --vendor: third_party/torch_deploy/cmake), then:
#
#   find_package(TorchDeploy 0.2 CONFIG REQUIRED)   # finds libtorch; defines TorchDeploy::runtime and the functions
#   torch_deploy_add_runner(ts-infer src/ts-infer.cpp)            # of TorchDeploy.cmake beside this file
#
# The library is compiled in the project's build, against the libtorch found there (nothing is prebuilt).
if(TARGET TorchDeploy::runtime)  # found already (by another find_package in the same build)
  return()
endif()
get_filename_component(TorchDeploy_ROOT "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
message(STATUS "TorchDeploy: runtime ${TorchDeploy_VERSION} from ${TorchDeploy_ROOT}")
include("${CMAKE_CURRENT_LIST_DIR}/TorchDeploy.cmake")
