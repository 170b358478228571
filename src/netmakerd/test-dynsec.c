/* Proves the dynamic-security batches say exactly what docs/protocol.md §3.1 asks (names, ACLs,
 * accounts bound to their client id, idempotent retries, listings page by page), that a listing's
 * answers yield exactly the "host-<uuid>" accounts with their binding and server, and that answers
 * are matched to requests so each request completes exactly once: on a full answer, a refusal, a
 * timeout, a lost connection or shutdown, whatever garbage arrives on the response topic
 * meanwhile. */
#include <errno.h>
#include <string.h>

#include "dynsec.h"
#include "json-util.h"
#include "macro.h"

#define HOST_ID "0b8e8f5c-7f43-4a55-9f55-2a1d3c4b5a69"
#define MSEC    1000ULL

typedef struct Done {
        unsigned calls;
        int r;
        char *message;
        DynsecBatch *batch; /* borrowed: valid during the call only */
        bool has_role;      /* for the setup batch */
} Done;

static void done_cb(int r, const char *message, DynsecBatch *b, void *userdata)
{
        Done *d = userdata;
        d->calls++;
        d->r = r;
        g_free(d->message);
        d->message = g_strdup(message);
        d->has_role =
                dynsec_client_has_role(dynsec_batch_data(b, dynsec_batch_size(b) - 1), "netmakerd-nm1");
}

static void done_clear(Done *d)
{
        g_free(d->message);
        memset(d, 0, sizeof(*d));
}

static JsonArray *payload_commands(const char *payload, JsonObject **ret_root)
{
        g_autoptr(GError) e = NULL;
        JsonObject *root = nm_json_parse_object(payload, -1, &e);
        g_assert_no_error(e);
        g_assert_nonnull(root);
        g_assert_cmpuint(json_object_get_size(root), ==, 1);
        *ret_root = root;
        return json_object_get_array_member(root, "commands");
}

static JsonObject *acl_find(JsonArray *acls, const char *type)
{
        for (guint i = 0; i < json_array_get_length(acls); i++) {
                JsonObject *a = json_array_get_object_element(acls, i);
                if (streq0(json_object_get_string_member(a, "acltype"), type))
                        return a;
        }
        return NULL;
}

static void test_host_account_create_batch(void)
{
        g_autoptr(DynsecBatch) b = dynsec_batch_host_account_create("nm1", HOST_ID, "s3cret-pw");
        g_autofree char *payload = dynsec_batch_to_json(b, "pfx", 7);
        g_autoptr(JsonObject) root = NULL;
        JsonArray *cmds = payload_commands(payload, &root);
        static const char *const expected[] = {"deleteClient", "deleteRole", "createRole", "createClient"};

        g_assert_cmpuint(json_array_get_length(cmds), ==, 4);
        for (guint i = 0; i < 4; i++) {
                JsonObject *c = json_array_get_object_element(cmds, i);
                g_autofree char *corr = g_strdup_printf("pfx.7.%u", i);
                g_assert_cmpstr(json_object_get_string_member(c, "command"), ==, expected[i]);
                g_assert_cmpstr(json_object_get_string_member(c, "correlationData"), ==, corr);
        }
        JsonObject *del_client = json_array_get_object_element(cmds, 0);
        g_assert_cmpstr(json_object_get_string_member(del_client, "username"), ==, "host-" HOST_ID);
        JsonObject *del_role = json_array_get_object_element(cmds, 1);
        g_assert_cmpstr(json_object_get_string_member(del_role, "rolename"), ==, "host-" HOST_ID);

        JsonObject *role = json_array_get_object_element(cmds, 2);
        g_assert_cmpstr(json_object_get_string_member(role, "rolename"), ==, "host-" HOST_ID);
        JsonArray *acls = json_object_get_array_member(role, "acls");
        g_assert_cmpuint(json_array_get_length(acls), ==, 3);
        JsonObject *sub = acl_find(acls, "subscribePattern");
        JsonObject *recv = acl_find(acls, "publishClientReceive");
        JsonObject *send = acl_find(acls, "publishClientSend");
        g_assert_nonnull(sub);
        g_assert_nonnull(recv);
        g_assert_nonnull(send);
        g_assert_cmpstr(json_object_get_string_member(sub, "topic"), ==, "nm/nm1/host/" HOST_ID "/msg");
        g_assert_cmpstr(json_object_get_string_member(recv, "topic"), ==, "nm/nm1/host/" HOST_ID "/msg");
        g_assert_cmpstr(json_object_get_string_member(send, "topic"), ==, "nm/nm1/host/" HOST_ID "/report");
        g_assert_true(json_object_get_boolean_member(sub, "allow"));
        g_assert_true(json_object_get_boolean_member(send, "allow"));

        JsonObject *client = json_array_get_object_element(cmds, 3);
        g_assert_cmpstr(json_object_get_string_member(client, "username"), ==, "host-" HOST_ID);
        g_assert_cmpstr(json_object_get_string_member(client, "password"), ==, "s3cret-pw");
        g_assert_cmpstr(json_object_get_string_member(client, "clientid"), ==, "host-" HOST_ID);
        JsonArray *roles = json_object_get_array_member(client, "roles");
        g_assert_cmpuint(json_array_get_length(roles), ==, 1);
        g_assert_cmpstr(json_object_get_string_member(json_array_get_object_element(roles, 0), "rolename"),
                        ==, "host-" HOST_ID);
}

