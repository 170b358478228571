/* D-Bus error names of org.netmaker.Client and their mapping from API error codes and errnos. */
#include <errno.h>
#include <stdio.h>

#include "bus-errors.h"
#include "nm-error.h"

const sd_bus_error_map bus_error_map[] = {
        SD_BUS_ERROR_MAP(BUS_ERROR_FAILED, EIO),
        SD_BUS_ERROR_MAP(BUS_ERROR_INVALID_ARGUMENT, EINVAL),
        SD_BUS_ERROR_MAP(BUS_ERROR_UNAUTHENTICATED, EKEYREJECTED),
        SD_BUS_ERROR_MAP(BUS_ERROR_ACCESS_DENIED, EPERM),
        SD_BUS_ERROR_MAP(BUS_ERROR_NOT_FOUND, ENOENT),
        SD_BUS_ERROR_MAP(BUS_ERROR_NOT_SUPPORTED, EOPNOTSUPP),
        SD_BUS_ERROR_MAP(BUS_ERROR_CONFLICT, EEXIST),
        SD_BUS_ERROR_MAP(BUS_ERROR_KEY_EXHAUSTED, EKEYEXPIRED),
        SD_BUS_ERROR_MAP(BUS_ERROR_UNAVAILABLE, EHOSTUNREACH),
        SD_BUS_ERROR_MAP(BUS_ERROR_EXHAUSTED, ENOSPC),
        SD_BUS_ERROR_MAP(BUS_ERROR_NOT_REGISTERED, ENOLINK),
        SD_BUS_ERROR_MAP(BUS_ERROR_BUSY, EBUSY),
        SD_BUS_ERROR_MAP(BUS_ERROR_CANCELLED, ECANCELED),
        SD_BUS_ERROR_MAP_END,
};

static const int code_errno[_NM_ERROR_MAX] = {
        [NM_ERROR_INTERNAL] = EIO,
        [NM_ERROR_INVALID_JSON] = EINVAL,
        [NM_ERROR_INVALID_ARGUMENT] = EINVAL,
        [NM_ERROR_UNAUTHENTICATED] = EKEYREJECTED,
        [NM_ERROR_FORBIDDEN] = EPERM,
        [NM_ERROR_NOT_FOUND] = ENOENT,
        [NM_ERROR_METHOD_NOT_ALLOWED] = EOPNOTSUPP,
        [NM_ERROR_CONFLICT] = EEXIST,
        [NM_ERROR_GONE] = EKEYEXPIRED,
        [NM_ERROR_TOO_LARGE] = EINVAL,
        [NM_ERROR_UNSUPPORTED_MEDIA_TYPE] = EINVAL,
        [NM_ERROR_UNAVAILABLE] = EHOSTUNREACH,
        [NM_ERROR_EXHAUSTED] = ENOSPC,
        [NM_ERROR_TOO_MANY_REQUESTS] = EHOSTUNREACH,
};

const char *bus_error_name_for_code(int code)
{
        /* Interned: the names are a small fixed set, and sd_bus_error wants a string that lives. */
        g_autofree char *name = g_strconcat(BUS_ERROR_PREFIX, nm_error_dbus_suffix(code), NULL);
        return g_intern_string(name);
}

static int errno_for_code(int code)
{
        if (code < 0 || code >= _NM_ERROR_MAX)
                return EIO;
        return code_errno[code];
}

int bus_error_set_gerror(sd_bus_error *e, const GError *error)
{
        if (!error)
                return sd_bus_error_set(e, BUS_ERROR_FAILED, "Failed (no details)");
        if (error->domain != NM_ERROR) {
                sd_bus_error_set(e, BUS_ERROR_FAILED, error->message);
                return -EIO;
        }
        sd_bus_error_set(e, bus_error_name_for_code(error->code), error->message);
        return -errno_for_code(error->code);
}

int bus_error_setf_code(sd_bus_error *e, int code, const char *fmt, ...)
{
        va_list ap;
        char buf[1024];

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        sd_bus_error_set(e, bus_error_name_for_code(code), buf);
        return -errno_for_code(code);
}
