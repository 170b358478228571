/* Proves the STUN client: RFC 5769's sample responses (IPv4 and IPv6 XOR-MAPPED-ADDRESS) decode to
 * their documented addresses, malformed or foreign messages are refused without reading past their
 * end, server names parse with clear errors, and a query against responders on 127.0.0.1 finds the
 * address, skips garbage and wrong transactions, falls through a server that refuses or stays
 * silent, reports when none answered, and never calls back once cancelled. */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "macro.h"
#include "nm-error.h"
#include "stun.h"

/* RFC 5769 §2.2 and §2.3 (SOFTWARE, XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY, FINGERPRINT). */
static const uint8_t txid5769[12] = {0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae};
static const uint8_t resp4[] = {
        0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
        0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63,
        0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
        0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74, 0x89, 0xf9,
        0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7, 0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96,
};
static const uint8_t resp6[] = {
        0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
        0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63,
        0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa,
        0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9, 0x00, 0x08, 0x00, 0x14,
        0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1, 0x17, 0x84, 0xc9, 0x7c, 0x82, 0x92, 0xc2, 0x75,
        0xbf, 0xe3, 0xed, 0x41, 0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb, 0x0b, 0x4c,
};

static void test_rfc5769(void)
{
        int family;
        NmInAddr a;
        uint16_t port;
        g_autofree char *s4 = NULL, *s6 = NULL;

        g_assert_cmpint(stun_parse_binding_response(resp4, sizeof(resp4), txid5769, &family, &a, &port), ==,
                        0);
        g_assert_cmpint(family, ==, AF_INET);
        s4 = nm_addr_to_string(family, &a);
        g_assert_cmpstr(s4, ==, "192.0.2.1");
        g_assert_cmpuint(port, ==, 32853);

        g_assert_cmpint(stun_parse_binding_response(resp6, sizeof(resp6), txid5769, &family, &a, &port), ==,
                        0);
        g_assert_cmpint(family, ==, AF_INET6);
        s6 = nm_addr_to_string(family, &a);
        g_assert_cmpstr(s6, ==, "2001:db8:1234:5678:11:2233:4455:6677");
        g_assert_cmpuint(port, ==, 32853);
}

static void test_request(void)
{
        uint8_t req[STUN_REQUEST_SIZE], txid[STUN_TXID_SIZE];

        stun_binding_request(req, txid5769);
        g_assert_cmpuint(req[0], ==, 0x00);
        g_assert_cmpuint(req[1], ==, 0x01);
        /* One SOFTWARE attribute (0x8022) of 24 bytes: as large as any answer. */
        g_assert_cmpuint(req[2], ==, 0x00);
        g_assert_cmpuint(req[3], ==, 28);
        g_assert_cmpint(memcmp(req + 4, "\x21\x12\xa4\x42", 4), ==, 0);
        g_assert_cmpint(memcmp(req + 8, txid5769, 12), ==, 0);
        g_assert_cmpint(memcmp(req + 20, "\x80\x22\x00\x18", 4), ==, 0);
        g_assert_cmpuint(sizeof(req), >=, STUN_RESPONSE_MAX);
        /* The responder's side reads it back. */
        g_assert_cmpint(stun_parse_binding_request(req, sizeof(req), txid), ==, 0);
        g_assert_cmpmem(txid, sizeof(txid), txid5769, sizeof(txid));
}

static void test_malformed(void)
{
        uint8_t b[sizeof(resp4)], other[12];

        /* Every truncation: refused, never read past the end (ASan/valgrind would say). */
        for (size_t n = 0; n < sizeof(resp4); n++) {
                uint8_t *copy = g_memdup2(resp4, n);
                g_assert_cmpint(stun_parse_binding_response(copy, n, txid5769, NULL, NULL, NULL), <, 0);
                g_free(copy);
        }
        g_assert_cmpint(stun_parse_binding_response(NULL, 0, txid5769, NULL, NULL, NULL), ==, -EBADMSG);

        memcpy(b, resp4, sizeof(b));
        b[4] = 0; /* cookie */
        g_assert_cmpint(stun_parse_binding_response(b, sizeof(b), txid5769, NULL, NULL, NULL), ==, -EBADMSG);
        memcpy(b, resp4, sizeof(b));
        b[0] = 0xc1; /* top bits */
        g_assert_cmpint(stun_parse_binding_response(b, sizeof(b), txid5769, NULL, NULL, NULL), ==, -EBADMSG);
        memcpy(b, resp4, sizeof(b));
        b[3] = 0x3d; /* length not a multiple of 4 */
        g_assert_cmpint(stun_parse_binding_response(b, sizeof(b), txid5769, NULL, NULL, NULL), ==, -EBADMSG);
        memcpy(b, resp4, sizeof(b));
        b[23] = 0xff; /* an attribute longer than the message */
        g_assert_cmpint(stun_parse_binding_response(b, sizeof(b), txid5769, NULL, NULL, NULL), ==, -EBADMSG);
        memcpy(b, resp4, sizeof(b));
        b[39] = 0x02; /* XOR-MAPPED-ADDRESS too short for its family */
        g_assert_cmpint(stun_parse_binding_response(b, sizeof(b), txid5769, NULL, NULL, NULL), ==, -EBADMSG);

        /* Well-formed, but not ours: an error response, another transaction. */
        memcpy(b, resp4, sizeof(b));
        b[1] = 0x11;
        g_assert_cmpint(stun_parse_binding_response(b, sizeof(b), txid5769, NULL, NULL, NULL), ==, -ESRCH);
        memcpy(other, txid5769, 12);
        other[11] ^= 1;
        g_assert_cmpint(stun_parse_binding_response(resp4, sizeof(resp4), other, NULL, NULL, NULL), ==,
                        -ESRCH);

        /* No address attribute, or one of an unknown family. */
        memcpy(b, resp4, sizeof(b));
        b[36] = 0x7f; /* the attribute type becomes unknown */
        g_assert_cmpint(stun_parse_binding_response(b, sizeof(b), txid5769, NULL, NULL, NULL), ==, -ENOENT);
        memcpy(b, resp4, sizeof(b));
        b[41] = 0x03;
        g_assert_cmpint(stun_parse_binding_response(b, sizeof(b), txid5769, NULL, NULL, NULL), ==, -ENOENT);
}