static void test_host_account_delete_batch(void)
{
        g_autoptr(DynsecBatch) b = dynsec_batch_host_account_delete("nm1", HOST_ID);
        g_autofree char *payload = dynsec_batch_to_json(b, "p", 1);
        g_autoptr(JsonObject) root = NULL;
        JsonArray *cmds = payload_commands(payload, &root);

        g_assert_cmpuint(json_array_get_length(cmds), ==, 2);
        g_assert_cmpstr(json_object_get_string_member(json_array_get_object_element(cmds, 0), "command"), ==,
                        "deleteClient");
        g_assert_cmpstr(json_object_get_string_member(json_array_get_object_element(cmds, 1), "command"), ==,
                        "deleteRole");
        g_assert_null(strstr(payload, "password"));
}

static void test_server_setup_batch(void)
{
        g_autoptr(DynsecBatch) b = dynsec_batch_server_setup("nm1", "admin");
        g_autofree char *payload = dynsec_batch_to_json(b, "p", 1);
        g_autoptr(JsonObject) root = NULL;
        JsonArray *cmds = payload_commands(payload, &root);
        guint n = json_array_get_length(cmds);

        g_assert_cmpuint(n, ==, dynsec_batch_size(b));
        JsonObject *def = json_array_get_object_element(cmds, 0);
        g_assert_cmpstr(json_object_get_string_member(def, "command"), ==, "setDefaultACLAccess");
        JsonArray *acls = json_object_get_array_member(def, "acls");
        g_assert_false(json_object_get_boolean_member(acl_find(acls, "subscribe"), "allow"));
        g_assert_false(json_object_get_boolean_member(acl_find(acls, "publishClientSend"), "allow"));

        JsonObject *role = json_array_get_object_element(cmds, 1);
        g_assert_cmpstr(json_object_get_string_member(role, "command"), ==, "createRole");
        g_assert_cmpstr(json_object_get_string_member(role, "rolename"), ==, "netmakerd-nm1");
        JsonObject *pub = acl_find(json_object_get_array_member(role, "acls"), "publishClientSend");
        g_assert_cmpstr(json_object_get_string_member(pub, "topic"), ==, "nm/nm1/host/+/msg");

        JsonObject *last = json_array_get_object_element(cmds, n - 1);
        g_assert_cmpuint(DYNSEC_SETUP_GET_CLIENT_INDEX(b), ==, n - 1);
        g_assert_cmpstr(json_object_get_string_member(last, "command"), ==, "getClient");
        g_assert_cmpstr(json_object_get_string_member(last, "username"), ==, "admin");
}

/* ---- Matching answers ---------------------------------------------------------------------- */

static char *answer(Dynsec *d, guint64 id, guint index, const char *command, const char *error)
{
        g_autofree char *e = error ? g_strdup_printf(",\"error\":\"%s\"", error) : g_strdup("");
        return g_strdup_printf("{\"command\":\"%s\"%s,\"correlationData\":\"%s.%" G_GUINT64_FORMAT ".%u\"}",
                               command, e, dynsec_correlation_prefix(d), id, index);
}

static char *responses(const char *a, const char *b, const char *c, const char *d)
{
        return g_strdup_printf("{\"responses\":[%s%s%s%s%s%s%s]}", a ?: "", b ? "," : "", b ?: "",
                               c ? "," : "", c ?: "", d ? "," : "", d ?: "");
}

static Dynsec *new_dynsec(sd_event **ret_event, uint64_t timeout)
{
        Dynsec *d = NULL;
        g_assert_cmpint(sd_event_new(ret_event), >=, 0);
        g_assert_cmpint(dynsec_new(*ret_event, timeout, &d), ==, 0);
        return d;
}

static guint64 submit_create(Dynsec *d, Done *done)
{
        _cleanup_secret_ char *payload = NULL;
        guint64 id = 0;
        g_assert_cmpint(dynsec_submit(d, dynsec_batch_host_account_create("nm1", HOST_ID, "pw"), done_cb,
                                      done, &payload, &id),
                        ==, 0);
        g_assert_cmpuint(id, >, 0);
        g_assert_nonnull(strstr(payload, dynsec_correlation_prefix(d)));
        g_assert_cmpuint(done->calls, ==, 0); /* never from inside submit */
        return id;
}

