/* The interface every WireGuard backend implements (kernel generic netlink, userspace UAPI socket)
 * and the constructor that picks one. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include <systemd/sd-event.h>

#include "wg.h"

typedef enum WgBackendKind {
        WG_BACKEND_AUTO,
        WG_BACKEND_KERNEL,
        WG_BACKEND_USERSPACE,
} WgBackendKind;

/* "auto", "kernel", "userspace" (the config's backend= values). Returns 0 or -EINVAL. */
int wg_backend_kind_from_string(const char *s, WgBackendKind *ret, GError **error);
const char *wg_backend_kind_to_string(WgBackendKind k);

typedef struct WgBackendOptions {
        WgBackendKind kind;
        /* Userspace backend: where the UAPI sockets live; NULL = "/run/wireguard". wireguard-go
         * itself always uses /var/run/wireguard (= /run/wireguard), so change it only for tests. */
        const char *uapi_dir;
        /* The wireguard-go binary (a path or a name looked up in PATH); NULL = "wireguard-go". */
        const char *wireguard_go;
        /* Optional: when given, started wireguard-go processes are reaped by a child source on this
         * loop (the caller must block SIGCHLD, as sd-event requires). Without it, ones that exited
         * are collected at the next exists() or link_create(). Either way they are never killed
         * except by link_delete(), so links outlive the daemon. */
        sd_event *event;
        /* How long link_create waits for wireguard-go's socket; 0 = 5 s. */
        uint64_t start_timeout_usec;
        /* A file that receives wireguard-go's output (appended); NULL = inherit our stdout/stderr. */
        const char *wireguard_go_log;
} WgBackendOptions;

typedef struct WgBackend WgBackend;

/* Every function returns 0 (or a positive value where said) or a negative errno; on failure the
 * optional GError carries a message for users that names the interface and the value at fault. */
typedef struct WgBackendVTable {
        const char *name; /* "kernel" or "userspace" */
        /* The device with all its peers and their statistics. -ENODEV when it does not exist. */
        int (*get)(WgBackend *b, const char *ifname, WgDevice **ret, GError **error);
        /* Writes a change set (usually from wg_device_diff()). Large sets are split as the
         * backend needs; each part is acknowledged before the next is sent. */
        int (*set)(WgBackend *b, const WgDevice *change, GError **error);
        /* Creates the WireGuard interface (kernel link, or a wireguard-go process). -EEXIST when
         * it already exists (a userspace socket that answers is adopted and counts as existing). */
        int (*link_create)(WgBackend *b, const char *ifname, GError **error);
        /* Deletes the interface (and stops a wireguard-go we started). -ENODEV when absent. */
        int (*link_delete)(WgBackend *b, const char *ifname, GError **error);
        /* 1 when a WireGuard interface of this backend exists under that name, 0 when not. */
        int (*exists)(WgBackend *b, const char *ifname);
        void (*free)(WgBackend *b);
} WgBackendVTable;

struct WgBackend {
        const WgBackendVTable *vtable;
        WgBackendKind kind;
        void *data; /* the backend's own state */
};

/* Picks the backend: with kind=auto, kernel when the "wireguard" generic netlink family resolves
 * (asking for it makes the kernel load the module when it can), else userspace. kind=kernel fails
 * with -EPROTONOSUPPORT when the family is missing. `options` may be NULL (auto, defaults). */
int wg_backend_new(const WgBackendOptions *options, WgBackend **ret, GError **error);
void wg_backend_free(WgBackend *b);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(WgBackend, wg_backend_free)

/* The two backends, for callers and tests that want one explicitly. */
int wg_backend_new_kernel(const WgBackendOptions *options, WgBackend **ret, GError **error);
int wg_backend_new_userspace(const WgBackendOptions *options, WgBackend **ret, GError **error);
/* True when the kernel has (or can load) WireGuard's generic netlink family. */
bool wg_kernel_available(void);

static inline int wg_backend_get(WgBackend *b, const char *ifname, WgDevice **ret, GError **error)
{
        return b->vtable->get(b, ifname, ret, error);
}
static inline int wg_backend_set(WgBackend *b, const WgDevice *change, GError **error)
{
        return b->vtable->set(b, change, error);
}
static inline int wg_backend_link_create(WgBackend *b, const char *ifname, GError **error)
{
        return b->vtable->link_create(b, ifname, error);
}
static inline int wg_backend_link_delete(WgBackend *b, const char *ifname, GError **error)
{
        return b->vtable->link_delete(b, ifname, error);
}
static inline int wg_backend_exists(WgBackend *b, const char *ifname)
{
        return b->vtable->exists(b, ifname);
}

/* Reads the device, diffs it against `desired` (wg_device_diff()) and writes only the changes.
 * Returns the number of peers added, updated or removed (plus 1 when device attributes changed),
 * 0 when nothing had to change, or a negative errno. */
int wg_backend_sync(WgBackend *b, const WgDevice *desired, GError **error);
