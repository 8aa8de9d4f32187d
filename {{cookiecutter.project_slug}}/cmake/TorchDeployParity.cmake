# TorchDeployParity.cmake: the ctest parity test of an artifacts folder (torch_deploy_add_parity_test(... ARTIFACTS)),
# run as `cmake -DRUNNER=<runner> -DARTIFACTS=<folder> -P TorchDeployParity.cmake`: the runner on the reference input
# against each exported format's reference outputs, as listed in <folder>/formats.txt by export.py (and on
# input_batch.pt against the outputs at the second batch size, when the line names them), and model.pt in bf16 against
# expected_bf16.pt when the project's precision is bf16. Fails on the first failure.
if(NOT EXISTS "${ARTIFACTS}/formats.txt")
  message(FATAL_ERROR "TorchDeploy: ${ARTIFACTS}/formats.txt is missing; run make export")
endif()
file(STRINGS "${ARTIFACTS}/formats.txt" _lines REGEX "^[^#]")
foreach(_line IN LISTS _lines)
  # <format> <model file> <reference outputs> [<reference outputs at the second batch size>]
  separate_arguments(_fields UNIX_COMMAND "${_line}")
  list(GET _fields 1 _model)
  list(GET _fields 2 _expected)
  set(_checks "input.pt:${_expected}")
  if(_model STREQUAL "model.pt" AND EXISTS "${ARTIFACTS}/expected_bf16.pt")
    list(APPEND _checks "input.pt:expected_bf16.pt")  # ts-infer takes bf16 from the file
  endif()
  list(LENGTH _fields _count)
  if(_count GREATER 3)
    list(GET _fields 3 _expected_batch)
    list(APPEND _checks "input_batch.pt:${_expected_batch}")
  endif()
  foreach(_check IN LISTS _checks)
    string(REPLACE ":" ";" _pair "${_check}")
    list(GET _pair 0 _input)
    list(GET _pair 1 _reference)
    execute_process(COMMAND "${RUNNER}" "${ARTIFACTS}/${_model}" --input "${ARTIFACTS}/${_input}"
                            --expect "${ARTIFACTS}/${_reference}"
                    OUTPUT_VARIABLE _output ERROR_VARIABLE _output RESULT_VARIABLE _result)
    string(REGEX MATCH "parity[^\n]*: [^\n]*" _parity "${_output}")
    if(NOT _result EQUAL 0)
      message(FATAL_ERROR "${_model} on ${_input}: ${_output}")
    endif()
    message(STATUS "${_model} on ${_input}: ${_parity}")
  endforeach()
endforeach()