static void test_answer_success_once(void)
{
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        g_autoptr(Dynsec) d = new_dynsec(&e, 0);
        Done done = {};
        guint64 id = submit_create(d, &done);

        g_autofree char *a0 = answer(d, id, 0, "deleteClient", "Client not found");
        g_autofree char *a1 = answer(d, id, 1, "deleteRole", "Role not found");
        g_autofree char *a2 = answer(d, id, 2, "createRole", NULL);
        g_autofree char *a3 = answer(d, id, 3, "createClient", NULL);
        /* In two messages, out of order. */
        g_autofree char *m1 = responses(a3, a1, NULL, NULL);
        g_autofree char *m2 = responses(a0, a2, NULL, NULL);
        g_assert_cmpint(dynsec_handle_response(d, m1, strlen(m1)), ==, 2);
        g_assert_cmpuint(done.calls, ==, 0);
        g_assert_cmpuint(dynsec_pending(d), ==, 1);
        g_assert_cmpint(dynsec_handle_response(d, m2, strlen(m2)), ==, 2);
        g_assert_cmpuint(done.calls, ==, 1);
        g_assert_cmpint(done.r, ==, 0);
        g_assert_null(done.message);
        g_assert_cmpuint(dynsec_pending(d), ==, 0);

        /* The same answers again (a duplicate delivery): nothing happens. */
        g_assert_cmpint(dynsec_handle_response(d, m2, strlen(m2)), ==, 0);
        g_assert_cmpuint(done.calls, ==, 1);
        done_clear(&done);
}

static void test_answer_refused(void)
{
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        g_autoptr(Dynsec) d = new_dynsec(&e, 0);
        Done done = {};
        guint64 id = submit_create(d, &done);

        g_autofree char *a0 = answer(d, id, 0, "deleteClient", NULL);
        g_autofree char *a1 = answer(d, id, 1, "deleteRole", "Role not found");
        g_autofree char *a2 = answer(d, id, 2, "createRole", NULL);
        g_autofree char *a3 = answer(d, id, 3, "createClient", "Client already exists");
        g_autofree char *m = responses(a0, a1, a2, a3);
        g_assert_cmpint(dynsec_handle_response(d, m, strlen(m)), ==, 4);
        g_assert_cmpuint(done.calls, ==, 1);
        g_assert_cmpint(done.r, ==, -EIO);
        g_assert_cmpstr(done.message, ==,
                        "The broker refused createClient host-" HOST_ID ": Client already exists");
        done_clear(&done);
}

static void test_answer_not_tolerated_elsewhere(void)
{
        /* "Client not found" is fine for a delete, not for createClient. */
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        g_autoptr(Dynsec) d = new_dynsec(&e, 0);
        Done done = {};
        guint64 id = submit_create(d, &done);

        g_autofree char *a0 = answer(d, id, 0, "deleteClient", NULL);
        g_autofree char *a1 = answer(d, id, 1, "deleteRole", NULL);
        g_autofree char *a2 = answer(d, id, 2, "createRole", "Role not found");
        g_autofree char *a3 = answer(d, id, 3, "createClient", NULL);
        g_autofree char *m = responses(a0, a1, a2, a3);
        g_assert_cmpint(dynsec_handle_response(d, m, strlen(m)), ==, 4);
        g_assert_cmpint(done.r, ==, -EIO);
        g_assert_nonnull(strstr(done.message, "createRole"));
        done_clear(&done);
}

