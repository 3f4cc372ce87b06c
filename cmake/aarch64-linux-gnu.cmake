# Cross-compiling for AArch64 Linux with Debian's cross toolchain
# (packages gcc-aarch64-linux-gnu, libc6-dev-arm64-cross), tests run under
# qemu-user (package qemu-user). Used by `make check-aarch64`:
#
#   cmake -S . -B build-aarch64 \
#     -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
#
# The sysroot is Debian's multiarch cross directory; qemu-aarch64 needs the
# same directory (-L) to find the dynamic loader and libc.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(COGEN_CROSS_PREFIX aarch64-linux-gnu-)
set(COGEN_CROSS_SYSROOT /usr/aarch64-linux-gnu)

set(CMAKE_C_COMPILER ${COGEN_CROSS_PREFIX}gcc)
set(CMAKE_ASM_COMPILER ${COGEN_CROSS_PREFIX}gcc)

set(CMAKE_FIND_ROOT_PATH ${COGEN_CROSS_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# ctest runs every test executable through this.
if(NOT CMAKE_CROSSCOMPILING_EMULATOR)
  set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L ${COGEN_CROSS_SYSROOT})
endif()
