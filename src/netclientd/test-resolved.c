/* Proves the resolved client against stand-ins for systemd-resolved and systemd-networkd on a
 * private dbus-daemon: the calls and their arguments (SetLinkDNS or SetLinkDNSEx for another port,
 * the routing domains, no default route), a change of domains applied again, a link resolved does not know
 * yet asked for again, LinkBusy answered through networkd, resolved's restart re-applying, its absence
 * leaving the link pending, a refusal retried without a warning storm, and RevertLink on removal. */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "resolved.h"

static sd_event *event;
static char *bus_address;
static char *bus_dir;
static pid_t daemon_pid;

/* What a stand-in does with each call. */
typedef struct Fake {
        const char *name; /* org.freedesktop.resolve1 or org.freedesktop.network1 */
        sd_bus *bus;
        GPtrArray *calls;      /* "Method ifindex args" */
        const char *error;     /* every call fails with this error name, or NULL */
        unsigned no_such_link; /* the next N calls fail with NoSuchLink */
        int busy_ifindex;      /* calls for this link fail with LinkBusy (networkd manages it) */
} Fake;

static Fake resolve1 = {.name = "org.freedesktop.resolve1"};
static Fake network1 = {.name = "org.freedesktop.network1"};

static int on_call(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        Fake *f = userdata;
        const char *member = sd_bus_message_get_member(m);
        g_autoptr(GString) s = g_string_new(member);
        int32_t ifindex;
        int r;

        r = sd_bus_message_read(m, "i", &ifindex);
        if (r < 0)
                return r;
        g_string_append_printf(s, " %d", ifindex);
        if (streq0(member, "SetLinkDNS") || streq0(member, "SetLinkDNSEx")) {
                bool ex = streq0(member, "SetLinkDNSEx");
                r = sd_bus_message_enter_container(m, 'a', ex ? "(iayqs)" : "(iay)");
                while (r >= 0 && (r = sd_bus_message_enter_container(m, 'r', ex ? "iayqs" : "iay")) > 0) {
                        int32_t family;
                        const void *addr;
                        size_t len;
                        char text[64];
                        sd_bus_message_read(m, "i", &family);
                        sd_bus_message_read_array(m, 'y', &addr, &len);
                        inet_ntop(family, addr, text, sizeof(text));
                        g_string_append_printf(s, " %s", text);
                        if (ex) {
                                uint16_t port;
                                const char *sni;
                                sd_bus_message_read(m, "qs", &port, &sni);
                                g_string_append_printf(s, ":%u", port);
                        }
                        sd_bus_message_exit_container(m);
                }
        } else if (streq0(member, "SetLinkDomains")) {
                const char *d;
                int route_only;
                r = sd_bus_message_enter_container(m, 'a', "(sb)");
                while (r >= 0 && sd_bus_message_read(m, "(sb)", &d, &route_only) > 0)
                        g_string_append_printf(s, " %s%s", route_only ? "~" : "", d);
        } else if (streq0(member, "SetLinkDefaultRoute")) {
                int b;
                sd_bus_message_read(m, "b", &b);
                g_string_append_printf(s, " %s", b ? "yes" : "no");
        } else if (g_str_has_prefix(member, "SetLink")) {
                const char *v;
                sd_bus_message_read(m, "s", &v);
                g_string_append_printf(s, " %s", v);
        }
        g_ptr_array_add(f->calls, g_string_free(TAKE_PTR(s), false));
        if (f->no_such_link > 0) {
                f->no_such_link--;
                return sd_bus_error_setf(error, "org.freedesktop.resolve1.NoSuchLink", "Link %d not known",
                                         ifindex);
        }
        if (ifindex == f->busy_ifindex)
                return sd_bus_error_setf(error, "org.freedesktop.resolve1.LinkBusy", "Link %d is managed.",
                                         ifindex);
        if (f->error)
                return sd_bus_error_setf(error, f->error, "refused by the stand-in");
        return sd_bus_reply_method_return(m, NULL);
}

