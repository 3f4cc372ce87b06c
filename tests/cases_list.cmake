# After a build of a test binary (tests/cases.cmake): its case names, for
# ctest.
#
#   cmake -DNAME=test_rules -DEXE=path -DEMULATOR=word|word... -DOUT=file
#         -DPROPS=file -P cases_list.cmake
#
# Runs `EXE --list` (through the emulator, qemu-aarch64 or valgrind, when
# there is one), checks what it printed (one case name per line, at least
# one, no name twice, every case PROPS gives properties to among them) and
# writes OUT, which ctest includes. On any failure OUT is removed, so that
# ctest shows NAME.not_listed failing instead of running an old list.
cmake_minimum_required(VERSION 3.16)
string(REPLACE "|" ";" emu "${EMULATOR}")
file(REMOVE ${OUT})

execute_process(COMMAND ${emu} ${EXE} --list
  OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  string(REPLACE ";" " " cmd "${emu} ${EXE} --list")
  message(FATAL_ERROR "${NAME}: `${cmd}` failed (${rc}):\n${out}${err}")
endif()
if(out MATCHES ";")
  message(FATAL_ERROR "${NAME} --list printed a ';':\n${out}")
endif()

string(REGEX MATCHALL "[^\n]+" names "${out}")
set(seen "")
foreach(n IN LISTS names)
  if(NOT n MATCHES "^[A-Za-z_][A-Za-z0-9_]*$")
    message(FATAL_ERROR "${NAME} --list printed '${n}', not a case name (C identifiers only)")
  endif()
  if(n IN_LIST seen)
    message(FATAL_ERROR "${NAME}: case ${n} is twice in its table")
  endif()
  list(APPEND seen ${n})
endforeach()
if(NOT seen)
  message(FATAL_ERROR "${NAME} --list printed no case")
endif()

if(EXISTS ${PROPS})
  file(STRINGS ${PROPS} named)
  foreach(n IN LISTS named)
    if(NOT n IN_LIST seen)
      message(FATAL_ERROR "${NAME}: cogen_case_properties() names the case ${n}, "
        "which is not in its table")
    endif()
  endforeach()
endif()

string(REPLACE ";" "\n  " lines "${seen}")
file(WRITE ${OUT}.tmp "# ${NAME} --list, after its last build (tests/cases_list.cmake).
set(_cogen_exe [==[${EXE}]==])
set(_cogen_cases
  ${lines}
)
")
file(RENAME ${OUT}.tmp ${OUT})