static void test_malformed_responses(void)
{
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        g_autoptr(Dynsec) d = new_dynsec(&e, 0);
        Done done = {};
        guint64 id = submit_create(d, &done);
        const char *prefix = dynsec_correlation_prefix(d);
        g_autofree char *deep = NULL;
        g_autoptr(GString) g = g_string_new("{\"responses\":");
        for (int i = 0; i < 100; i++)
                g_string_append_c(g, '[');
        deep = g_string_free(g_steal_pointer(&g), false);

        /* Not a dynamic-security response at all. */
        static const char *const garbage[] = {
                "",
                "x",
                "null",
                "[]",
                "{}",
                "{\"responses\":5}",
                "{\"responses\":{}}",
                "{\"responses\":[",
                "{\"responses\":[]} trailing",
                "\xff\xfe{}",
                "{\"responses\":\"[]\"}",
        };
        for (size_t i = 0; i < G_N_ELEMENTS(garbage); i++)
                g_assert_cmpint(dynsec_handle_response(d, garbage[i], strlen(garbage[i])), ==, -EBADMSG);
        g_assert_cmpint(dynsec_handle_response(d, NULL, 0), ==, -EBADMSG);
        g_assert_cmpint(dynsec_handle_response(d, deep, strlen(deep)), ==, -EBADMSG);
        g_autofree char *huge = g_strnfill(DYNSEC_MAX_RESPONSE + 1, ' ');
        g_assert_cmpint(dynsec_handle_response(d, huge, strlen(huge)), ==, -EBADMSG);
        /* The broker's own answer to garbage it received. */
        const char *broker =
                "{\"responses\":[{\"command\":\"Unknown command\",\"error\":\"Payload not valid JSON\"}]}";
        g_assert_cmpint(dynsec_handle_response(d, broker, strlen(broker)), ==, 0);

        /* Shaped like a response, but not an answer of ours. */
        g_autofree char *m = g_strdup_printf(
                "{\"responses\":[1,\"x\",null,[],{},"
                "{\"command\":\"createRole\",\"correlationData\":5},"
                "{\"command\":\"createRole\",\"correlationData\":\"other.%" G_GUINT64_FORMAT ".2\"},"
                "{\"command\":\"createRole\",\"correlationData\":\"%s.999.2\"},"
                "{\"command\":\"createRole\",\"correlationData\":\"%s.%" G_GUINT64_FORMAT ".9\"},"
                "{\"command\":\"createRole\",\"correlationData\":\"%s.%" G_GUINT64_FORMAT "\"},"
                "{\"command\":\"createRole\",\"correlationData\":\"%s.abc.2\"},"
                "{\"command\":\"createRole\",\"correlationData\":\"%s.-1.2\"},"
                "{\"command\":\"createRole\",\"correlationData\":\"%s.%" G_GUINT64_FORMAT ".2x\"},"
                "{\"command\":\"createRole\",\"correlationData\":\"%s.%" G_GUINT64_FORMAT ".-2\"},"
                "{\"command\":\"createRole\",\"correlationData\":\"%sX.%" G_GUINT64_FORMAT ".2\"},"
                "{\"command\":\"createRole\",\"correlationData\":\"%s..2\"}"
                "],\"extra\":true}",
                id, prefix, prefix, id, prefix, id, prefix, prefix, prefix, id, prefix, id, prefix, id,
                prefix);
        g_assert_cmpint(dynsec_handle_response(d, m, strlen(m)), ==, 0);
        g_assert_cmpuint(done.calls, ==, 0);
        g_assert_cmpuint(dynsec_pending(d), ==, 1);

        /* Ours, but malformed inside: the command fails, the request still completes. */
        g_autofree char *a0 = answer(d, id, 0, "deleteClient", NULL);
        g_autofree char *a1 = g_strdup_printf(
                "{\"command\":\"deleteRole\",\"error\":42,\"correlationData\":\"%s.%" G_GUINT64_FORMAT
                ".1\"}",
                prefix, id);
        g_autofree char *a2 = answer(d, id, 2, "createClient", NULL); /* wrong command for index 2 */
        g_autofree char *a3 = answer(d, id, 3, "createClient", NULL);
        g_autofree char *ok = responses(a0, a1, a2, a3);
        g_assert_cmpint(dynsec_handle_response(d, ok, strlen(ok)), ==, 4);
        g_assert_cmpuint(done.calls, ==, 1);
        g_assert_cmpint(done.r, ==, -EIO);
        g_assert_nonnull(strstr(done.message, "malformed answer"));
        done_clear(&done);
}

static void test_random_bytes_never_crash(void)
{
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        g_autoptr(Dynsec) d = new_dynsec(&e, 0);
        Done done = {};
        guint64 id = submit_create(d, &done);
        g_autofree char *a0 = answer(d, id, 0, "deleteClient", NULL);
        g_autofree char *a1 = answer(d, id, 1, "deleteRole", NULL);
        g_autofree char *a2 = answer(d, id, 2, "createRole", NULL);
        g_autofree char *a3 = answer(d, id, 3, "createClient", NULL);
        g_autofree char *valid = responses(a0, a1, a2, a3);
        size_t n = strlen(valid);
        GRand *rand = g_rand_new_with_seed(1234);

        for (int i = 0; i < 20000; i++) {
                g_autofree guint8 *buf = g_memdup2(valid, n);
                size_t len = n;
                if (i % 2 == 0) {
                        /* Mutate a few bytes of a valid answer... */
                        for (int k = 0; k < 1 + g_rand_int_range(rand, 0, 4); k++)
                                buf[g_rand_int_range(rand, 0, (gint32)n)] =
                                        (guint8)g_rand_int_range(rand, 0, 256);
                        len = g_rand_int_range(rand, 0, (gint32)n + 1);
                } else {
                        /* ...or send noise. */
                        len = g_rand_int_range(rand, 0, (gint32)n);
                        for (size_t k = 0; k < len; k++)
                                buf[k] = (guint8)g_rand_int_range(rand, 0, 256);
                }
                (void)dynsec_handle_response(d, buf, len);
                g_assert_cmpuint(done.calls, <=, 1);
        }
        g_rand_free(rand);
        done_clear(&done);
}