static const sd_bus_vtable fake_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("SetLinkDNS", "ia(iay)", "", on_call, 0),
        SD_BUS_METHOD("SetLinkDNSEx", "ia(iayqs)", "", on_call, 0),
        SD_BUS_METHOD("SetLinkDomains", "ia(sb)", "", on_call, 0),
        SD_BUS_METHOD("SetLinkDefaultRoute", "ib", "", on_call, 0),
        SD_BUS_METHOD("SetLinkDNSSEC", "is", "", on_call, 0),
        SD_BUS_METHOD("SetLinkDNSOverTLS", "is", "", on_call, 0),
        SD_BUS_METHOD("SetLinkLLMNR", "is", "", on_call, 0),
        SD_BUS_METHOD("SetLinkMulticastDNS", "is", "", on_call, 0),
        SD_BUS_METHOD("RevertLink", "i", "", on_call, 0),
        SD_BUS_METHOD("RevertLinkDNS", "i", "", on_call, 0),
        SD_BUS_VTABLE_END,
};

static sd_bus *connect_bus(void)
{
        sd_bus *b = NULL;
        g_assert_cmpint(sd_bus_new(&b), >=, 0);
        g_assert_cmpint(sd_bus_set_address(b, bus_address), >=, 0);
        g_assert_cmpint(sd_bus_set_bus_client(b, 1), >=, 0);
        g_assert_cmpint(sd_bus_start(b), >=, 0);
        g_assert_cmpint(sd_bus_attach_event(b, event, 0), >=, 0);
        return b;
}

static void fake_start(Fake *f)
{
        bool resolve = f == &resolve1;
        f->bus = connect_bus();
        if (!f->calls)
                f->calls = g_ptr_array_new_with_free_func(g_free);
        g_assert_cmpint(
                sd_bus_add_object_vtable(
                        f->bus, NULL, resolve ? "/org/freedesktop/resolve1" : "/org/freedesktop/network1",
                        resolve ? "org.freedesktop.resolve1.Manager" : "org.freedesktop.network1.Manager",
                        fake_vtable, f),
                >=, 0);
        g_assert_cmpint(sd_bus_request_name(f->bus, f->name, 0), >=, 0);
}

static void fake_stop(Fake *f)
{
        f->bus = sd_bus_flush_close_unref(f->bus);
}

static void run_until(bool (*cond)(void), unsigned max_ms)
{
        for (unsigned i = 0; i < max_ms / 5 && !cond(); i++)
                g_assert_cmpint(sd_event_run(event, 5 * 1000), >=, 0);
}

static void pump(unsigned ms)
{
        for (unsigned i = 0; i < ms / 5; i++)
                g_assert_cmpint(sd_event_run(event, 5 * 1000), >=, 0);
}

static bool has_call(Fake *f, const char *call)
{
        for (guint i = 0; i < f->calls->len; i++)
                if (streq0(f->calls->pdata[i], call))
                        return true;
        return false;
}

static Fake *wanted_fake;
static const char *wanted_call;
static bool called(void)
{
        return has_call(wanted_fake, wanted_call);
}

static void wait_call(Fake *f, const char *call)
{
        wanted_fake = f;
        wanted_call = call;
        run_until(called, 5000);
        if (!has_call(f, call))
                g_error("no call \"%s\"", call);
}

static Resolved *client;
static GPtrArray *states; /* "ifindex state" */

static void on_state(Resolved *r, int ifindex, ResolvedLinkState state, void *userdata)
{
        g_ptr_array_add(states, g_strdup_printf("%d %s", ifindex, resolved_link_state_to_string(state)));
}

static ResolvedLinkState state_of(int ifindex)
{
        return resolved_link_state(client, ifindex, NULL);
}

static int wanted_ifindex;
static ResolvedLinkState wanted_state;
static bool reached(void)
{
        return state_of(wanted_ifindex) == wanted_state;
}

static void wait_state(int ifindex, ResolvedLinkState s)
{
        wanted_ifindex = ifindex;
        wanted_state = s;
        run_until(reached, 5000);
        g_assert_cmpstr(resolved_link_state_to_string(state_of(ifindex)), ==,
                        resolved_link_state_to_string(s));
}

