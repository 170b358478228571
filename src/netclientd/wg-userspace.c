/* The userspace WireGuard backend: wireguard-go processes (started or adopted) configured over
 * their UAPI sockets. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "link.h"
#include "log.h"
#include "macro.h"
#include "wg-backend.h"
#include "wg-internal.h"
#include "wg-uapi.h"

extern char **environ;

typedef struct UserspaceBackend UserspaceBackend;

/* A wireguard-go we started. */
typedef struct Child {
        UserspaceBackend *backend;
        char *ifname;
        pid_t pid;
        sd_event_source *source; /* reaps it when a loop was given */
} Child;

struct UserspaceBackend {
        char *uapi_dir;
        char *wireguard_go;
        char *wireguard_go_log;
        sd_event *event;
        uint64_t start_timeout_usec;
        GHashTable *children; /* ifname → Child */
        struct nl_sock *rtnl;
};

static void child_free(Child *c)
{
        if (!c)
                return;
        /* Dropping the source leaves the process running: links outlive the daemon. */
        sd_event_source_disable_unref(c->source);
        g_free(c->ifname);
        g_free(c);
}

static int on_child_exit(sd_event_source *s, const siginfo_t *si, void *userdata)
{
        Child *c = userdata;

        log_debug("wireguard-go for \"%s\" (PID %d) exited: %s %d", c->ifname, (int)c->pid,
                  si->si_code == CLD_EXITED ? "status" : "signal", si->si_status);
        g_hash_table_remove(c->backend->children, c->ifname);
        return 0;
}

static int64_t now_usec(void)
{
        return g_get_monotonic_time();
}

/* 1 when the process has exited (it is not reaped: the child source or child_reap does that). */
static int child_exited(pid_t pid, int *ret_status)
{
        siginfo_t si = {};

        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
                return errno == ECHILD ? 1 : -errno;
        if (si.si_pid != pid)
                return 0;
        if (ret_status)
                *ret_status = si.si_status;
        return 1;
}

static void child_reap(pid_t pid)
{
        (void)waitpid(pid, NULL, WNOHANG);
}

/* SIGTERM, SIGKILL after 3 s, then reaped: for a child no event source watches any more. */
static void child_stop(pid_t pid)
{
        int64_t deadline = now_usec() + 3 * G_USEC_PER_SEC;

        (void)kill(pid, SIGTERM);
        while (child_exited(pid, NULL) == 0 && now_usec() < deadline)
                g_usleep(5000);
        if (child_exited(pid, NULL) == 0) {
                (void)kill(pid, SIGKILL);
                while (child_exited(pid, NULL) == 0)
                        g_usleep(5000);
        }
        child_reap(pid);
}

static int spawn_wireguard_go(UserspaceBackend *u, const char *ifname, pid_t *ret)
{
        posix_spawnattr_t attr;
        posix_spawn_file_actions_t fa;
        sigset_t none, defaults;
        g_auto(GStrv) env = NULL;
        char *argv[] = {u->wireguard_go, (char *)"-f", (char *)ifname, NULL};
        int r;

        /* Foreground, so the PID is the daemon's; the variable also quiets its banner. */
        env = g_environ_setenv(g_get_environ(), "WG_PROCESS_FOREGROUND", "1", TRUE);

        r = posix_spawnattr_init(&attr);
        if (r != 0)
                return -r;
        /* sd-event callers block SIGCHLD and friends; the child must start with a clean slate, in
         * its own session so a terminal's ^C on a short-lived caller does not reach it. */
        sigemptyset(&none);
        sigemptyset(&defaults);
        sigaddset(&defaults, SIGCHLD);
        sigaddset(&defaults, SIGPIPE);
        sigaddset(&defaults, SIGTERM);
        sigaddset(&defaults, SIGINT);
        sigaddset(&defaults, SIGHUP);
        posix_spawnattr_setsigmask(&attr, &none);
        posix_spawnattr_setsigdefault(&attr, &defaults);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);
        posix_spawn_file_actions_init(&fa);
        if (u->wireguard_go_log) {
                posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, u->wireguard_go_log,
                                                 O_WRONLY | O_CREAT | O_APPEND, 0600);
                posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
        }
        r = posix_spawnp(ret, u->wireguard_go, &fa, &attr, argv, env);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        return -r;
}

