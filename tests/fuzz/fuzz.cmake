# Fuzzing: differential (random scenarios, cogen-scenario against an oracle)
# and coverage-guided (libFuzzer on the scenario runner).
#
# ctest:
#   difffuzz.0 .. difffuzz.7   2,400 generated scenarios from fixed seeds
#                               (0..2399), 300 per test so that they run in
#                               parallel, against the reference runner on
#                               CPython 3.10/3.11 or else tests/fuzz/oracle.py
#   difffuzz.mutants           odd and invalid variants of 200 of them
#                               (parser and messages)
#   difffuzz.oracle            oracle.py against the reference runner (only
#                               with ../shared and CPython 3.10/3.11)
#   fuzz.replay                the libFuzzer entry on the seed corpus and on
#                               tests/fuzz/regress, without libFuzzer
# Without python3 the difffuzz tests are reported as skipped.
#
# -DCOGEN_LIBFUZZER=ON (clang; tests/fuzz/libfuzzer.sh sets it up, `make
# fuzz`) adds cogen-scenario-libfuzzer.
option(COGEN_LIBFUZZER "Build the libFuzzer target cogen-scenario-libfuzzer (clang)" OFF)

set(_fz ${CMAKE_CURRENT_SOURCE_DIR}/fuzz)
if(NOT COGEN_SCENARIO_REF)
  set(COGEN_SCENARIO_REF ${PROJECT_SOURCE_DIR}/../shared/semantics/scenario_ref.py)
endif()
if(NOT DEFINED Python3_EXECUTABLE)
  find_package(Python3 3.8 COMPONENTS Interpreter QUIET)
endif()

if(Python3_EXECUTABLE)
  set(_fz_common ${Python3_EXECUTABLE} ${_fz}/difffuzz.py --ref ${COGEN_SCENARIO_REF}
    --save ${CMAKE_CURRENT_BINARY_DIR}/difffuzz-failures --max-report 5)
  foreach(_i RANGE 0 7)
    math(EXPR _start "${_i} * 300")
    add_test(NAME difffuzz.${_i} COMMAND ${_fz_common} --runner $<TARGET_FILE:cogen-scenario>
      --start ${_start} --count 300)
    set_tests_properties(difffuzz.${_i} PROPERTIES TIMEOUT 600 LABELS fuzz)
  endforeach()
  add_test(NAME difffuzz.mutants COMMAND ${_fz_common} --runner $<TARGET_FILE:cogen-scenario>
    --start 5000 --count 200 --mutate 2)
  set_tests_properties(difffuzz.mutants PROPERTIES TIMEOUT 600 LABELS fuzz)
  if(CMAKE_CROSSCOMPILING_EMULATOR)
    # The driver starts the runner itself: through the emulator (qemu).
    string(JOIN " " _fz_emu ${CMAKE_CROSSCOMPILING_EMULATOR})
    foreach(_t difffuzz.0 difffuzz.1 difffuzz.2 difffuzz.3 difffuzz.4 difffuzz.5 difffuzz.6 difffuzz.7 difffuzz.mutants)
      set_property(TEST ${_t} APPEND PROPERTY ENVIRONMENT "COGEN_TEST_WRAPPER=${_fz_emu}")
    endforeach()
  endif()
  if(EXISTS ${COGEN_SCENARIO_REF})
    add_test(NAME difffuzz.oracle COMMAND ${_fz_common} --check-oracle --start 0 --count 1000 --mutate 1)
    set_tests_properties(difffuzz.oracle PROPERTIES TIMEOUT 600 LABELS fuzz)
  endif()
else()
  add_test(NAME difffuzz.skipped COMMAND sh -c
    "echo 'difffuzz: SKIPPED: no python3 (3.8 or newer) was found when configuring; the differential fuzz tests need it'; exit 77")
  set_tests_properties(difffuzz.skipped PROPERTIES SKIP_RETURN_CODE 77 LABELS fuzz)
endif()

# The fuzz entry without libFuzzer, replaying files.
add_executable(cogen-scenario-replay ${_fz}/fuzz_scenario.c ${_fz}/replay.c)
target_link_libraries(cogen-scenario-replay cogen::cogen)
target_compile_options(cogen-scenario-replay PRIVATE ${COGEN_WARNINGS})
# Inputs: the scenario files (the seed corpus) and tests/fuzz/regress.
# tests/scenarios/regress-* are left to their scn.* tests: they are library
# bugs found by difffuzz, one of which hangs until it is fixed.
file(GLOB _fz_inputs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/scenarios/*.scn)
list(FILTER _fz_inputs EXCLUDE REGEX "/regress-[^/]*$")
add_test(NAME fuzz.replay COMMAND cogen-scenario-replay ${_fz_inputs} ${_fz}/regress)
set_tests_properties(fuzz.replay PROPERTIES TIMEOUT 600 LABELS fuzz)

if(COGEN_LIBFUZZER)
  add_executable(cogen-scenario-libfuzzer ${_fz}/fuzz_scenario.c)
  target_link_libraries(cogen-scenario-libfuzzer cogen::cogen)
  target_compile_options(cogen-scenario-libfuzzer PRIVATE ${COGEN_WARNINGS} -fsanitize=fuzzer)
  target_link_options(cogen-scenario-libfuzzer PRIVATE -fsanitize=fuzzer)
endif()

# The I/O fuzz entries (issue 10): the stream reader's readline/readuntil
# against a model (fuzz_stream.c) and http-hello's request parser
# (fuzz_http.c, over examples/http_parse.h). Without libFuzzer each is its
# own driver of random inputs from a seed, run by ctest; with
# COGEN_LIBFUZZER, libFuzzer targets (tests/fuzz/libfuzzer.sh, make fuzz).
foreach(_io stream http)
  add_executable(cogen-${_io}-random ${_fz}/fuzz_${_io}.c)
  target_compile_definitions(cogen-${_io}-random PRIVATE FUZZ_STANDALONE)
  target_include_directories(cogen-${_io}-random PRIVATE ${PROJECT_SOURCE_DIR}/examples)
  target_link_libraries(cogen-${_io}-random cogen::cogen)
  target_compile_options(cogen-${_io}-random PRIVATE ${COGEN_WARNINGS})
  add_test(NAME fuzz.${_io}_random COMMAND cogen-${_io}-random 3000 1)
  set_tests_properties(fuzz.${_io}_random PROPERTIES TIMEOUT 300 LABELS "fuzz;io")
  file(GLOB _io_regress CONFIGURE_DEPENDS ${_fz}/regress-io/${_io}-*)
  if(_io_regress)
    add_test(NAME fuzz.${_io}_regress COMMAND cogen-${_io}-random ${_io_regress})
    set_tests_properties(fuzz.${_io}_regress PROPERTIES TIMEOUT 60 LABELS "fuzz;io")
  endif()
  if(COGEN_LIBFUZZER)
    add_executable(cogen-${_io}-libfuzzer ${_fz}/fuzz_${_io}.c)
    target_include_directories(cogen-${_io}-libfuzzer PRIVATE ${PROJECT_SOURCE_DIR}/examples)
    target_link_libraries(cogen-${_io}-libfuzzer cogen::cogen)
    target_compile_options(cogen-${_io}-libfuzzer PRIVATE ${COGEN_WARNINGS} -fsanitize=fuzzer)
    target_link_options(cogen-${_io}-libfuzzer PRIVATE -fsanitize=fuzzer)
  endif()
endforeach()
