/* Small helpers every program of the project uses: cleanup attributes and array macros. */
#pragma once

#include <errno.h>
#include <stddef.h>
#include <unistd.h>
#include <glib.h>

#define _cleanup_(f)         __attribute__((cleanup(f)))
#define _unused_             __attribute__((unused))
#define _printf_(a, b)       __attribute__((format(printf, a, b)))
#define _warn_unused_result_ __attribute__((warn_unused_result))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

static inline void closep(int *fd)
{
        if (fd && *fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}
#define _cleanup_close_ _cleanup_(closep)

static inline int take_fd(int *fd)
{
        int r = *fd;
        *fd = -1;
        return r;
}
#define TAKE_FD(fd) take_fd(&(fd))
#define TAKE_PTR(p) g_steal_pointer(&(p))

/* Wipes a secret before freeing it: for keys, passwords and credentials held in memory. */
void nm_free_secret(char *s);
static inline void nm_free_secretp(char **s)
{
        nm_free_secret(*s);
}
#define _cleanup_secret_ _cleanup_(nm_free_secretp)

static inline const char *strempty(const char *s)
{
        return s ? s : "";
}
static inline const char *strna(const char *s)
{
        return s ? s : "n/a";
}
static inline gboolean streq0(const char *a, const char *b)
{
        return g_strcmp0(a, b) == 0;
}