/* Without an event loop nobody is told when a wireguard-go dies: collect those that did, so they
 * do not linger as zombies. */
static void children_reap_exited(UserspaceBackend *u)
{
        GHashTableIter i;
        Child *c;

        if (u->event)
                return;
        g_hash_table_iter_init(&i, u->children);
        while (g_hash_table_iter_next(&i, NULL, (gpointer *)&c))
                if (child_exited(c->pid, NULL) > 0) {
                        log_debug("wireguard-go for \"%s\" (PID %d) has exited", c->ifname, (int)c->pid);
                        child_reap(c->pid);
                        g_hash_table_iter_remove(&i);
                }
}

static int userspace_get(WgBackend *b, const char *ifname, WgDevice **ret, GError **error)
{
        UserspaceBackend *u = b->data;
        return wg_uapi_get(u->uapi_dir, ifname, 0, ret, error);
}

static int userspace_set(WgBackend *b, const WgDevice *change, GError **error)
{
        UserspaceBackend *u = b->data;
        if (wg_device_is_empty(change))
                return 0;
        return wg_uapi_set(u->uapi_dir, change, 0, error);
}

static int userspace_exists(WgBackend *b, const char *ifname)
{
        UserspaceBackend *u = b->data;
        if (!wg_ifname_valid(ifname, NULL))
                return -EINVAL;
        children_reap_exited(u);
        return wg_uapi_socket_alive(u->uapi_dir, ifname);
}

static int userspace_link_create(WgBackend *b, const char *ifname, GError **error)
{
        UserspaceBackend *u = b->data;
        Child *c;
        pid_t pid;
        int64_t deadline;
        int r, status = 0;

        if (!wg_ifname_valid(ifname, error))
                return -EINVAL;
        children_reap_exited(u);
        r = wg_uapi_socket_alive(u->uapi_dir, ifname);
        if (r > 0)
                return wg_error(error, -EEXIST, "Userspace WireGuard interface \"%s\" already runs", ifname);
        if (r == 0) {
                /* A socket file nothing answers on is left from a process that died (on this
                 * machine /run survives crashes): remove it so the new process can bind. */
                g_autofree char *path = wg_uapi_socket_path(u->uapi_dir, ifname);
                struct stat st;
                if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && unlink(path) == 0)
                        log_debug("Removed stale UAPI socket %s", path);
        }
        if (link_get_ifindex(ifname) >= 0)
                return wg_error(
                        error, -EEXIST,
                        "Cannot create WireGuard interface \"%s\": a network interface of that name exists",
                        ifname);

        r = spawn_wireguard_go(u, ifname, &pid);
        if (r < 0)
                return wg_error(error, r, "Failed to start %s for \"%s\": %s", u->wireguard_go, ifname,
                                g_strerror(-r));
        log_debug("Started %s for \"%s\" (PID %d)", u->wireguard_go, ifname, (int)pid);

        deadline = now_usec() + (int64_t)u->start_timeout_usec;
        for (;;) {
                if (wg_uapi_socket_alive(u->uapi_dir, ifname) > 0)
                        break;
                if (child_exited(pid, &status) > 0) {
                        child_reap(pid);
                        return wg_error(
                                error, -ECHILD,
                                "%s for \"%s\" exited (status %d) before its socket appeared in %s; its "
                                "error output says why",
                                u->wireguard_go, ifname, status, u->uapi_dir);
                }
                if (now_usec() > deadline) {
                        child_stop(pid);
                        return wg_error(error, -ETIMEDOUT,
                                        "%s for \"%s\" did not open its socket in %s within %.1f s",
                                        u->wireguard_go, ifname, u->uapi_dir,
                                        (double)u->start_timeout_usec / G_USEC_PER_SEC);
                }
                g_usleep(5000);
        }

        c = g_new0(Child, 1);
        c->backend = u;
        c->ifname = g_strdup(ifname);
        c->pid = pid;
        if (u->event) {
                r = sd_event_add_child(u->event, &c->source, pid, WEXITED, on_child_exit, c);
                if (r < 0)
                        log_debug_errno(r,
                                        "Cannot watch wireguard-go (PID %d) on the event loop (is SIGCHLD "
                                        "blocked?): %m",
                                        (int)pid);
        }
        g_hash_table_replace(u->children, c->ifname, c);
        return 0;
}

