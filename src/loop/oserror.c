/* oserror.c: the OSError family (PEP 3151): Python's subclasses, picked
 * from an errno as Python's OSError constructor picks them, with the errno
 * kept on the exception. */
#define _GNU_SOURCE /* strerror_r returning the message */
#include "cogen_io.h"
#include "core/exc.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#define CG__DEFINE_IO_TYPE(name, base) const cg_exc_type cg_##name = {#name, &cg_##base};
CG_IO_EXC_TYPES(CG__DEFINE_IO_TYPE)
#undef CG__DEFINE_IO_TYPE

/* The errno rides in the payload, as an integer: this destructor (which
 * has nothing to free) is the tag that says so. */
static void errno_tag(void *p) { (void)p; }

static const cg_exc_type *type_for(int err) {
    switch (err) {
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
    case EALREADY:
    case EINPROGRESS: return &cg_BlockingIOError;
    case ECHILD: return &cg_ChildProcessError;
    case EPIPE:
    case ESHUTDOWN: return &cg_BrokenPipeError;
    case ECONNABORTED: return &cg_ConnectionAbortedError;
    case ECONNREFUSED: return &cg_ConnectionRefusedError;
    case ECONNRESET: return &cg_ConnectionResetError;
    case EEXIST: return &cg_FileExistsError;
    case ENOENT: return &cg_FileNotFoundError;
    case EISDIR: return &cg_IsADirectoryError;
    case ENOTDIR: return &cg_NotADirectoryError;
    case EINTR: return &cg_InterruptedError;
    case EACCES:
    case EPERM: return &cg_PermissionError;
    case ESRCH: return &cg_ProcessLookupError;
    case ETIMEDOUT: return &cg_TimeoutError;
    default: return &cg_OSError;
    }
}

cg_exc *cg_oserror_new_msg(const cg_exc_type *type, int err, const char *msg) {
    cg_exc *e = cg_exc_new(type ? type : type_for(err), msg);
    if (err && cg_exc_type_of(e) != &cg_MemoryError) cg_exc_set_payload(e, (void *)(intptr_t)err, errno_tag);
    return e;
}

cg_exc *cg_oserror_new(int err) {
    char buf[160];
    char *s = strerror_r(err, buf, sizeof buf);
    /* (GNU strerror_r returns the message, maybe not in buf) */
    cg_exc *e = cg_exc_newf(type_for(err), "[Errno %d] %s", err, s);
    if (err && cg_exc_type_of(e) != &cg_MemoryError) cg_exc_set_payload(e, (void *)(intptr_t)err, errno_tag);
    return e;
}

void cg_raise_oserror(int err) { cg_raise(cg_oserror_new(err)); }

int cg_exc_errno(const cg_exc *e) {
    return e && e->payload_dtor == errno_tag ? (int)(intptr_t)e->payload : 0;
}