static void test_timeout(void)
{
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        g_autoptr(Dynsec) d = new_dynsec(&e, 50 * MSEC);
        Done done = {};
        guint64 id = submit_create(d, &done);
        gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;

        while (done.calls == 0 && g_get_monotonic_time() < deadline)
                g_assert_cmpint(sd_event_run(e, 100 * MSEC), >=, 0);
        g_assert_cmpuint(done.calls, ==, 1);
        g_assert_cmpint(done.r, ==, -ETIMEDOUT);
        g_assert_nonnull(strstr(done.message, "did not answer"));
        g_assert_cmpuint(dynsec_pending(d), ==, 0);

        /* The late answer finds nobody. */
        g_autofree char *a0 = answer(d, id, 0, "deleteClient", NULL);
        g_autofree char *m = responses(a0, NULL, NULL, NULL);
        g_assert_cmpint(dynsec_handle_response(d, m, strlen(m)), ==, 0);
        g_assert_cmpuint(done.calls, ==, 1);
        done_clear(&done);
}

static void test_fail_all_and_free(void)
{
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        Dynsec *d = new_dynsec(&e, 0);
        Done a = {}, b = {}, c = {};

        (void)submit_create(d, &a);
        (void)submit_create(d, &b);
        g_assert_cmpuint(dynsec_pending(d), ==, 2);
        dynsec_fail_all(d, -ENOTCONN, "Lost the connection to the broker");
        g_assert_cmpuint(a.calls, ==, 1);
        g_assert_cmpuint(b.calls, ==, 1);
        g_assert_cmpint(a.r, ==, -ENOTCONN);
        g_assert_cmpstr(b.message, ==, "Lost the connection to the broker");
        g_assert_cmpuint(dynsec_pending(d), ==, 0);

        (void)submit_create(d, &c);
        d = dynsec_free(d);
        g_assert_cmpuint(c.calls, ==, 1);
        g_assert_cmpint(c.r, ==, -ECANCELED);
        /* No timer left behind that could fire later. */
        for (int i = 0; i < 3; i++)
                g_assert_cmpint(sd_event_run(e, 10 * MSEC), >=, 0);
        g_assert_cmpuint(a.calls + b.calls + c.calls, ==, 3);
        done_clear(&a);
        done_clear(&b);
        done_clear(&c);
}

static void test_cancel(void)
{
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        g_autoptr(Dynsec) d = new_dynsec(&e, 20 * MSEC);
        Done done = {};
        guint64 id = submit_create(d, &done);

        dynsec_cancel(d, id);
        g_assert_cmpuint(dynsec_pending(d), ==, 0);
        for (int i = 0; i < 5; i++)
                g_assert_cmpint(sd_event_run(e, 20 * MSEC), >=, 0);
        g_assert_cmpuint(done.calls, ==, 0);
}

/* A `done` that frees the registry (the server shutting down from a callback). */
static Dynsec *reentrant_d;
static unsigned reentrant_calls;
static void done_free_registry(int r, const char *message, DynsecBatch *b, void *userdata)
{
        reentrant_calls++;
        reentrant_d = dynsec_free(reentrant_d);
}

static void test_free_from_callback(void)
{
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_secret_ char *p1 = NULL;
        _cleanup_secret_ char *p2 = NULL;
        guint64 id1;

        reentrant_d = new_dynsec(&e, 0);
        g_assert_cmpint(dynsec_submit(reentrant_d, dynsec_batch_host_account_delete("nm1", HOST_ID),
                                      done_free_registry, NULL, &p1, &id1),
                        ==, 0);
        g_assert_cmpint(dynsec_submit(reentrant_d, dynsec_batch_host_account_delete("nm1", HOST_ID),
                                      done_free_registry, NULL, &p2, NULL),
                        ==, 0);
        g_autofree char *a0 = answer(reentrant_d, id1, 0, "deleteClient", NULL);
        g_autofree char *a1 = answer(reentrant_d, id1, 1, "deleteRole", NULL);
        g_autofree char *m = responses(a0, a1, NULL, NULL);
        (void)dynsec_handle_response(reentrant_d, m, strlen(m));
        /* The first completed and freed the registry, which cancelled the second. */
        g_assert_null(reentrant_d);
        g_assert_cmpuint(reentrant_calls, ==, 2);
}

