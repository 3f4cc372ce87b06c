# install.cmake: installs the build the way a user does, into a prefix
# chosen at install time (`cmake --install BUILD --prefix P`, the build
# being configured for its default prefix), and uses it as a user would:
#   - the CMake package (find_package(cogen), static and shared targets);
#   - the pkg-config file, with nothing but PKG_CONFIG_PATH=P/lib/pkgconfig
#     and `pkg-config --cflags --libs cogen` (when pkg-config is there);
#   - the gdb script, in share/cogen/ and where gdb auto-loads it.
# Then it moves the whole prefix elsewhere and builds both consumers again:
# the CMake package and cogen.pc find their prefix from where they are.
# Each program is the README example and must print what the README says.
#
#   cmake -DBUILD=dir -DSRC=dir -DWORK=dir -DCC=compiler -P install.cmake
file(REMOVE_RECURSE ${WORK})
set(prefix ${WORK}/prefix)
set(moved ${WORK}/moved)

# The prefix the build was configured for (by default /usr/local): nothing
# installed may point there.
file(STRINGS ${BUILD}/CMakeCache.txt configured REGEX "^CMAKE_INSTALL_PREFIX:")
string(REGEX REPLACE "^[^=]*=" "" configured "${configured}")
file(STRINGS ${BUILD}/CMakeCache.txt libdir_rel REGEX "^CMAKE_INSTALL_LIBDIR:")
string(REGEX REPLACE "^[^=]*=" "" libdir_rel "${libdir_rel}")
if(configured STREQUAL prefix OR IS_ABSOLUTE "${libdir_rel}")
  message(FATAL_ERROR "the build must be configured for another prefix and a relative libdir "
    "(it has ${configured}, ${libdir_rel})")
endif()

execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD} --prefix ${prefix}
  RESULT_VARIABLE rc OUTPUT_QUIET)
if(rc)
  message(FATAL_ERROR "cmake --install --prefix ${prefix} failed (${rc})")
endif()
set(example ${SRC}/examples/readme.c)
set(want "sum: 12\nafter throw: 0, close: CG_RETURNED\n")

function(expect_output prog what)
  execute_process(COMMAND ${prog} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0 OR NOT out STREQUAL want)
    message(FATAL_ERROR "${what}: status ${rc}, output:\n${out}${err}")
  endif()
  message(STATUS "${what}: ok")
endfunction()

