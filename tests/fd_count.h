/* fd_count.h: how many fds the process has open (/proc/self/fd), for the
 * I/O tests' "no fd left behind" checks. (The count includes the
 * directory's own fd, the same before and after.) */
#ifndef COGEN_TEST_FD_COUNT_H
#define COGEN_TEST_FD_COUNT_H

#include "check.h"

#include <dirent.h>

static inline int count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    CHECK(d != NULL);
    int n = 0;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

#endif