static void test_client_has_role(void)
{
        static const struct {
                const char *json;
                bool has;
        } cases[] = {
                {"{\"client\":{\"username\":\"admin\",\"roles\":[{\"rolename\":\"admin\"},{\"rolename\":"
                 "\"netmakerd-nm1\"}]}}",
                 true},
                {"{\"client\":{\"username\":\"admin\",\"roles\":[{\"rolename\":\"admin\"}]}}", false},
                {"{\"client\":{\"roles\":[1,null,{\"rolename\":5},{\"rolename\":\"netmakerd-nm1x\"}]}}",
                 false},
                {"{\"client\":{\"roles\":{}}}", false},
                {"{\"client\":[]}", false},
                {"{}", false},
        };
        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autoptr(JsonObject) o = nm_json_parse_object(cases[i].json, -1, NULL);
                g_assert_nonnull(o);
                g_assert_cmpint(dynsec_client_has_role(o, "netmakerd-nm1"), ==, cases[i].has);
        }
        g_assert_false(dynsec_client_has_role(NULL, "x"));
}

static void test_setup_answer_with_data(void)
{
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        g_autoptr(Dynsec) d = new_dynsec(&e, 0);
        _cleanup_secret_ char *payload = NULL;
        DynsecBatch *b = dynsec_batch_server_setup("nm1", "admin");
        guint n = dynsec_batch_size(b);
        Done done = {};
        guint64 id;

        g_assert_cmpint(dynsec_submit(d, b, done_cb, &done, &payload, &id), ==, 0);
        g_autoptr(GString) m = g_string_new("{\"responses\":[");
        for (guint i = 0; i < n; i++) {
                g_autoptr(JsonObject) root = NULL;
                JsonArray *cmds = payload_commands(payload, &root);
                const char *cmd =
                        json_object_get_string_member(json_array_get_object_element(cmds, i), "command");
                const char *error = NULL;
                if (streq0(cmd, "createRole"))
                        error = "Role already exists";
                else if (streq0(cmd, "addRoleACL"))
                        error = "ACL with this topic already exists";
                g_autofree char *a = answer(d, id, i, cmd, error);
                if (streq0(cmd, "getClient")) {
                        /* Splice a data member in. */
                        a[strlen(a) - 1] = 0;
                        g_string_append_printf(
                                m,
                                "%s,\"data\":{\"client\":{\"roles\":[{\"rolename\":\"netmakerd-nm1\"}]}}}",
                                a);
                } else
                        g_string_append(m, a);
                if (i + 1 < n)
                        g_string_append_c(m, ',');
        }
        g_string_append(m, "]}");
        g_assert_cmpint(dynsec_handle_response(d, m->str, m->len), ==, (int)n);
        g_assert_cmpuint(done.calls, ==, 1);
        g_assert_cmpint(done.r, ==, 0);
        g_assert_true(done.has_role);
        done_clear(&done);
}

static void test_host_account_bind_batch(void)
{
        g_autoptr(DynsecBatch) b = dynsec_batch_host_account_bind(HOST_ID);
        g_autofree char *payload = dynsec_batch_to_json(b, "p", 3);
        g_autoptr(JsonObject) root = NULL;
        JsonArray *cmds = payload_commands(payload, &root);
        JsonObject *c;

        g_assert_cmpuint(json_array_get_length(cmds), ==, 1);
        c = json_array_get_object_element(cmds, 0);
        /* Only the client id changes: no password, no roles (those would replace the host's). */
        g_assert_cmpuint(json_object_get_size(c), ==, 4);
        g_assert_cmpstr(json_object_get_string_member(c, "command"), ==, "modifyClient");
        g_assert_cmpstr(json_object_get_string_member(c, "username"), ==, "host-" HOST_ID);
        g_assert_cmpstr(json_object_get_string_member(c, "clientid"), ==, "host-" HOST_ID);
}

static void test_host_accounts_list_batch(void)
{
        g_autoptr(DynsecBatch) b = dynsec_batch_host_accounts_list(1000, 500);
        g_autofree char *payload = dynsec_batch_to_json(b, "p", 4);
        g_autoptr(JsonObject) root = NULL;
        JsonArray *cmds = payload_commands(payload, &root);
        static const char *const expected[] = {"listClients", "listRoles"};

        g_assert_cmpuint(json_array_get_length(cmds), ==, 2);
        for (guint i = 0; i < 2; i++) {
                JsonObject *c = json_array_get_object_element(cmds, i);
                g_assert_cmpstr(json_object_get_string_member(c, "command"), ==, expected[i]);
                g_assert_true(json_object_get_boolean_member(c, "verbose"));
                g_assert_cmpint(json_object_get_int_member(c, "count"), ==, 500);
                g_assert_cmpint(json_object_get_int_member(c, "offset"), ==, 1000);
        }
}

