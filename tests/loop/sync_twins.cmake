# The Python twins of tests/test_loop_sync.c against their checked-in
# expectations: each tests/loop/sync_*.py and queue_*.py run on CPython
# 3.13 must still print its <name>.expected (test twin.<name>). So an
# expectation cannot drift from what CPython prints, and a twin edited
# without sync_regen.sh fails here.
#
# Needs CPython 3.13: -DCOGEN_PYTHON313=/path/to/python3.13, or a
# python3.13 on PATH that runs. Without one (a user's clone), nothing is
# registered: the C cases compare with the checked-in files anyway.
# Where test_loop_sync finds the expectations.
if(TARGET test_loop_sync)
  target_compile_definitions(test_loop_sync PRIVATE COGEN_LOOP_TWINS="${CMAKE_CURRENT_LIST_DIR}")
endif()

if(NOT COGEN_PYTHON313)
  find_program(_cg_py313 NAMES python3.13)
  if(_cg_py313)
    set(COGEN_PYTHON313 ${_cg_py313})
  endif()
endif()
set(_cg_twin_py "")
if(COGEN_PYTHON313)
  execute_process(COMMAND ${COGEN_PYTHON313} -c "import sys; print('%d.%d' % sys.version_info[:2])"
    OUTPUT_VARIABLE _cg_v OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE _cg_rc)
  if(_cg_rc EQUAL 0 AND _cg_v STREQUAL "3.13")
    set(_cg_twin_py ${COGEN_PYTHON313})
  endif()
endif()
if(NOT _cg_twin_py)
  message(STATUS "Loop sync twins: no CPython 3.13 (set COGEN_PYTHON313); the checked-in expectations are used as they are")
  return()
endif()
message(STATUS "Loop sync twins: checked against ${_cg_twin_py}")
file(GLOB _cg_twins CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/sync_*.py ${CMAKE_CURRENT_LIST_DIR}/queue_*.py)
foreach(_t ${_cg_twins})
  get_filename_component(_n ${_t} NAME_WE)
  add_test(NAME twin.${_n} COMMAND ${CMAKE_COMMAND} -DPYTHON=${_cg_twin_py} -DTWIN=${_t}
    -P ${CMAKE_CURRENT_LIST_DIR}/sync_twin_compare.cmake)
  set_tests_properties(twin.${_n} PROPERTIES TIMEOUT 60 LABELS twin)
endforeach()