static void test_resolved(void)
{
        ResolvedServer servers[2] = {{AF_INET}, {AF_INET6}};
        const char *office[] = {"office.nm.internal", NULL};
        const char *lab[] = {"lab.nm.internal", NULL};
        const char *busy[] = {"busy.nm.internal", NULL};
        const char *denied[] = {"denied.nm.internal", NULL};
        const char *split[] = {"office.nm.internal", "corp.example", "home.arpa", NULL};
        const char *none[] = {NULL};
        int f;
        const char *err = NULL;

        g_assert_cmpint(nm_addr_parse("10.99.0.1", &f, &servers[0].addr), ==, 0);
        g_assert_cmpint(nm_addr_parse("fd00:99::1", &f, &servers[1].addr), ==, 0);
        states = g_ptr_array_new_with_free_func(g_free);
        sd_bus *bus = connect_bus();
        g_assert_cmpint(resolved_new(bus, on_state, NULL, &client), ==, 0);
        pump(50); /* the name watches are installed */

        /* resolved not running: pending, no error. */
        g_assert_cmpint(resolved_set_link(client, 7, servers, 2, 53, office), ==, 0);
        pump(200);
        g_assert_cmpint(state_of(7), ==, RESOLVED_LINK_PENDING);
        g_assert_cmpint(resolved_set_link(client, 7, servers, 0, 53, office), ==, -EINVAL);

        /* resolved appears: the link is applied, with every call and argument. */
        fake_start(&resolve1);
        wait_state(7, RESOLVED_LINK_RESOLVED);
        g_assert_true(has_call(&resolve1, "SetLinkDNS 7 10.99.0.1 fd00:99::1"));
        g_assert_true(has_call(&resolve1, "SetLinkDomains 7 ~office.nm.internal"));
        g_assert_true(has_call(&resolve1, "SetLinkDefaultRoute 7 no"));
        g_assert_true(has_call(&resolve1, "SetLinkDNSSEC 7 no"));
        g_assert_true(has_call(&resolve1, "SetLinkLLMNR 7 no"));
        g_assert_true(has_call(&resolve1, "SetLinkMulticastDNS 7 no"));
        g_assert_true(has_call(&resolve1, "SetLinkDNSOverTLS 7 no"));
        guint n = resolve1.calls->len;
        /* The same settings again: nothing is sent. */
        g_assert_cmpint(resolved_set_link(client, 7, servers, 2, 53, office), ==, 0);
        pump(100);
        g_assert_cmpuint(resolve1.calls->len, ==, n);
        g_assert_cmpint(resolved_set_link(client, 7, servers, 2, 53, none), ==, -EINVAL);

        /* The network's nameservers: their domains are routing domains of the link as well. */
        g_assert_cmpint(resolved_set_link(client, 7, servers, 2, 53, split), ==, 0);
        wait_call(&resolve1, "SetLinkDomains 7 ~office.nm.internal ~corp.example ~home.arpa");
        wait_state(7, RESOLVED_LINK_RESOLVED);
        g_assert_cmpint(resolved_set_link(client, 7, servers, 2, 53, office), ==, 0);
        wait_call(&resolve1, "SetLinkDomains 7 ~office.nm.internal");
        wait_state(7, RESOLVED_LINK_RESOLVED);

        /* A new link resolved does not know yet: asked again until it does. */
        resolve1.no_such_link = 3;
        g_assert_cmpint(resolved_set_link(client, 8, servers, 1, 5353, lab), ==, 0);
        wait_state(8, RESOLVED_LINK_RESOLVED);
        g_assert_cmpuint(resolve1.no_such_link, ==, 0);
        g_assert_true(has_call(&resolve1, "SetLinkDNSEx 8 10.99.0.1:5353"));

        /* resolved restarts: every link is applied again. */
        fake_stop(&resolve1);
        wait_state(7, RESOLVED_LINK_PENDING);
        g_ptr_array_set_size(resolve1.calls, 0);
        fake_start(&resolve1);
        wait_state(7, RESOLVED_LINK_RESOLVED);
        wait_state(8, RESOLVED_LINK_RESOLVED);
        g_assert_true(has_call(&resolve1, "SetLinkDomains 7 ~office.nm.internal"));
        g_assert_true(has_call(&resolve1, "SetLinkDomains 8 ~lab.nm.internal"));

        /* A link networkd manages: resolved says LinkBusy, networkd takes the settings. */
        fake_start(&network1);
        resolve1.busy_ifindex = 9;
        g_assert_cmpint(resolved_set_link(client, 9, servers, 1, 53, busy), ==, 0);
        wait_state(9, RESOLVED_LINK_NETWORKD);
        g_assert_true(has_call(&network1, "SetLinkDNS 9 10.99.0.1"));
        g_assert_true(has_call(&network1, "SetLinkDomains 9 ~busy.nm.internal"));
        /* ...and reverting it goes to networkd too. */
        g_assert_cmpint(resolved_revert_link(client, 9), ==, 0);
        pump(100);
        g_assert_true(has_call(&network1, "RevertLinkDNS 9"));
        g_assert_cmpint(resolved_revert_link(client, 9), ==, -ENOENT);

        /* Refused (e.g. not authorised): failed with the message, tried again later. */
        resolve1.error = "org.freedesktop.DBus.Error.AccessDenied";
        g_assert_cmpint(resolved_set_link(client, 10, servers, 1, 53, denied), ==, 0);
        wait_state(10, RESOLVED_LINK_FAILED);
        g_assert_cmpint(resolved_link_state(client, 10, &err), ==, RESOLVED_LINK_FAILED);
        g_assert_cmpstr(err, ==, "refused by the stand-in");
        resolve1.error = NULL;
        wait_state(10, RESOLVED_LINK_RESOLVED); /* the retry timer (1 s) */

        /* Removal: RevertLink for a resolved link; forgetting sends nothing. */
        g_assert_cmpint(resolved_revert_link(client, 7), ==, 0);
        pump(100);
        g_assert_true(has_call(&resolve1, "RevertLink 7"));
        n = resolve1.calls->len;
        resolved_forget_link(client, 8);
        pump(100);
        g_assert_cmpuint(resolve1.calls->len, ==, n);
        g_assert_cmpint(state_of(8), ==, RESOLVED_LINK_FAILED); /* unknown now */

        client = resolved_free(client);
        sd_bus_flush_close_unref(bus);
        fake_stop(&resolve1);
        fake_stop(&network1);
        g_ptr_array_unref(resolve1.calls);
        g_ptr_array_unref(network1.calls);
        g_ptr_array_unref(states);
}

