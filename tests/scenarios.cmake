# Scenario files (tests/scenarios/*.scn) against the reference runner.
#
# Each file is one ctest test, scn.<name>: cogen-scenario must print what
# the reference runner (../shared/semantics/scenario_ref.py, beside the
# repository, not in it) prints on CPython 3.11, the reference version;
# the checked-in <name>.trace (or <name>.err for an invalid scenario),
# recorded from it, must equal it too. Without ../shared or without a
# CPython 3.11 (a user's clone), the checked-in files are the expectation:
# the comparison is a cmake -P script, no Python needed.
if(NOT COGEN_SCENARIO_REF)
  set(COGEN_SCENARIO_REF ${PROJECT_SOURCE_DIR}/../shared/semantics/scenario_ref.py)
endif()
if(NOT DEFINED Python3_EXECUTABLE)
  find_package(Python3 COMPONENTS Interpreter QUIET)
endif()
set(_scn_python "")
if(EXISTS ${COGEN_SCENARIO_REF} AND Python3_EXECUTABLE)
  execute_process(COMMAND ${Python3_EXECUTABLE} -c "import sys; print('%d.%d' % sys.version_info[:2])"
    OUTPUT_VARIABLE _scn_pyver OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _scn_rc)
  if(_scn_rc EQUAL 0 AND (_scn_pyver STREQUAL "3.11" OR _scn_pyver STREQUAL "3.10"))
    set(_scn_python ${Python3_EXECUTABLE})
    message(STATUS "Scenarios: compared with the reference runner (${Python3_EXECUTABLE}, ${_scn_pyver})")
  else()
    message(STATUS "Scenarios: the reference runner needs CPython 3.10 or 3.11 (found ${_scn_pyver}); "
      "comparing with the checked-in traces")
  endif()
else()
  message(STATUS "Scenarios: no reference runner or no python3; comparing with the checked-in traces")
endif()

file(GLOB _scn_files CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/scenarios/*.scn)
foreach(_scn ${_scn_files})
  get_filename_component(_name ${_scn} NAME_WE)
  # A cross build runs the runner through its emulator (qemu).
  string(REPLACE ";" "|" _scn_emu "${CMAKE_CROSSCOMPILING_EMULATOR}")
  set(_args -DRUNNER=$<TARGET_FILE:cogen-scenario> -DSCENARIO=${_scn}
    "-DEMULATOR=${_scn_emu}" -DOUT=${CMAKE_CURRENT_BINARY_DIR}/scenario-diffs)
  if(_scn_python)
    list(APPEND _args -DPYTHON=${_scn_python} -DREF=${COGEN_SCENARIO_REF})
  endif()
  add_test(NAME scn.${_name}
    COMMAND ${CMAKE_COMMAND} ${_args} -P ${CMAKE_CURRENT_SOURCE_DIR}/scenarios/compare.cmake)
  set_tests_properties(scn.${_name} PROPERTIES TIMEOUT 120 LABELS scenario)
endforeach()

# A file that is not UTF-8: the reference cannot decode it (it stops with a
# UnicodeDecodeError); the runner rejects it as an invalid scenario, with the
# line and the byte (not a .scn file: there is no reference output for it).
add_test(NAME scn.invalid-not-utf8 COMMAND cogen-scenario ${CMAKE_CURRENT_SOURCE_DIR}/scenarios/not-utf8.input)
set_tests_properties(scn.invalid-not-utf8 PROPERTIES LABELS scenario TIMEOUT 60
  PASS_REGULAR_EXPRESSION "^scenario error: line 2: not UTF-8 \\(byte 0xe9\\)\n$")
