# Reliability: stack overflow, out of memory, threads, endurance, gdb.
# Included by tests/CMakeLists.txt; uses its cogen_test().
#
# Cases that cannot run somewhere (no seccomp under valgrind or qemu-user,
# no working madvise guard pages under qemu-user,
# no gdb) exit 77, which ctest reports as skipped.

cogen_test(test_overflow test_overflow.c TIMEOUT 30 LIBS Threads::Threads)
# Frames bigger than a page must probe every page, as the library's do.
target_compile_options(test_overflow PRIVATE ${COGEN_HARDENING})
cogen_case_properties(test_overflow
  overflow_recursion overflow_big_frame overflow_subgenerator overflow_thread
  overflow_required_guard overflow_canary overflow_mprotect_guard guard_default_is_page
  PROPERTIES SKIP_RETURN_CODE 77)

cogen_test(test_oom test_oom.c TIMEOUT 30 LIBS Threads::Threads)
# The event loop's operations with every allocation failing in turn.
cogen_test(test_loop_oom test_loop_oom.c TIMEOUT 60)

cogen_test(test_threads test_threads.c TIMEOUT 60 LIBS Threads::Threads)

# Ten million generator lifetimes with flat memory (~5 s; scale it down
# with COGEN_TEST_SCALE under sanitizers, valgrind or qemu), and one
# million (endurance_quick). The loop's: 100,000 task lifetimes and a
# million timers armed and cancelled and a million timeout scopes (a tenth of the full sizes:
# COGEN_TEST_SCALE=10 runs those; docs/loop.md, "Endurance").
cogen_test(test_endurance test_endurance.c TIMEOUT 120)
cogen_case_properties(test_endurance loop_endurance_tasks loop_endurance_timers loop_endurance_scopes PROPERTIES LABELS loop)
if(CMAKE_CROSSCOMPILING_EMULATOR)
  # RSS under qemu-user is qemu's (test_endurance.c, rss_unreliable)
  cogen_case_properties(test_endurance endurance endurance_quick loop_endurance_tasks loop_endurance_timers loop_endurance_scopes
    PROPERTIES ENVIRONMENT COGEN_UNDER_EMULATOR=1)
endif()

# tools/cogen-gdb.py on a live program. The script reads the library's
# private structs, so the library needs debug info: the test is registered
# for Debug and RelWithDebInfo builds (the default) only, and not when
# cross-compiling (the host's gdb cannot run the program; under qemu-user's
# gdb stub thread-local variables cannot be read, so cogen-list cannot work
# there: docs/debugging.md says what does).
add_executable(test_gdb test_gdb.c)
target_link_libraries(test_gdb cogen::cogen Threads::Threads)
target_compile_options(test_gdb PRIVATE ${COGEN_WARNINGS} -g)
if((CMAKE_BUILD_TYPE MATCHES "^(Debug|RelWithDebInfo)$" OR CMAKE_C_FLAGS MATCHES "(^| )-g")
   AND NOT CMAKE_CROSSCOMPILING)
  add_test(NAME gdb_commands
    COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_gdb.sh $<TARGET_FILE:test_gdb>
            ${PROJECT_SOURCE_DIR}/tools/cogen-gdb.py ${COGEN_SWITCH})
  set_tests_properties(gdb_commands PROPERTIES TIMEOUT 60 SKIP_RETURN_CODE 77)
endif()

# cogen-tasks on a program stopped while its tasks wait on different things
# (tests/test_gdb_tasks.c); registered as gdb_commands is.
add_executable(test_gdb_tasks test_gdb_tasks.c)
target_link_libraries(test_gdb_tasks cogen::cogen)
target_compile_options(test_gdb_tasks PRIVATE ${COGEN_WARNINGS} -g)
if((CMAKE_BUILD_TYPE MATCHES "^(Debug|RelWithDebInfo)$" OR CMAKE_C_FLAGS MATCHES "(^| )-g")
   AND NOT CMAKE_CROSSCOMPILING)
  add_test(NAME gdb_tasks
    COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_gdb_tasks.sh $<TARGET_FILE:test_gdb_tasks>
            ${PROJECT_SOURCE_DIR}/tools/cogen-gdb.py)
  set_tests_properties(gdb_tasks PROPERTIES TIMEOUT 60 SKIP_RETURN_CODE 77 LABELS loop)
endif()