/* A private dbus-daemon (session-type configuration with a socket of its own): no system bus and
 * no root needed. */
static bool start_daemon(void)
{
        const char *dir = bus_dir = g_dir_make_tmp("test-resolved-XXXXXX", NULL);
        g_autofree char *conf = g_build_filename(dir, "bus.conf", NULL);
        g_autofree char *text = g_strdup_printf(
                "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\" "
                "\"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
                "<busconfig><type>session</type><listen>unix:path=%s/bus</listen><auth>EXTERNAL</auth>"
                "<policy context=\"default\"><allow send_destination=\"*\" eavesdrop=\"true\"/><allow "
                "eavesdrop=\"true\"/>"
                "<allow own=\"*\"/></policy></busconfig>\n",
                dir);
        g_autofree char *argv0 = g_find_program_in_path("dbus-daemon");
        int out[2];

        if (!argv0 || !g_file_set_contents(conf, text, -1, NULL) || pipe(out) < 0)
                return false;
        daemon_pid = fork();
        g_assert_cmpint(daemon_pid, >=, 0);
        if (daemon_pid == 0) {
                /* Goes with the test, also when an assertion aborts it. */
                (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
                int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
                dup2(out[1], 1);
                dup2(null, 2);
                g_autofree char *arg = g_strdup_printf("--config-file=%s", conf);
                execl(argv0, argv0, arg, "--nofork", "--nopidfile", "--print-address=1", (char *)NULL);
                _exit(127);
        }
        close(out[1]);
        char buf[512] = {};
        ssize_t k = read(out[0], buf, sizeof(buf) - 1);
        close(out[0]);
        if (k <= 0)
                return false;
        bus_address = g_strstrip(g_strdup(buf));
        return true;
}

int main(int argc, char *argv[])
{
        g_test_init(&argc, &argv, NULL);
        if (!start_daemon()) {
                g_test_skip("dbus-daemon is not installed");
                return g_test_run();
        }
        g_assert_cmpint(sd_event_new(&event), >=, 0);
        g_test_add_func("/resolved/registration", test_resolved);
        int r = g_test_run();
        kill(daemon_pid, SIGTERM);
        waitpid(daemon_pid, NULL, 0);
        g_autofree char *sock = g_build_filename(bus_dir, "bus", NULL);
        g_autofree char *conf = g_build_filename(bus_dir, "bus.conf", NULL);
        (void)unlink(sock);
        (void)unlink(conf);
        (void)rmdir(bus_dir);
        sd_event_unref(event);
        return r;
}
