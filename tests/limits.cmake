# limits.cmake: every test ctest knows has a TIMEOUT of its own (issue 9:
# "nothing hangs silently in tests"). Run by ctest as tests_have_limits:
#   cmake -DCTEST=<ctest> -DBUILD=<build dir> -P limits.cmake
# It asks ctest for the tests of the build (--show-only=json-v1) and fails
# with the names of those without one. Tests on the virtual clock also
# stop themselves (tests/vclock_limit.h); the TIMEOUT is the limit for
# everything else, and the one that always holds.
if(CMAKE_VERSION VERSION_LESS 3.19)
  message("cmake ${CMAKE_VERSION} cannot read JSON (3.19 can): skipped")
  return()
endif()
execute_process(COMMAND ${CTEST} --test-dir ${BUILD} --show-only=json-v1
  OUTPUT_VARIABLE json RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "ctest --show-only=json-v1 failed (${rc})")
endif()
string(JSON n LENGTH "${json}" tests)
if(n EQUAL 0)
  message(FATAL_ERROR "ctest lists no test")
endif()
# One JSON query per test would take a minute over 700 tests: the names
# are read from ctest's layout instead (a test's name 6 spaces in, a
# property's 10), and their count checked against the JSON's.
string(REGEX MATCHALL "\n      \"name\" : \"[^\"]*\"|\n          \"name\" : \"TIMEOUT\"" items "${json}")
set(missing "")
set(seen 0)
set(name "")
foreach(item IN LISTS items)
  if(item MATCHES "^\n      \"name\" : \"([^\"]*)\"")
    if(NOT name STREQUAL "")
      list(APPEND missing ${name})
    endif()
    set(name "${CMAKE_MATCH_1}")
    math(EXPR seen "${seen} + 1")
  elseif(NOT name STREQUAL "")
    set(name "") # it has a TIMEOUT
  endif()
endforeach()
if(NOT name STREQUAL "")
  list(APPEND missing ${name})
endif()
if(NOT seen EQUAL n)
  message(FATAL_ERROR "read ${seen} test names in ctest's JSON, which lists ${n}: its layout changed")
endif()
list(LENGTH missing nmissing)
if(nmissing GREATER 0)
  string(REPLACE ";" "\n  " missing "${missing}")
  message(FATAL_ERROR "${nmissing} of ${n} tests have no TIMEOUT (set_tests_properties(NAME PROPERTIES TIMEOUT s), or cogen_test's TIMEOUT):\n  ${missing}")
endif()
message("${n} tests, each with a TIMEOUT")
