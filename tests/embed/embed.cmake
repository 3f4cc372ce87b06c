# embed.cmake: cogen inside another project (tests/embed/CMakeLists.txt,
# add_subdirectory of the source tree), as the README's Install section
# describes it:
#   1. by default it builds the libraries and nothing else: COGEN_TESTS,
#      COGEN_EXAMPLES, COGEN_BENCH and COGEN_INSTALL are OFF, ctest lists
#      only the embedding project's own test, no cogen target but the
#      libraries exists, the project's build type is left alone; the
#      README example links against cogen::cogen and prints what it must;
#   2. the options still work: -DCOGEN_TESTS=ON brings cogen's tests in;
#   3. a project compiled with -fsanitize=address in CMAKE_C_FLAGS gets a
#      cogen built for it: no assembly fast paths (COGEN_FASTPATH OFF).
#
#   cmake -DSRC=dir -DWORK=dir -DCC=compiler -P embed.cmake
file(REMOVE_RECURSE ${WORK})

function(configure dir)
  execute_process(COMMAND ${CMAKE_COMMAND} -S ${SRC}/tests/embed -B ${WORK}/${dir}
      -DCOGEN_SOURCE=${SRC} -DCMAKE_C_COMPILER=${CC} ${ARGN}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(rc)
    message(FATAL_ERROR "configuring the embedding project (${ARGN}) failed:\n${out}")
  endif()
endfunction()

function(cache_value dir name outvar)
  file(STRINGS ${WORK}/${dir}/CMakeCache.txt line REGEX "^${name}:[A-Z]+=")
  string(REGEX REPLACE "^[^=]*=" "" line "${line}")
  set(${outvar} "${line}" PARENT_SCOPE)
endfunction()

function(listed_tests dir outvar)
  execute_process(COMMAND ${CMAKE_CTEST_COMMAND} -N WORKING_DIRECTORY ${WORK}/${dir}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(rc)
    message(FATAL_ERROR "ctest -N failed:\n${out}")
  endif()
  string(REGEX MATCHALL "Test +#[0-9]+: [^\n]*" tests "${out}")
  set(${outvar} "${tests}" PARENT_SCOPE)
endfunction()

# 1. Defaults.
configure(default)
foreach(opt COGEN_TESTS COGEN_EXAMPLES COGEN_BENCH COGEN_INSTALL)
  cache_value(default ${opt} v)
  if(NOT v STREQUAL "OFF")
    message(FATAL_ERROR "embedded, ${opt} is '${v}', not OFF")
  endif()
endforeach()
cache_value(default CMAKE_BUILD_TYPE bt)
if(NOT bt STREQUAL "")
  message(FATAL_ERROR "embedded cogen set the project's build type to '${bt}'")
endif()
listed_tests(default tests)
if(NOT tests MATCHES "^Test +#1: embedder_own_test$")
  message(FATAL_ERROR "ctest lists other tests than the project's own: ${tests}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK}/default --target help
  OUTPUT_VARIABLE targets)
foreach(t smoke tour pipeline test_rules cogen-scenario bench_cogen)
  if(targets MATCHES "\\.\\.\\. ${t}\n")
    message(FATAL_ERROR "embedded cogen defines the target ${t}:\n${targets}")
  endif()
endforeach()
if(NOT targets MATCHES "\\.\\.\\. cogen_static\n")
  message(FATAL_ERROR "no cogen_static target when embedded:\n${targets}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK}/default --target readme -j 2
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(rc)
  message(FATAL_ERROR "building the embedding project failed:\n${out}")
endif()
execute_process(COMMAND ${WORK}/default/readme RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT out STREQUAL "sum: 12\nafter throw: 0, close: CG_RETURNED\n")
  message(FATAL_ERROR "the README example built with embedded cogen: status ${rc}, output:\n${out}${err}")
endif()
message(STATUS "embedded, defaults: libraries only, no cogen tests; README example ok")

# 2. Asked for, the tests come in.
configure(with-tests -DCOGEN_TESTS=ON)
listed_tests(with-tests tests)
list(LENGTH tests n)
# (Before a build, each case table shows as one NAME.not_listed test:
# the cases come from the built binaries' own tables, tests/cases.cmake.)
if(n LESS 50 OR NOT tests MATCHES "Test +#[0-9]+: test_rules\\.not_listed;")
  message(FATAL_ERROR "embedded with COGEN_TESTS=ON, ctest lists ${n} tests: ${tests}")
endif()
message(STATUS "embedded, COGEN_TESTS=ON: ${n} tests listed")

# 3. The project's sanitizer flags reach cogen's configuration.
configure(asan "-DCMAKE_C_FLAGS=-g -fsanitize=address")
cache_value(asan COGEN_FASTPATH fast)
if(NOT fast STREQUAL "OFF")
  message(FATAL_ERROR "embedded in an -fsanitize=address project, COGEN_FASTPATH is '${fast}'")
endif()
message(STATUS "embedded in an ASan project: no assembly fast paths")
