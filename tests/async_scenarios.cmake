# Async scenarios (tests/async_scenarios/*.scn) against the reference runner.
#
# cogen-async-scenario runs an async scenario (the language of
# ../shared/semantics/ASYNC-SCENARIO.md, beside the repository) on cogen's
# event loop; each file is one ctest test, ascn.<name>, that compares what
# it prints with <name>.expected, recorded from the reference runner
# (async_ref.py on CPython 3.13.0; tests/async_scenarios/regen.sh
# re-records them). A scenario with a statement the loop does not offer
# yet makes the runner exit with status 3, which ctest shows as skipped.
#
# ascn.reference checks that the recorded traces are still what async_ref.py
# prints; it is skipped without the reference runner or CPython 3.13.0.
add_executable(cogen-async-scenario async_scenario.c)
target_link_libraries(cogen-async-scenario cogen::cogen)
target_compile_options(cogen-async-scenario PRIVATE ${COGEN_WARNINGS})

if(NOT COGEN_ASYNC_SCENARIO_REF)
  set(COGEN_ASYNC_SCENARIO_REF ${PROJECT_SOURCE_DIR}/../shared/semantics/async_ref.py)
endif()

file(GLOB _ascn_files CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/async_scenarios/*.scn)
# A cross build (or valgrind) runs the runner through its emulator.
string(REPLACE ";" " " _ascn_emu "${CMAKE_CROSSCOMPILING_EMULATOR}")
foreach(_ascn ${_ascn_files})
  get_filename_component(_name ${_ascn} NAME_WE)
  add_test(NAME ascn.${_name}
    COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/async_scenarios/compare.sh
      $<TARGET_FILE:cogen-async-scenario> ${_ascn} ${CMAKE_CURRENT_BINARY_DIR}/async-scenario-diffs "${_ascn_emu}")
  set_tests_properties(ascn.${_name} PROPERTIES TIMEOUT 60 LABELS async-scenario SKIP_RETURN_CODE 3)
endforeach()

# The scenarios with a timeout block again, the block being a
# cg_timeout_call (COGEN_SCENARIO_TIMEOUT=call): its lazily armed timer
# must give the same traces.
add_test(NAME ascn.timeout_call
  COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/async_scenarios/timeout_call.sh
    $<TARGET_FILE:cogen-async-scenario> ${CMAKE_CURRENT_SOURCE_DIR}/async_scenarios
    ${CMAKE_CURRENT_BINARY_DIR}/async-scenario-diffs "${_ascn_emu}")
set_tests_properties(ascn.timeout_call PROPERTIES TIMEOUT 300 LABELS async-scenario)

add_test(NAME ascn.reference
  COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/async_scenarios/regen.sh --check ${COGEN_ASYNC_SCENARIO_REF})
set_tests_properties(ascn.reference PROPERTIES TIMEOUT 300 LABELS async-scenario SKIP_RETURN_CODE 3)
