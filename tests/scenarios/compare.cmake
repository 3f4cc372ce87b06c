# compare.cmake: one scenario file, checked by `cmake -P` (no Python needed).
#
#   cmake -DRUNNER=cogen-scenario -DSCENARIO=x.scn [-DEMULATOR=qemu|args]
#         [-DPYTHON=python3 -DREF=scenario_ref.py]
#         [-DOUT=dir] -P compare.cmake
#
# What cogen-scenario prints (stdout, and exit status; for an invalid
# scenario stderr and status 2) must equal the expectation:
#   - with PYTHON and REF: the reference runner's own output, and then the
#     checked-in expectation beside the scenario must equal it too, so that
#     checked-in traces cannot rot;
#   - without: the checked-in expectation, x.trace (a valid scenario: stdout,
#     status 0) or x.err (an invalid one: stderr, status 2).
# Differences are written to OUT (default: the working directory) and shown
# with diff -u when there is one.
cmake_minimum_required(VERSION 3.16)

foreach(v RUNNER SCENARIO)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "compare.cmake: -D${v}=... is required")
  endif()
endforeach()
if(NOT DEFINED OUT)
  set(OUT ${CMAKE_CURRENT_BINARY_DIR})
endif()
get_filename_component(dir ${SCENARIO} DIRECTORY)
get_filename_component(name ${SCENARIO} NAME_WE)
set(trace_file ${dir}/${name}.trace)
set(err_file ${dir}/${name}.err)
find_program(DIFF diff)

# Shows how two texts differ and fails the test.
function(differ what expected got)
  file(MAKE_DIRECTORY ${OUT})
  file(WRITE ${OUT}/${name}.expected "${expected}")
  file(WRITE ${OUT}/${name}.got "${got}")
  message("${name}: ${what}")
  if(DIFF)
    execute_process(COMMAND ${DIFF} -u ${OUT}/${name}.expected ${OUT}/${name}.got)
  else()
    message("--- expected\n${expected}\n--- got\n${got}")
  endif()
  message(FATAL_ERROR "${name}: ${what} (files in ${OUT})")
endfunction()

string(REPLACE "|" ";" EMULATOR "${EMULATOR}")
execute_process(COMMAND ${EMULATOR} ${RUNNER} ${SCENARIO}
  OUTPUT_VARIABLE got_out ERROR_VARIABLE got_err RESULT_VARIABLE got_rc TIMEOUT 20)

# The checked-in expectation.
if(EXISTS ${trace_file})
  file(READ ${trace_file} file_out)
  set(file_err "")
  set(file_rc 0)
elseif(EXISTS ${err_file})
  set(file_out "")
  file(READ ${err_file} file_err)
  set(file_rc 2)
else()
  message(FATAL_ERROR "${name}: neither ${name}.trace nor ${name}.err beside ${SCENARIO}; make it with "
    "python3 scenario_ref.py ${name}.scn > ${name}.trace (see tests/scenarios/README.md)")
endif()

if(PYTHON AND REF)
  execute_process(COMMAND ${PYTHON} ${REF} ${SCENARIO}
    OUTPUT_VARIABLE want_out ERROR_VARIABLE want_err RESULT_VARIABLE want_rc TIMEOUT 60)
  if(NOT want_rc EQUAL 0 AND NOT want_rc EQUAL 2)
    message(FATAL_ERROR "${name}: the reference runner failed (${want_rc}):\n${want_err}")
  endif()
  set(source "the reference runner")
else()
  set(want_out "${file_out}")
  set(want_err "${file_err}")
  set(want_rc ${file_rc})
  set(source "${name}.trace/.err (no reference runner)")
endif()

if(NOT "${got_rc}" STREQUAL "${want_rc}")
  differ("exit status ${got_rc}, ${source} says ${want_rc}" "${want_out}${want_err}" "${got_out}${got_err}")
endif()
if(NOT "${got_out}" STREQUAL "${want_out}")
  differ("stdout differs from ${source}" "${want_out}" "${got_out}")
endif()
if(want_rc EQUAL 2 AND NOT "${got_err}" STREQUAL "${want_err}")
  differ("stderr differs from ${source}" "${want_err}" "${got_err}")
endif()

if(PYTHON AND REF)
  if(NOT "${file_rc}" STREQUAL "${want_rc}" OR NOT "${file_out}" STREQUAL "${want_out}"
     OR NOT "${file_err}" STREQUAL "${want_err}")
    differ("the checked-in ${name}.trace/.err is stale: regenerate it from the reference runner"
      "${want_out}${want_err}" "${file_out}${file_err}")
  endif()
endif()
