/* Proves the userspace backend's process handling with a stand-in for wireguard-go (a small
 * Python UAPI server in a temporary directory): it starts the program with -f and
 * WG_PROCESS_FOREGROUND=1, waits for its socket, adopts a running one, reaps it through an
 * sd-event child source when it dies, stops it on link delete, and reports programs that exit
 * early, never open their socket or do not exist. Needs no root. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "wg-backend.h"
#include "wg-uapi.h"

#define PYTHON "/usr/bin/python3"

/* argv: -f IFNAME; serves get=1/set=1 on $FAKE_UAPI_DIR/IFNAME.sock until SIGTERM. It records its
 * arguments and WG_PROCESS_FOREGROUND next to the socket so the test can check them. */
static const char FAKE[] =
        "#!" PYTHON "\n"
        "import os, signal, socket, sys\n"
        "d = os.environ['FAKE_UAPI_DIR']; ifname = sys.argv[2]\n"
        "path = os.path.join(d, ifname + '.sock')\n"
        "open(os.path.join(d, ifname + '.args'), 'w').write(' '.join(sys.argv[1:]) + ' ' + "
        "os.environ.get('WG_PROCESS_FOREGROUND', '-'))\n"
        "def bye(*a):\n"
        "    os.unlink(path); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, bye)\n"
        "s = socket.socket(socket.AF_UNIX); s.bind(path); s.listen(4)\n"
        "while True:\n"
        "    c, _ = s.accept(); buf = b''\n"
        "    while b'\\n\\n' not in buf:\n"
        "        b = c.recv(4096)\n"
        "        if not b: break\n"
        "        buf += b\n"
        "    if buf.startswith(b'get=1'): c.sendall(b'listen_port=4242\\nerrno=0\\n\\n')\n"
        "    elif buf.startswith(b'set=1'): c.sendall(b'errno=0\\n\\n')\n"
        "    c.close()\n";

static char *dir;
static char *fake_path;

static pid_t socket_peer_pid(const char *ifname)
{
        g_autofree char *path = wg_uapi_socket_path(dir, ifname);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        struct ucred cred = {};
        socklen_t len = sizeof(cred);
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        g_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
        g_assert_cmpint(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
        g_assert_cmpint(getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len), ==, 0);
        return cred.pid;
}

static void run_loop_until_reaped(sd_event *e, pid_t pid)
{
        gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
        while (g_get_monotonic_time() < deadline) {
                sd_event_run(e, 50 * 1000);
                /* Reaped by the child source: no longer our child at all. */
                if (waitid(P_PID, (id_t)pid, &(siginfo_t){}, WEXITED | WNOHANG | WNOWAIT) < 0 &&
                    errno == ECHILD)
                        return;
        }
        g_assert_not_reached();
}

static void test_start_adopt_reap_stop(void)
{
        sd_event *e = NULL;
        g_autoptr(WgBackend) b = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(WgDevice) d = NULL;
        g_autofree char *args = NULL;
        g_autofree char *args_path = g_build_filename(dir, "wgfake0.args", NULL);
        pid_t pid;

        g_assert_cmpint(sd_event_new(&e), >=, 0);
        WgBackendOptions o = {
                .kind = WG_BACKEND_USERSPACE, .uapi_dir = dir, .wireguard_go = fake_path, .event = e};
        g_assert_cmpint(wg_backend_new(&o, &b, NULL), ==, 0);

        g_assert_cmpint(wg_backend_exists(b, "wgfake0"), ==, 0);
        g_assert_cmpint(wg_backend_link_create(b, "wgfake0", &error), ==, 0);
        g_assert_no_error(error);
        g_assert_cmpint(wg_backend_exists(b, "wgfake0"), ==, 1);
        g_assert_true(g_file_get_contents(args_path, &args, NULL, NULL));
        g_assert_cmpstr(args, ==, "-f wgfake0 1");
        g_assert_cmpint(wg_backend_get(b, "wgfake0", &d, &error), ==, 0);
        g_assert_cmpuint(d->listen_port, ==, 4242);

        /* A second create finds it running. */
        g_assert_cmpint(wg_backend_link_create(b, "wgfake0", &error), ==, -EEXIST);
        g_assert_nonnull(strstr(error->message, "already runs"));
        g_clear_error(&error);

        /* It dies: the child source reaps it, and it no longer counts as existing. */
        pid = socket_peer_pid("wgfake0");
        g_assert_cmpint(pid, >, 0);
        g_assert_cmpint(kill(pid, SIGKILL), ==, 0);
        run_loop_until_reaped(e, pid);
        g_assert_cmpint(wg_backend_exists(b, "wgfake0"), ==, 0);

        /* Started again, then stopped by link_delete. */
        g_assert_cmpint(wg_backend_link_create(b, "wgfake0", &error), ==, 0);
        pid = socket_peer_pid("wgfake0");
        g_assert_cmpint(wg_backend_link_delete(b, "wgfake0", &error), ==, 0);
        g_assert_no_error(error);
        g_assert_cmpint(wg_backend_exists(b, "wgfake0"), ==, 0);
        g_assert_cmpint(kill(pid, 0), ==, -1);
        g_assert_cmpint(wg_backend_link_delete(b, "wgfake0", &error), ==, -ENODEV);
        g_clear_error(&error);

        /* A running one we did not start is adopted: configured, and counted as existing. */
        g_clear_pointer(&b, wg_backend_free);
        g_assert_cmpint(wg_backend_new(&o, &b, NULL), ==, 0);
        g_assert_cmpint(wg_backend_link_create(b, "wgfake1", &error), ==, 0);
        pid = socket_peer_pid("wgfake1");
        g_autoptr(WgBackend) other = NULL;
        g_assert_cmpint(wg_backend_new(&o, &other, NULL), ==, 0);
        g_assert_cmpint(wg_backend_exists(other, "wgfake1"), ==, 1);
        g_autoptr(WgDevice) c = wg_device_new("wgfake1");
        wg_device_set_listen_port(c, 1);
        g_assert_cmpint(wg_backend_set(other, c, &error), ==, 0);
        g_clear_pointer(&other, wg_backend_free);
        /* Freeing the backend leaves the process running: links outlive the daemon. */
        g_clear_pointer(&b, wg_backend_free);
        g_assert_cmpint(kill(pid, 0), ==, 0);
        g_assert_cmpint(kill(pid, SIGTERM), ==, 0);
        g_assert_cmpint(waitpid(pid, NULL, 0), ==, pid);

        sd_event_unref(e);
}