/* ---- Reading listings ---------------------------------------------------------------------- */

#define ID_A "0b8e8f5c-7f43-4a55-9f55-2a1d3c4b5a69"
#define ID_B "1c9f9a6d-8a54-4b66-8a66-3b2e4d5c6b7a"
#define ID_C "2d0a0b7e-9b65-4c77-9b77-4c3f5e6d7c8b"

typedef struct ListDone {
        guint offset, page;
        GHashTable *accounts;
        unsigned calls;
        int r, add_r;
} ListDone;

static void list_done_cb(int r, const char *message, DynsecBatch *b, void *userdata)
{
        ListDone *l = userdata;
        l->calls++;
        l->r = r;
        l->add_r = dynsec_host_accounts_add(b, "nm1", l->offset, l->page, l->accounts);
}

/* Answers a listing of `page` entries from `offset` with these "data" members (NULL: none); returns
 * what dynsec_host_accounts_add() said, having added to `accounts`. */
static int list_answer(const char *clients, const char *roles, guint offset, guint page,
                       GHashTable *accounts)
{
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        g_autoptr(Dynsec) d = new_dynsec(&e, 0);
        _cleanup_secret_ char *payload = NULL;
        ListDone l = {.offset = offset, .page = page, .accounts = accounts};
        guint64 id;

        g_assert_cmpint(dynsec_submit(d, dynsec_batch_host_accounts_list(offset, page), list_done_cb, &l,
                                      &payload, &id),
                        ==, 0);
        g_autofree char *dc = clients ? g_strdup_printf(",\"data\":%s", clients) : g_strdup("");
        g_autofree char *dr = roles ? g_strdup_printf(",\"data\":%s", roles) : g_strdup("");
        g_autofree char *m = g_strdup_printf(
                "{\"responses\":[{\"command\":\"listClients\"%s,\"correlationData\":\"%s.%" G_GUINT64_FORMAT
                ".0\"},"
                "{\"command\":\"listRoles\"%s,\"correlationData\":\"%s.%" G_GUINT64_FORMAT ".1\"}]}",
                dc, dynsec_correlation_prefix(d), id, dr, dynsec_correlation_prefix(d), id);
        g_assert_cmpint(dynsec_handle_response(d, m, strlen(m)), ==, 2);
        g_assert_cmpuint(l.calls, ==, 1);
        g_assert_cmpint(l.r, ==, 0);
        return l.add_r;
}

static GHashTable *accounts_new(void)
{
        return g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                     (GDestroyNotify)dynsec_host_account_free);
}

static void test_host_accounts_from_answers(void)
{
        g_autoptr(GHashTable) acc = accounts_new();
        DynsecHostAccount *a;

        /* Page 1 of 2 (two a page): the admin, A bound; B unbound; a role of this server for A,
         * one of another server for B. */
        g_assert_cmpint(
                list_answer("{\"totalCount\":4,\"clients\":["
                            "{\"username\":\"admin\",\"roles\":[{\"rolename\":\"admin\"}]},"
                            "{\"username\":\"host-" ID_A "\",\"clientid\":\"host-" ID_A "\"}]}",
                            "{\"totalCount\":3,\"roles\":["
                            "{\"rolename\":\"host-" ID_A "\",\"acls\":[{\"acltype\":\"subscribePattern\","
                            "\"topic\":\"nm/nm1/host/" ID_A "/msg\",\"allow\":true}]},"
                            "{\"rolename\":\"host-" ID_B "\",\"acls\":[{\"acltype\":\"subscribePattern\","
                            "\"topic\":\"nm/nm2/host/" ID_B "/msg\",\"allow\":true}]}]}",
                            0, 2, acc),
                ==, 1);
        /* Page 2: B with another host's client id, C whose role names A's topics (not its own),
         * and what is no host account at all. A short page and the totals: the last. */
        g_assert_cmpint(
                list_answer("{\"totalCount\":4,\"clients\":["
                            "{\"username\":\"host-" ID_B "\",\"clientid\":\"host-" ID_A "\"},"
                            "{\"username\":\"host-" ID_C "\"},"
                            "\"host-" ID_C "\",{\"username\":\"host-0B8E8F5C-7F43-4A55-9F55-2A1D3C4B5A69\"},"
                            "{\"username\":\"host-x\"},{\"username\":17},{\"clientid\":\"host-" ID_A
                            "\"},7]}",
                            "{\"totalCount\":3,\"roles\":["
                            "{\"rolename\":\"host-" ID_C "\",\"acls\":[{\"acltype\":\"subscribePattern\","
                            "\"topic\":\"nm/nm1/host/" ID_A "/msg\",\"allow\":true},{\"topic\":5},3]},"
                            "{\"rolename\":\"netmakerd-nm1\"}]}",
                            2, 2, acc),
                ==, 0);

        g_assert_cmpuint(g_hash_table_size(acc), ==, 3);
        a = g_hash_table_lookup(acc, ID_A);
        g_assert_nonnull(a);
        g_assert_cmpstr(a->host_id, ==, ID_A);
        g_assert_true(a->has_client && a->bound && a->has_role && a->role_ours);
        a = g_hash_table_lookup(acc, ID_B);
        g_assert_nonnull(a);
        g_assert_true(a->has_client && !a->bound && a->has_role && !a->role_ours);
        a = g_hash_table_lookup(acc, ID_C);
        g_assert_nonnull(a);
        g_assert_true(a->has_client && !a->bound && a->has_role && !a->role_ours);
}