static void test_server_parse(void)
{
        static const struct {
                const char *in, *host;
                unsigned port;
        } ok[] = {
                {"stun.example.org", "stun.example.org", 3478},
                {"stun.example.org:19302", "stun.example.org", 19302},
                {"192.0.2.1:3479", "192.0.2.1", 3479},
                {"[2001:db8::1]:5000", "2001:db8::1", 5000},
                {"[2001:db8::1]", "2001:db8::1", 3478},
                {"2001:db8::1", "2001:db8::1", 3478},
        };
        static const char *const bad[] = {"",
                                          "stun.example.org:0",
                                          "stun.example.org:65536",
                                          "host:port",
                                          "[2001:db8::1",
                                          "[192.0.2.1]:1",
                                          "a b",
                                          "x:1:",
                                          ":3478",
                                          "[2001:db8::1]x"};

        for (size_t i = 0; i < G_N_ELEMENTS(ok); i++) {
                g_autofree char *host = NULL;
                uint16_t port = 0;
                g_assert_cmpint(stun_server_parse(ok[i].in, &host, &port, NULL), ==, 0);
                g_assert_cmpstr(host, ==, ok[i].host);
                g_assert_cmpuint(port, ==, ok[i].port);
        }
        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
                g_autoptr(GError) e = NULL;
                g_assert_cmpint(stun_server_parse(bad[i], NULL, NULL, &e), ==, -EINVAL);
                g_assert_error(e, NM_ERROR, NM_ERROR_INVALID_ARGUMENT);
                g_assert_nonnull(strstr(e->message, "Invalid STUN server"));
        }
}

/* ---- live queries on 127.0.0.1 -------------------------------------------------------------------- */

typedef enum Behaviour {
        ANSWER, /* garbage and a wrong transaction first, then the right answer */
        SILENT, /* reads requests, never answers */
} Behaviour;

typedef struct Responder {
        int fd;
        uint16_t port;
        Behaviour behaviour;
        gint requests;
        gint stop;
        pthread_t thread;
} Responder;

static void *responder_main(void *arg)
{
        Responder *r = arg;

        while (!g_atomic_int_get(&r->stop)) {
                uint8_t req[512], resp[32];
                struct sockaddr_in from;
                socklen_t fl = sizeof(from);
                ssize_t n = recvfrom(r->fd, req, sizeof(req), 0, (struct sockaddr *)&from, &fl);
                if (n < STUN_HEADER_SIZE)
                        continue;
                g_atomic_int_inc(&r->requests);
                if (r->behaviour == SILENT)
                        continue;
                (void)sendto(r->fd, "garbage", 7, 0, (struct sockaddr *)&from, fl);
                /* A success response with XOR-MAPPED-ADDRESS of the sender. */
                memcpy(resp, req, STUN_HEADER_SIZE);
                resp[0] = 0x01;
                resp[1] = 0x01;
                resp[2] = 0;
                resp[3] = 12;
                resp[20] = 0x00;
                resp[21] = 0x20;
                resp[22] = 0;
                resp[23] = 8;
                resp[24] = 0;
                resp[25] = 1;
                uint16_t xport = ntohs(from.sin_port) ^ (uint16_t)(STUN_MAGIC_COOKIE >> 16);
                resp[26] = (uint8_t)(xport >> 8);
                resp[27] = (uint8_t)xport;
                memcpy(resp + 28, &from.sin_addr, 4);
                for (int i = 0; i < 4; i++)
                        resp[28 + i] ^= resp[4 + i];
                resp[8] ^= 0xff; /* another transaction first */
                (void)sendto(r->fd, resp, sizeof(resp), 0, (struct sockaddr *)&from, fl);
                resp[8] ^= 0xff;
                (void)sendto(r->fd, resp, sizeof(resp), 0, (struct sockaddr *)&from, fl);
        }
        return NULL;
}