static void test_no_event_loop(void)
{
        g_autoptr(WgBackend) b = NULL;
        g_autoptr(GError) error = NULL;
        WgBackendOptions o = {.kind = WG_BACKEND_USERSPACE, .uapi_dir = dir, .wireguard_go = fake_path};
        pid_t pid;

        g_assert_cmpint(wg_backend_new(&o, &b, NULL), ==, 0);
        g_assert_cmpint(wg_backend_link_create(b, "wgfake4", &error), ==, 0);
        pid = socket_peer_pid("wgfake4");
        g_assert_cmpint(kill(pid, SIGKILL), ==, 0);
        /* The next look collects it: not a zombie, not ours any more. */
        for (int i = 0; i < 200 && kill(pid, 0) == 0; i++) {
                (void)wg_backend_exists(b, "wgfake4");
                g_usleep(10 * 1000);
        }
        g_assert_cmpint(kill(pid, 0), ==, -1);
        g_assert_cmpint(wg_backend_exists(b, "wgfake4"), ==, 0);
        /* And it can be started again over its stale socket. */
        g_assert_cmpint(wg_backend_link_create(b, "wgfake4", &error), ==, 0);
        g_assert_cmpint(wg_backend_link_delete(b, "wgfake4", &error), ==, 0);
}

static void test_failures(void)
{
        g_autoptr(WgBackend) b = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *sleeper = g_build_filename(dir, "sleeper", NULL);

        /* Exits at once. */
        WgBackendOptions o = {.kind = WG_BACKEND_USERSPACE, .uapi_dir = dir, .wireguard_go = "/bin/false"};
        g_assert_cmpint(wg_backend_new(&o, &b, NULL), ==, 0);
        g_assert_cmpint(wg_backend_link_create(b, "wgfake2", &error), ==, -ECHILD);
        g_assert_nonnull(strstr(error->message, "exited (status 1) before its socket appeared"));
        g_clear_error(&error);
        g_clear_pointer(&b, wg_backend_free);

        /* Does not exist. */
        o.wireguard_go = "/nonexistent/wireguard-go";
        g_assert_cmpint(wg_backend_new(&o, &b, NULL), ==, 0);
        g_assert_cmpint(wg_backend_link_create(b, "wgfake2", &error), ==, -ENOENT);
        g_assert_nonnull(strstr(error->message, "/nonexistent/wireguard-go"));
        g_clear_error(&error);
        g_clear_pointer(&b, wg_backend_free);

        /* Never opens its socket: stopped after the timeout, not left behind. */
        g_assert_true(g_file_set_contents(sleeper, "#!/bin/sh\nexec sleep 30\n", -1, NULL));
        g_assert_cmpint(chmod(sleeper, 0700), ==, 0);
        o.wireguard_go = sleeper;
        o.start_timeout_usec = 300 * 1000;
        g_assert_cmpint(wg_backend_new(&o, &b, NULL), ==, 0);
        g_assert_cmpint(wg_backend_link_create(b, "wgfake3", &error), ==, -ETIMEDOUT);
        g_assert_nonnull(strstr(error->message, "did not open its socket"));
        g_assert_cmpint(waitpid(-1, NULL, WNOHANG), ==, -1); /* nothing left to reap */
        g_assert_cmpint(errno, ==, ECHILD);
        unlink(sleeper);
}

int main(int argc, char *argv[])
{
        sigset_t mask;
        int r;

        g_test_init(&argc, &argv, NULL);
        if (access(PYTHON, X_OK) < 0) {
                g_test_message(PYTHON " is missing");
                return 77;
        }
        /* What sd-event child sources need, and what the daemon does. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        dir = g_dir_make_tmp("wg-userspace-XXXXXX", NULL);
        fake_path = g_build_filename(dir, "fake-wireguard-go", NULL);
        g_assert_true(g_file_set_contents(fake_path, FAKE, -1, NULL));
        g_assert_cmpint(chmod(fake_path, 0700), ==, 0);
        g_setenv("FAKE_UAPI_DIR", dir, TRUE);

        g_test_add_func("/wg-userspace/start-adopt-reap-stop", test_start_adopt_reap_stop);
        g_test_add_func("/wg-userspace/no-event-loop", test_no_event_loop);
        g_test_add_func("/wg-userspace/failures", test_failures);
        r = g_test_run();

        g_autoptr(GDir) gd = g_dir_open(dir, 0, NULL);
        for (const char *n; gd && (n = g_dir_read_name(gd));) {
                g_autofree char *p = g_build_filename(dir, n, NULL);
                unlink(p);
        }
        rmdir(dir);
        return r;
}
