# Differential fuzzing of the event loop: random async scenarios
# (tests/async_fuzz/async_gen.py) through cogen-async-scenario, compared
# with the traces CPython 3.13.0's asyncio printed for them (async_ref.py),
# recorded in tests/async_fuzz/expected.gz (afuzz.py record).
#
# ctest (label async-fuzz):
#   async_fuzz.0 .. async_fuzz.7  seeds 0..1999, 250 per test so that they
#                                  run in parallel: each scenario generated
#                                  again, its hash checked against the
#                                  bundle's, run and compared byte for byte
#                                  (without python3: check.sh, on the
#                                  scenarios stored in the bundle)
#   async_fuzz.bundle              every seed's scenario hash against the
#                                  bundle: a stale bundle fails loudly
#   async_fuzz.selftest            those checks (and check.sh) fail on a
#                                  bundle with a trace and a hash changed
#   async_fuzz.reference           a sample of 300 seeds from 100,000 up
#                                  against async_ref.py itself; skipped
#                                  (status 3) without ../shared or CPython
#                                  3.13.0
#   async_fuzz.families            the generator with every family on
#                                  (gather, wait, ..., async generators:
#                                  off in the checked-in seeds): 300
#                                  scenarios that async_ref.py must accept
#                                  and run; skipped like the one above
# make fuzz-long runs 100,000 more against async_ref.py (long.sh).
set(_afz ${CMAKE_CURRENT_SOURCE_DIR}/async_fuzz)
set(_afz_bundle ${_afz}/expected.gz)
if(NOT COGEN_ASYNC_SCENARIO_REF)
  set(COGEN_ASYNC_SCENARIO_REF ${PROJECT_SOURCE_DIR}/../shared/semantics/async_ref.py)
endif()
if(NOT DEFINED Python3_EXECUTABLE)
  find_package(Python3 3.8 COMPONENTS Interpreter QUIET)
endif()
string(REPLACE ";" " " _afz_emu "${CMAKE_CROSSCOMPILING_EMULATOR}")

foreach(_i RANGE 0 7)
  math(EXPR _start "${_i} * 250")
  if(Python3_EXECUTABLE)
    add_test(NAME async_fuzz.${_i} COMMAND ${Python3_EXECUTABLE} ${_afz}/afuzz.py check
      --runner $<TARGET_FILE:cogen-async-scenario> --bundle ${_afz_bundle} --start ${_start} --count 250
      --save ${CMAKE_CURRENT_BINARY_DIR}/async-fuzz-failures)
    if(_afz_emu)
      set_property(TEST async_fuzz.${_i} APPEND PROPERTY ENVIRONMENT "COGEN_TEST_WRAPPER=${_afz_emu}")
    endif()
  else()
    add_test(NAME async_fuzz.${_i} COMMAND sh ${_afz}/check.sh
      $<TARGET_FILE:cogen-async-scenario> ${_afz_bundle} ${_start} 250 "${_afz_emu}")
  endif()
  set_tests_properties(async_fuzz.${_i} PROPERTIES TIMEOUT 300 LABELS async-fuzz)
endforeach()

# Every seed again with a timeout block being a cg_timeout_call
# (COGEN_SCENARIO_TIMEOUT=call, async_scenario.c): the same traces.
if(Python3_EXECUTABLE)
  add_test(NAME async_fuzz.timeout_call COMMAND ${Python3_EXECUTABLE} ${_afz}/afuzz.py check
    --runner $<TARGET_FILE:cogen-async-scenario> --bundle ${_afz_bundle} --start 0 --count 2000
    --save ${CMAKE_CURRENT_BINARY_DIR}/async-fuzz-failures)
  if(_afz_emu)
    set_property(TEST async_fuzz.timeout_call APPEND PROPERTY ENVIRONMENT "COGEN_TEST_WRAPPER=${_afz_emu}")
  endif()
else()
  add_test(NAME async_fuzz.timeout_call COMMAND sh ${_afz}/check.sh
    $<TARGET_FILE:cogen-async-scenario> ${_afz_bundle} 0 2000 "${_afz_emu}")
endif()
set_property(TEST async_fuzz.timeout_call APPEND PROPERTY ENVIRONMENT "COGEN_SCENARIO_TIMEOUT=call")
set_tests_properties(async_fuzz.timeout_call PROPERTIES TIMEOUT 600 LABELS async-fuzz)

if(Python3_EXECUTABLE)
  add_test(NAME async_fuzz.bundle COMMAND ${Python3_EXECUTABLE} ${_afz}/afuzz.py stale --bundle ${_afz_bundle})
  set_tests_properties(async_fuzz.bundle PROPERTIES TIMEOUT 300 LABELS async-fuzz)
  add_test(NAME async_fuzz.selftest COMMAND ${Python3_EXECUTABLE} ${_afz}/afuzz.py selftest
    --runner $<TARGET_FILE:cogen-async-scenario> --bundle ${_afz_bundle})
  set_tests_properties(async_fuzz.selftest PROPERTIES TIMEOUT 60 LABELS async-fuzz)
  add_test(NAME async_fuzz.reference COMMAND ${Python3_EXECUTABLE} ${_afz}/afuzz.py ref
    --runner $<TARGET_FILE:cogen-async-scenario> --ref ${COGEN_ASYNC_SCENARIO_REF}
    --start 100000 --count 300 --step 331 --jobs 1 --save ${CMAKE_CURRENT_BINARY_DIR}/async-fuzz-failures)
  set_tests_properties(async_fuzz.reference PROPERTIES TIMEOUT 300 LABELS async-fuzz SKIP_RETURN_CODE 3)
  add_test(NAME async_fuzz.families COMMAND ${Python3_EXECUTABLE} ${_afz}/afuzz.py valid
    --ref ${COGEN_ASYNC_SCENARIO_REF} --features all --start 0 --count 300 --jobs 1)
  set_tests_properties(async_fuzz.families PROPERTIES TIMEOUT 300 LABELS async-fuzz SKIP_RETURN_CODE 3)
  if(_afz_emu)
    set_property(TEST async_fuzz.reference APPEND PROPERTY ENVIRONMENT "COGEN_TEST_WRAPPER=${_afz_emu}")
  endif()
endif()
