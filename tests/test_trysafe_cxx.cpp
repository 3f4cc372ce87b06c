// test_trysafe_cxx.cpp: test_trysafe.c built as C++ (-Wshadow as an error
// there too), so that cogen.h's macros are checked in a C++ translation
// unit: nested CG_TRY, CG_DEFER, cg_try_call. trysafe.cmake runs every case.
#include "test_trysafe.c"