static int rtnl(UserspaceBackend *u, struct nl_sock **ret)
{
        if (!u->rtnl) {
                int r = link_rtnl_open(&u->rtnl);
                if (r < 0)
                        return r;
        }
        *ret = u->rtnl;
        return 0;
}

static int userspace_link_delete(WgBackend *b, const char *ifname, GError **error)
{
        UserspaceBackend *u = b->data;
        struct nl_sock *sk;
        Child *c;
        bool found = false;
        int r;

        if (!wg_ifname_valid(ifname, error))
                return -EINVAL;

        c = g_hash_table_lookup(u->children, ifname);
        if (c) {
                pid_t pid = c->pid;

                /* On SIGTERM wireguard-go closes its tun (which deletes the link) and its socket. */
                found = true;
                g_hash_table_remove(u->children, ifname);
                child_stop(pid);
        }

        /* An adopted wireguard-go exits by itself once its link is gone. */
        if (link_get_ifindex(ifname) >= 0) {
                found = true;
                r = rtnl(u, &sk);
                if (r >= 0)
                        r = link_delete(sk, ifname);
                if (r < 0 && r != -ENODEV)
                        return wg_error(error, r, "Failed to delete interface \"%s\": %s", ifname,
                                        g_strerror(-r));
        }
        if (!found)
                return wg_error(error, -ENODEV, "No WireGuard interface \"%s\"", ifname);
        return 0;
}

static void userspace_free(WgBackend *b)
{
        UserspaceBackend *u = b->data;
        if (!u)
                return;
        g_hash_table_unref(u->children);
        if (u->rtnl)
                nl_socket_free(u->rtnl);
        sd_event_unref(u->event);
        g_free(u->uapi_dir);
        g_free(u->wireguard_go);
        g_free(u->wireguard_go_log);
        g_free(u);
}

static const WgBackendVTable userspace_vtable = {
        .name = "userspace",
        .get = userspace_get,
        .set = userspace_set,
        .link_create = userspace_link_create,
        .link_delete = userspace_link_delete,
        .exists = userspace_exists,
        .free = userspace_free,
};

int wg_backend_new_userspace(const WgBackendOptions *options, WgBackend **ret, GError **error)
{
        WgBackend *b = g_new0(WgBackend, 1);
        UserspaceBackend *u = g_new0(UserspaceBackend, 1);

        u->uapi_dir = g_strdup(options && options->uapi_dir ? options->uapi_dir : WG_UAPI_DEFAULT_DIR);
        u->wireguard_go =
                g_strdup(options && options->wireguard_go ? options->wireguard_go : "wireguard-go");
        u->wireguard_go_log = g_strdup(options ? options->wireguard_go_log : NULL);
        u->event = options && options->event ? sd_event_ref(options->event) : NULL;
        u->start_timeout_usec =
                options && options->start_timeout_usec ? options->start_timeout_usec : 5 * G_USEC_PER_SEC;
        u->children = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)child_free);

        b->vtable = &userspace_vtable;
        b->kind = WG_BACKEND_USERSPACE;
        b->data = u;
        *ret = b;
        return 0;
}