static void test_host_accounts_pages(void)
{
        g_autoptr(GHashTable) acc = accounts_new();
        const char *full = "{\"totalCount\":9,\"clients\":[{\"username\":\"a\"},{\"username\":\"b\"}]}";
        const char *none = "{\"roles\":[]}";

        /* A full page is followed by more unless the total says otherwise; no total: ask. */
        g_assert_cmpint(list_answer(full, none, 0, 2, acc), ==, 1);
        g_assert_cmpint(list_answer(full, none, 7, 2, acc), ==, 0);
        g_assert_cmpint(
                list_answer("{\"clients\":[{\"username\":\"a\"},{\"username\":\"b\"}]}", none, 0, 2, acc),
                ==, 1);
        g_assert_cmpint(list_answer("{\"totalCount\":\"9\",\"clients\":[\"a\",\"b\"]}", none, 0, 2, acc), ==,
                        1);
        /* More roles than clients: still more. */
        g_assert_cmpint(
                list_answer("{\"totalCount\":1,\"clients\":[]}",
                            "{\"totalCount\":3,\"roles\":[{\"rolename\":\"a\"},{\"rolename\":\"b\"}]}", 0, 2,
                            acc),
                ==, 1);
        g_assert_cmpint(list_answer("{\"totalCount\":0,\"clients\":[]}", "{\"totalCount\":0,\"roles\":[]}",
                                    0, 2, acc),
                        ==, 0);
        /* Answers that are no listing. */
        g_assert_cmpint(list_answer(NULL, none, 0, 2, acc), ==, -EBADMSG);
        g_assert_cmpint(list_answer("{\"clients\":{}}", none, 0, 2, acc), ==, -EBADMSG);
        g_assert_cmpint(list_answer("{\"clients\":[]}", "{\"totalCount\":1}", 0, 2, acc), ==, -EBADMSG);
        g_assert_cmpuint(g_hash_table_size(acc), ==, 0);
        /* Another batch is no listing either. */
        g_autoptr(DynsecBatch) b = dynsec_batch_host_account_delete("nm1", ID_A);
        g_assert_cmpint(dynsec_host_accounts_add(b, "nm1", 0, 2, acc), ==, -EBADMSG);
}

int main(int argc, char *argv[])
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/dynsec/batch/host-account-create", test_host_account_create_batch);
        g_test_add_func("/dynsec/batch/host-account-delete", test_host_account_delete_batch);
        g_test_add_func("/dynsec/batch/server-setup", test_server_setup_batch);
        g_test_add_func("/dynsec/batch/host-account-bind", test_host_account_bind_batch);
        g_test_add_func("/dynsec/batch/host-accounts-list", test_host_accounts_list_batch);
        g_test_add_func("/dynsec/listing/host-accounts", test_host_accounts_from_answers);
        g_test_add_func("/dynsec/listing/pages", test_host_accounts_pages);
        g_test_add_func("/dynsec/answer/success-once", test_answer_success_once);
        g_test_add_func("/dynsec/answer/refused", test_answer_refused);
        g_test_add_func("/dynsec/answer/tolerated-only-where-said", test_answer_not_tolerated_elsewhere);
        g_test_add_func("/dynsec/answer/malformed", test_malformed_responses);
        g_test_add_func("/dynsec/answer/random-bytes", test_random_bytes_never_crash);
        g_test_add_func("/dynsec/answer/setup-data", test_setup_answer_with_data);
        g_test_add_func("/dynsec/timeout", test_timeout);
        g_test_add_func("/dynsec/fail-all-and-free", test_fail_all_and_free);
        g_test_add_func("/dynsec/cancel", test_cancel);
        g_test_add_func("/dynsec/free-from-callback", test_free_from_callback);
        g_test_add_func("/dynsec/client-has-role", test_client_has_role);
        return g_test_run();
}
