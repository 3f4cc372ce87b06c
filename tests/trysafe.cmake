# trysafe.cmake: the exception macros from C++, and a program built with
# AddressSanitizer against the plain library. test_trysafe (C) is registered
# in CMakeLists.txt.

# test_trysafe (registered in CMakeLists.txt) checks that the caller's
# plain locals survive cg_try_call: at -O2 whatever the build type, since
# that is where compilers keep them in registers (a Debug build's -O0 would
# prove nothing).
target_compile_options(test_trysafe PRIVATE -O2)

# cogen.h from C++: test_trysafe.c compiled as C++, with -Wshadow (an error
# by the file's pragma), every case in one run.
# Not in cross builds: the toolchain file names a C cross compiler only,
# and check_language would find the host's C++ compiler.
include(CheckLanguage)
if(NOT CMAKE_CROSSCOMPILING)
  check_language(CXX)
endif()
if(CMAKE_CXX_COMPILER AND NOT CMAKE_CROSSCOMPILING)
  enable_language(CXX)
  add_executable(test_trysafe_cxx test_trysafe_cxx.cpp)
  target_link_libraries(test_trysafe_cxx cogen::cogen)
  set_target_properties(test_trysafe_cxx PROPERTIES CXX_STANDARD 11 CXX_STANDARD_REQUIRED ON CXX_EXTENSIONS OFF)
  target_compile_options(test_trysafe_cxx PRIVATE ${COGEN_WARNINGS} -Wshadow -O2)
  add_test(NAME trysafe_cxx COMMAND test_trysafe_cxx)
  set_tests_properties(trysafe_cxx PROPERTIES TIMEOUT 60)
endif()

# A program compiled with -fsanitize=address linked against the library
# built without it: the header's constructor makes the library warn once,
# before main (and abort, with COGEN_BUILD_CHECK=abort). Only where the
# compiler has ASan and the build is not a sanitizer build already.
if(NOT COGEN_SANITIZE AND NOT CMAKE_CROSSCOMPILING)
  include(CheckCSourceRuns)
  set(CMAKE_REQUIRED_FLAGS -fsanitize=address)
  set(CMAKE_REQUIRED_LINK_OPTIONS -fsanitize=address)
  check_c_source_runs("int main(void) { return 0; }" COGEN_HAVE_ASAN)
  unset(CMAKE_REQUIRED_FLAGS)
  unset(CMAKE_REQUIRED_LINK_OPTIONS)
  if(COGEN_HAVE_ASAN)
    add_executable(test_trysafe_asan test_trysafe.c)
    target_link_libraries(test_trysafe_asan cogen::cogen)
    target_compile_options(test_trysafe_asan PRIVATE ${COGEN_WARNINGS} -fsanitize=address -fno-omit-frame-pointer)
    target_link_options(test_trysafe_asan PRIVATE -fsanitize=address)
    set(_warn "cogen: this program is built with AddressSanitizer but libcogen is not; rebuild cogen with -DCOGEN_SANITIZE=address \\(see docs/debugging.md\\)")
    add_test(NAME trysafe_asan_build_mismatch COMMAND test_trysafe_asan trysafe_asan_mismatch)
    set_tests_properties(trysafe_asan_build_mismatch PROPERTIES TIMEOUT 60
      ENVIRONMENT "ASAN_OPTIONS=detect_leaks=0"
      PASS_REGULAR_EXPRESSION "${_warn}\n.*asan mismatch: the program ran"
      FAIL_REGULAR_EXPRESSION "check failed|ERROR: AddressSanitizer")
    # The abort, seen through sh: ctest counts a killed test as failed
    # whatever its output (128 + SIGABRT's 6 = 134).
    add_test(NAME trysafe_asan_build_mismatch_abort COMMAND sh -c "\"$0\" trysafe_asan_mismatch; echo \"exit status $?\""
      $<TARGET_FILE:test_trysafe_asan>)
    set_tests_properties(trysafe_asan_build_mismatch_abort PROPERTIES TIMEOUT 60
      ENVIRONMENT "ASAN_OPTIONS=detect_leaks=0;COGEN_BUILD_CHECK=abort"
      PASS_REGULAR_EXPRESSION "${_warn}\n.*exit status 134"
      FAIL_REGULAR_EXPRESSION "the program ran")
  endif()
endif()