# The CMake package, from prefix P.
function(consume_cmake p where)
  set(dir ${WORK}/consumer-${where})
  execute_process(COMMAND ${CMAKE_COMMAND} -S ${SRC}/tests/install/consumer -B ${dir}
      -DCMAKE_PREFIX_PATH=${p} -DCMAKE_C_COMPILER=${CC} -DEXAMPLE=${example}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(rc)
    message(FATAL_ERROR "configuring a project with find_package(cogen) (${where}) failed:\n${out}")
  endif()
  # It must have found this prefix's package, not another installed one.
  file(STRINGS ${dir}/CMakeCache.txt found REGEX "^cogen_DIR:")
  string(REGEX REPLACE "^[^=]*=" "" found "${found}")
  if(NOT found STREQUAL "${p}/${libdir_rel}/cmake/cogen")
    message(FATAL_ERROR "find_package(cogen) (${where}) found ${found}")
  endif()
  execute_process(COMMAND ${CMAKE_COMMAND} --build ${dir}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(rc)
    message(FATAL_ERROR "building against cogen::cogen / cogen::cogen_shared (${where}) failed:\n${out}")
  endif()
  expect_output(${dir}/readme_static "find_package(cogen), cogen::cogen (${where})")
  expect_output(${dir}/readme_shared "find_package(cogen), cogen::cogen_shared (${where})")
endfunction()

# The pkg-config file, from prefix P: plain --cflags --libs (the shared
# library, found first as it would be in /usr/lib; LD_LIBRARY_PATH finds it
# at run time).
find_program(PKG_CONFIG pkg-config)
function(consume_pkgconfig p where)
  if(NOT PKG_CONFIG)
    message(STATUS "pkg-config: not installed, not checked")
    return()
  endif()
  set(pcdir ${p}/${libdir_rel}/pkgconfig)
  file(READ ${pcdir}/cogen.pc pc)
  string(FIND "${pc}" "${configured}" at)
  if(NOT at EQUAL -1)
    message(FATAL_ERROR "cogen.pc names the configured prefix ${configured}:\n${pc}")
  endif()
  set(ENV{PKG_CONFIG_PATH} "${pcdir}")
  execute_process(COMMAND ${PKG_CONFIG} --variable=prefix cogen
    RESULT_VARIABLE rc OUTPUT_VARIABLE pcprefix ERROR_VARIABLE err OUTPUT_STRIP_TRAILING_WHITESPACE)
  get_filename_component(pcprefix "${pcprefix}" REALPATH)
  get_filename_component(real "${p}" REALPATH)
  if(rc OR NOT pcprefix STREQUAL real)
    message(FATAL_ERROR "pkg-config --variable=prefix cogen (${where}): '${pcprefix}', not ${real} ${err}")
  endif()
  execute_process(COMMAND ${PKG_CONFIG} --cflags --libs cogen
    RESULT_VARIABLE rc OUTPUT_VARIABLE flags ERROR_VARIABLE err OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(rc)
    message(FATAL_ERROR "pkg-config cogen (${where}) failed: ${err}")
  endif()
  separate_arguments(flags UNIX_COMMAND "${flags}")
  set(exe ${WORK}/readme_pc_${where})
  execute_process(COMMAND ${CC} -std=c11 ${example} -o ${exe} ${flags}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(rc)
    message(FATAL_ERROR "compiling with `pkg-config --cflags --libs cogen` (${where}) failed:\n${out}")
  endif()
  set(ENV{LD_LIBRARY_PATH} "${p}/${libdir_rel}")
  expect_output(${exe} "pkg-config cogen (${where})")
  unset(ENV{LD_LIBRARY_PATH})
endfunction()

consume_cmake(${prefix} installed)
consume_pkgconfig(${prefix} installed)

# The gdb script: share/cogen/cogen-gdb.py, and the auto-load copy named
# after the shared library's real file, under the absolute path of the
# library directory.
file(READ ${SRC}/tools/cogen-gdb.py script)
file(GLOB solib RELATIVE ${prefix}/${libdir_rel} ${prefix}/${libdir_rel}/libcogen.so.*.*.*)
get_filename_component(reallib ${prefix}/${libdir_rel} REALPATH)
set(autoload_dir ${prefix}/share/gdb/auto-load)
foreach(f ${prefix}/share/cogen/cogen-gdb.py ${autoload_dir}${reallib}/${solib}-gdb.py)
  if(NOT EXISTS ${f})
    message(FATAL_ERROR "not installed: ${f}")
  endif()
  file(READ ${f} got)
  if(NOT got STREQUAL script)
    message(FATAL_ERROR "${f} is not tools/cogen-gdb.py")
  endif()
endforeach()
message(STATUS "gdb script installed: share/cogen/cogen-gdb.py, share/gdb/auto-load${reallib}/${solib}-gdb.py")
# gdb loads it by itself for a program using the shared library, once told
# where the prefix's auto-load directory is (docs/debugging.md). Checked
# when gdb with Python is there and may trace.
find_program(GDB gdb)
if(GDB)
  execute_process(COMMAND ${GDB} -batch -nx
      -iex "set auto-load safe-path ${autoload_dir}"
      -iex "add-auto-load-scripts-directory ${autoload_dir}"
      -ex "break main" -ex "run" -ex "cogen-list" -ex "kill"
      ${WORK}/consumer-installed/readme_shared
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(out MATCHES "Breakpoint 1, [^\n]*main")
    if(NOT out MATCHES "\n0 live generators\n")
      message(FATAL_ERROR "gdb did not auto-load the installed cogen-gdb.py:\n${out}${err}")
    endif()
    message(STATUS "gdb auto-loads the installed script: ok")
  else()
    message(STATUS "gdb could not run the program here, auto-load not checked:\n${out}${err}")
  endif()
endif()

# Relocation: the same tree somewhere else.
file(RENAME ${prefix} ${moved})
consume_cmake(${moved} moved)
consume_pkgconfig(${moved} moved)
