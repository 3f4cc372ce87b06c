# check_output.cmake: runs an example and checks what it printed.
#
#   cmake -DPROG=exe [-DARGS=a|b] [-DEMULATOR=qemu|args] [-DINPUT=file] [-DSTATUS=n] [-DDIR=dir]
#         [-DCONTAINS=file] [-DEXACT=file] [-DSTDERR=text] -P check_output.cmake
#
# CONTAINS: every line of the file that is not empty and does not start
#   with '#' must appear in standard output, in the file's order (so the
#   order of sections and of an interleaving is checked too). '#' lines say
#   why each fact holds.
# EXACT: standard output must equal the file.
# STDERR: standard error must contain this text.
# STATUS: the exit status required (default 0).
#
# Lines are scanned by hand rather than as CMake lists, so that ';' and '['
# in expected text need no escaping.

if(NOT DEFINED STATUS OR STATUS STREQUAL "")
  set(STATUS 0)
endif()
if(NOT DIR)
  get_filename_component(DIR "${PROG}" DIRECTORY)
endif()

string(REPLACE "|" ";" ARGS "${ARGS}")
string(REPLACE "|" ";" EMULATOR "${EMULATOR}")
set(_in)
if(INPUT)
  set(_in INPUT_FILE "${INPUT}")
endif()
execute_process(COMMAND ${EMULATOR} "${PROG}" ${ARGS}
  ${_in}
  WORKING_DIRECTORY "${DIR}"
  OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)

set(failed 0)
macro(fail msg)
  message("FAIL: ${msg}")
  set(failed 1)
endmacro()

if(NOT rc STREQUAL STATUS)
  fail("exit status ${rc}, expected ${STATUS}")
endif()

if(CONTAINS)
  file(READ "${CONTAINS}" want)
  set(rest "${out}")
  while(NOT want STREQUAL "")
    string(FIND "${want}" "\n" nl)
    if(nl EQUAL -1)
      set(line "${want}")
      set(want "")
    else()
      string(SUBSTRING "${want}" 0 ${nl} line)
      math(EXPR nl "${nl} + 1")
      string(SUBSTRING "${want}" ${nl} -1 want)
    endif()
    if(line STREQUAL "" OR line MATCHES "^#")
      continue()
    endif()
    string(FIND "${rest}" "${line}" at)
    if(at EQUAL -1)
      string(FIND "${out}" "${line}" anywhere)
      if(anywhere EQUAL -1)
        fail("missing from output: ${line}")
      else()
        fail("out of order in output: ${line}")
      endif()
    else()
      string(LENGTH "${line}" len)
      math(EXPR at "${at} + ${len}")
      string(SUBSTRING "${rest}" ${at} -1 rest)
    endif()
  endwhile()
endif()

if(EXACT)
  file(READ "${EXACT}" want)
  if(NOT out STREQUAL want)
    fail("output differs from ${EXACT}")
  endif()
endif()

if(STDERR)
  string(FIND "${err}" "${STDERR}" at)
  if(at EQUAL -1)
    fail("standard error lacks: ${STDERR}")
  endif()
endif()

if(failed)
  message("---- stdout ----\n${out}---- stderr ----\n${err}----")
  message(FATAL_ERROR "${PROG} did not behave as expected")
endif()