static Responder *responder_start(Behaviour b)
{
        Responder *r = g_new0(Responder, 1);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t al = sizeof(a);
        struct timeval tv = {.tv_usec = 100 * 1000};

        r->behaviour = b;
        r->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        g_assert_cmpint(r->fd, >=, 0);
        g_assert_cmpint(bind(r->fd, (struct sockaddr *)&a, sizeof(a)), ==, 0);
        g_assert_cmpint(getsockname(r->fd, (struct sockaddr *)&a, &al), ==, 0);
        g_assert_cmpint(setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), ==, 0);
        r->port = ntohs(a.sin_port);
        g_assert_cmpint(pthread_create(&r->thread, NULL, responder_main, r), ==, 0);
        return r;
}

static void responder_stop(Responder *r)
{
        g_atomic_int_set(&r->stop, 1);
        pthread_join(r->thread, NULL);
        close(r->fd);
        g_free(r);
}

/* A port nobody listens on (bound and closed again). */
static uint16_t closed_port(void)
{
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t al = sizeof(a);
        int fd = socket(AF_INET, SOCK_DGRAM, 0);
        g_assert_cmpint(bind(fd, (struct sockaddr *)&a, sizeof(a)), ==, 0);
        g_assert_cmpint(getsockname(fd, (struct sockaddr *)&a, &al), ==, 0);
        close(fd);
        return ntohs(a.sin_port);
}

typedef struct Outcome {
        bool called;
        char *ip;
        char *error;
} Outcome;

static void on_done(StunQuery *q, const char *public_ip, const char *error, void *userdata)
{
        Outcome *o = userdata;
        g_assert_false(o->called);
        o->called = true;
        o->ip = g_strdup(public_ip);
        o->error = g_strdup(error);
        /* Cancelling from the callback is harmless. */
        g_assert_null(stun_query_cancel(q));
}

static void run_until(sd_event *e, Outcome *o, uint64_t max_usec)
{
        gint64 end = g_get_monotonic_time() + (gint64)max_usec;
        while (!o->called && g_get_monotonic_time() < end)
                g_assert_cmpint(sd_event_run(e, 50 * 1000), >=, 0);
}

static void test_query(void)
{
        sd_event *e = NULL;
        Responder *silent = responder_start(SILENT), *answer = responder_start(ANSWER);
        g_autofree char *s_refused = g_strdup_printf("127.0.0.1:%u", closed_port());
        g_autofree char *s_silent = g_strdup_printf("127.0.0.1:%u", silent->port);
        g_autofree char *s_answer = g_strdup_printf("127.0.0.1:%u", answer->port);
        char *servers[] = {s_refused, s_silent, s_answer, NULL};
        char *none[] = {s_refused, s_silent, NULL};
        Outcome o = {}, o2 = {}, o3 = {};
        StunQuery *q = NULL;

        g_assert_cmpint(sd_event_new(&e), >=, 0);

        /* Refused, then silent (600 ms), then an answer. */
        g_assert_cmpint(stun_query_start(e, servers, 600 * 1000, on_done, &o, &q), ==, 0);
        run_until(e, &o, 10 * G_USEC_PER_SEC);
        g_assert_true(o.called);
        g_assert_cmpstr(o.ip, ==, "127.0.0.1");
        g_assert_null(o.error);
        /* The silent server was asked more than once within its time (retransmission). */
        g_assert_cmpint(g_atomic_int_get(&silent->requests), >=, 2);

        /* None answers: NULL and a reason naming the servers. */
        g_assert_cmpint(stun_query_start(e, none, 300 * 1000, on_done, &o2, &q), ==, 0);
        run_until(e, &o2, 10 * G_USEC_PER_SEC);
        g_assert_true(o2.called);
        g_assert_null(o2.ip);
        g_assert_nonnull(strstr(o2.error, s_silent));
        g_assert_nonnull(strstr(o2.error, "no answer"));
        g_assert_nonnull(strstr(o2.error, s_refused));

        /* Cancelled: never called back, even when the answer comes. */
        g_assert_cmpint(stun_query_start(e, servers + 2, 600 * 1000, on_done, &o3, &q), ==, 0);
        g_assert_null(stun_query_cancel(q));
        run_until(e, &o3, 1 * G_USEC_PER_SEC);
        g_assert_false(o3.called);

        /* No servers: refused at once. */
        g_assert_cmpint(stun_query_start(e, (char *[]){NULL}, 0, on_done, &o3, &q), ==, -EINVAL);

        responder_stop(silent);
        responder_stop(answer);
        sd_event_unref(e);
        g_free(o.ip);
        g_free(o.error);
        g_free(o2.ip);
        g_free(o2.error);
}

int main(int argc, char *argv[])
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/stun/rfc5769", test_rfc5769);
        g_test_add_func("/stun/request", test_request);
        g_test_add_func("/stun/malformed", test_malformed);
        g_test_add_func("/stun/server-parse", test_server_parse);
        g_test_add_func("/stun/query", test_query);
        return g_test_run();
}
