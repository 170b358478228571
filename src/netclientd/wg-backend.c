/* Picking a WireGuard backend, and the read-diff-write cycle every caller wants. */
#include <errno.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "nm-error.h"
#include "wg-backend.h"
#include "wg-internal.h"

int wg_error(GError **error, int r, const char *fmt, ...)
{
        va_list ap;
        int code;

        if (!error)
                return r;
        switch (-r) {
        case EINVAL:
        case ERANGE:
        case EMSGSIZE:
                code = NM_ERROR_INVALID_ARGUMENT;
                break;
        case ENODEV:
        case ENOENT:
        case ESRCH:
                code = NM_ERROR_NOT_FOUND;
                break;
        case EEXIST:
                code = NM_ERROR_CONFLICT;
                break;
        case EPROTONOSUPPORT:
        case EOPNOTSUPP:
        case ECONNREFUSED:
        case ETIMEDOUT:
        case EAGAIN:
                code = NM_ERROR_UNAVAILABLE;
                break;
        case EPERM:
        case EACCES:
                code = NM_ERROR_FORBIDDEN;
                break;
        default:
                code = NM_ERROR_INTERNAL;
        }
        va_start(ap, fmt);
        g_autofree char *msg = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        g_set_error_literal(error, NM_ERROR, code, msg);
        return r;
}

guint wg_key_hash(gconstpointer k)
{
        guint h;
        memcpy(&h, ((const NmKey *)k)->b, sizeof(h));
        return h;
}

gboolean wg_key_equal(gconstpointer a, gconstpointer b)
{
        return nm_key_equal(a, b);
}

int wg_backend_kind_from_string(const char *s, WgBackendKind *ret, GError **error)
{
        if (streq0(s, "auto"))
                *ret = WG_BACKEND_AUTO;
        else if (streq0(s, "kernel"))
                *ret = WG_BACKEND_KERNEL;
        else if (streq0(s, "userspace"))
                *ret = WG_BACKEND_USERSPACE;
        else
                return wg_error(
                        error, -EINVAL,
                        "Invalid WireGuard backend \"%.32s\": \"auto\", \"kernel\" and \"userspace\" are "
                        "accepted",
                        strempty(s));
        return 0;
}

const char *wg_backend_kind_to_string(WgBackendKind k)
{
        switch (k) {
        case WG_BACKEND_KERNEL:
                return "kernel";
        case WG_BACKEND_USERSPACE:
                return "userspace";
        default:
                return "auto";
        }
}

int wg_backend_new(const WgBackendOptions *options, WgBackend **ret, GError **error)
{
        WgBackendKind kind = options ? options->kind : WG_BACKEND_AUTO;

        switch (kind) {
        case WG_BACKEND_KERNEL:
                return wg_backend_new_kernel(options, ret, error);
        case WG_BACKEND_USERSPACE:
                return wg_backend_new_userspace(options, ret, error);
        default:
                if (wg_kernel_available()) {
                        log_debug("WireGuard backend: kernel (generic netlink family found)");
                        return wg_backend_new_kernel(options, ret, error);
                }
                log_debug("WireGuard backend: userspace (the kernel has no WireGuard)");
                return wg_backend_new_userspace(options, ret, error);
        }
}

void wg_backend_free(WgBackend *b)
{
        if (!b)
                return;
        if (b->vtable && b->vtable->free)
                b->vtable->free(b);
        g_free(b);
}

int wg_backend_sync(WgBackend *b, const WgDevice *desired, GError **error)
{
        g_autoptr(WgDevice) current = NULL, change = NULL;
        int r, n;

        r = wg_backend_get(b, desired->ifname, &current, error);
        if (r < 0)
                return r;
        r = wg_device_diff(current, desired, &change);
        if (r < 0)
                return wg_error(error, r,
                                "Failed to compare WireGuard interface \"%s\" with its configuration",
                                desired->ifname);
        if (wg_device_is_empty(change))
                return 0;
        r = wg_backend_set(b, change, error);
        if (r < 0)
                return r;
        n = (int)change->peers->len;
        if (change->flags & (WG_DEVICE_HAS_PRIVATE_KEY | WG_DEVICE_HAS_LISTEN_PORT | WG_DEVICE_HAS_FWMARK))
                n++;
        return n;
}
