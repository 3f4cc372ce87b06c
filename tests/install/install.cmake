# install.cmake: installs the build into a fresh prefix and uses it as a
# user would: the CMake package (find_package(cogen), static and shared
# targets) and the pkg-config file (when pkg-config is there). Each program
# is the README example and must print what the README says.
#
#   cmake -DBUILD=dir -DSRC=dir -DWORK=dir -DCC=compiler -P install.cmake
file(REMOVE_RECURSE ${WORK})
set(prefix ${WORK}/prefix)
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD} --prefix ${prefix}
  RESULT_VARIABLE rc OUTPUT_QUIET)
if(rc)
  message(FATAL_ERROR "cmake --install failed (${rc})")
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

# The CMake package.
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SRC}/tests/install/consumer -B ${WORK}/consumer
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_C_COMPILER=${CC} -DEXAMPLE=${example}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(rc)
  message(FATAL_ERROR "configuring a project with find_package(cogen) failed:\n${out}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK}/consumer
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(rc)
  message(FATAL_ERROR "building against cogen::cogen / cogen::cogen_shared failed:\n${out}")
endif()
expect_output(${WORK}/consumer/readme_static "find_package(cogen), cogen::cogen")
expect_output(${WORK}/consumer/readme_shared "find_package(cogen), cogen::cogen_shared")

# The pkg-config file: cflags and libs (static link, as `pkg-config
# --static` gives it).
find_program(PKG_CONFIG pkg-config)
if(NOT PKG_CONFIG)
  message(STATUS "pkg-config: not installed, not checked")
  return()
endif()
file(GLOB pcdir LIST_DIRECTORIES true ${prefix}/lib*/pkgconfig ${prefix}/lib/*/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "${pcdir}")
# The file names the prefix it was configured for; point it at this one.
execute_process(COMMAND ${PKG_CONFIG} --define-variable=prefix=${prefix} --cflags --libs --static cogen
  RESULT_VARIABLE rc OUTPUT_VARIABLE flags ERROR_VARIABLE err OUTPUT_STRIP_TRAILING_WHITESPACE)
if(rc)
  message(FATAL_ERROR "pkg-config cogen failed: ${err}")
endif()
separate_arguments(flags UNIX_COMMAND "${flags}")
execute_process(COMMAND ${CC} -std=c11 ${example} -o ${WORK}/readme_pc ${flags}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(rc)
  message(FATAL_ERROR "compiling with `pkg-config --cflags --libs cogen` failed:\n${out}")
endif()
# -lcogen finds the shared library first, as it would in /usr/lib.
get_filename_component(libdir "${pcdir}" DIRECTORY)
set(ENV{LD_LIBRARY_PATH} "${libdir}")
expect_output(${WORK}/readme_pc "pkg-config cogen")
