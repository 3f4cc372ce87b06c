# cmake -DPYTHON=... -DTWIN=.../name.py -P sync_twin_compare.cmake
# Runs the twin and compares its output with name.expected.
get_filename_component(_dir ${TWIN} DIRECTORY)
get_filename_component(_name ${TWIN} NAME_WE)
execute_process(COMMAND ${PYTHON} ${TWIN} WORKING_DIRECTORY ${_dir}
  OUTPUT_VARIABLE _out ERROR_VARIABLE _err RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "${_name}.py failed (${_rc}):\n${_err}")
endif()
file(READ ${_dir}/${_name}.expected _want)
if(NOT _out STREQUAL _want)
  message(FATAL_ERROR "${_name}.py on CPython no longer prints ${_name}.expected "
    "(remake it with tests/loop/sync_regen.sh and review the diff)\n--- expected\n${_want}--- CPython\n${_out}")
endif()
