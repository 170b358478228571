/* Mosquitto dynamic-security command batches and the matching of their answers to requests. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "dynsec.h"
#include "json-util.h"
#include "keys.h"
#include "macro.h"

#define USEC_PER_MSEC ((uint64_t)1000)

typedef struct DynsecCommand {
        JsonNode *node; /* the command object */
        char *name;     /* its "command" */
        char **tolerated;
        bool answered;
        char *error;
        JsonNode *data;
} DynsecCommand;

struct DynsecBatch {
        GPtrArray *commands; /* of DynsecCommand */
};

static void dynsec_command_free(DynsecCommand *c)
{
        if (!c)
                return;
        if (c->node)
                json_node_unref(c->node);
        g_free(c->name);
        g_strfreev(c->tolerated);
        g_free(c->error);
        if (c->data)
                json_node_unref(c->data);
        g_free(c);
}

DynsecBatch *dynsec_batch_new(void)
{
        DynsecBatch *b = g_new0(DynsecBatch, 1);
        b->commands = g_ptr_array_new_with_free_func((GDestroyNotify)dynsec_command_free);
        return b;
}

void dynsec_batch_free(DynsecBatch *b)
{
        if (!b)
                return;
        g_ptr_array_unref(b->commands);
        g_free(b);
}

guint dynsec_batch_add(DynsecBatch *b, JsonNode *command, const char *const *tolerated)
{
        DynsecCommand *c;
        JsonObject *o;

        g_return_val_if_fail(b, 0);
        g_return_val_if_fail(command && JSON_NODE_HOLDS_OBJECT(command), 0);
        o = json_node_get_object(command);
        g_return_val_if_fail(json_object_has_member(o, "command"), 0);

        c = g_new0(DynsecCommand, 1);
        c->node = command;
        c->name = g_strdup(json_object_get_string_member(o, "command"));
        c->tolerated = g_strdupv((char **)tolerated);
        g_ptr_array_add(b->commands, c);
        return b->commands->len - 1;
}

guint dynsec_batch_size(const DynsecBatch *b)
{
        return b ? b->commands->len : 0;
}

static DynsecCommand *batch_command(const DynsecBatch *b, guint i)
{
        if (!b || i >= b->commands->len)
                return NULL;
        return g_ptr_array_index(b->commands, i);
}

const char *dynsec_batch_error(const DynsecBatch *b, guint i)
{
        DynsecCommand *c = batch_command(b, i);
        return c ? c->error : NULL;
}

JsonObject *dynsec_batch_data(const DynsecBatch *b, guint i)
{
        DynsecCommand *c = batch_command(b, i);
        return c && c->data && JSON_NODE_HOLDS_OBJECT(c->data) ? json_node_get_object(c->data) : NULL;
}

bool dynsec_batch_answered(const DynsecBatch *b, guint i)
{
        DynsecCommand *c = batch_command(b, i);
        return c && c->answered;
}

char *dynsec_batch_to_json(const DynsecBatch *b, const char *correlation_prefix, guint64 request_id)
{
        g_autoptr(JsonArray) commands = json_array_new();
        g_autoptr(JsonObject) root = json_object_new();
        g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);

        g_return_val_if_fail(b, NULL);
        g_return_val_if_fail(correlation_prefix, NULL);

        for (guint i = 0; i < b->commands->len; i++) {
                DynsecCommand *c = g_ptr_array_index(b->commands, i);
                JsonNode *copy = json_node_copy(c->node);
                g_autofree char *corr =
                        g_strdup_printf("%s.%" G_GUINT64_FORMAT ".%u", correlation_prefix, request_id, i);
                json_object_set_string_member(json_node_get_object(copy), "correlationData", corr);
                json_array_add_element(commands, copy);
        }
        json_object_set_array_member(root, "commands", g_steal_pointer(&commands));
        json_node_set_object(node, root);
        return nm_json_to_string(node);
}

/* ---- Command builders ---------------------------------------------------------------------- */

static JsonObject *command_new(const char *command, JsonNode **ret_node)
{
        JsonNode *n = json_node_new(JSON_NODE_OBJECT);
        JsonObject *o = json_object_new();
        json_object_set_string_member(o, "command", command);
        json_node_take_object(n, o);
        *ret_node = n;
        return o;
}

static JsonObject *acl_object(const DynsecAcl *acl, bool with_allow)
{
        JsonObject *a = json_object_new();
        json_object_set_string_member(a, "acltype", acl->acltype);
        if (acl->topic)
                json_object_set_string_member(a, "topic", acl->topic);
        if (with_allow)
                json_object_set_boolean_member(a, "allow", acl->allow);
        return a;
}

JsonNode *dynsec_cmd_create_role(const char *rolename, const DynsecAcl *acls, size_t n_acls)
{
        JsonNode *n;
        JsonObject *o = command_new("createRole", &n);
        JsonArray *a = json_array_new();

        json_object_set_string_member(o, "rolename", rolename);
        for (size_t i = 0; i < n_acls; i++)
                json_array_add_object_element(a, acl_object(&acls[i], true));
        json_object_set_array_member(o, "acls", a);
        return n;
}

JsonNode *dynsec_cmd_delete_role(const char *rolename)
{
        JsonNode *n;
        JsonObject *o = command_new("deleteRole", &n);
        json_object_set_string_member(o, "rolename", rolename);
        return n;
}

JsonNode *dynsec_cmd_add_role_acl(const char *rolename, const DynsecAcl *acl)
{
        JsonNode *n;
        JsonObject *o = command_new("addRoleACL", &n);
        json_object_set_string_member(o, "rolename", rolename);
        json_object_set_string_member(o, "acltype", acl->acltype);
        json_object_set_string_member(o, "topic", acl->topic);
        json_object_set_boolean_member(o, "allow", acl->allow);
        return n;
}

JsonNode *dynsec_cmd_create_client(const char *username, const char *password, const char *clientid,
                                   const char *rolename)
{
        JsonNode *n;
        JsonObject *o = command_new("createClient", &n);

        json_object_set_string_member(o, "username", username);
        json_object_set_string_member(o, "password", password);
        if (clientid)
                json_object_set_string_member(o, "clientid", clientid);
        if (rolename) {
                JsonArray *roles = json_array_new();
                JsonObject *r = json_object_new();
                json_object_set_string_member(r, "rolename", rolename);
                json_array_add_object_element(roles, r);
                json_object_set_array_member(o, "roles", roles);
        }
        return n;
}

JsonNode *dynsec_cmd_set_client_id(const char *username, const char *clientid)
{
        JsonNode *n;
        JsonObject *o = command_new("modifyClient", &n);
        json_object_set_string_member(o, "username", username);
        json_object_set_string_member(o, "clientid", clientid);
        return n;
}

JsonNode *dynsec_cmd_delete_client(const char *username)
{
        JsonNode *n;
        JsonObject *o = command_new("deleteClient", &n);
        json_object_set_string_member(o, "username", username);
        return n;
}

JsonNode *dynsec_cmd_get_client(const char *username)
{
        JsonNode *n;
        JsonObject *o = command_new("getClient", &n);
        json_object_set_string_member(o, "username", username);
        return n;
}

JsonNode *dynsec_cmd_add_client_role(const char *username, const char *rolename)
{
        JsonNode *n;
        JsonObject *o = command_new("addClientRole", &n);
        json_object_set_string_member(o, "username", username);
        json_object_set_string_member(o, "rolename", rolename);
        return n;
}

static JsonNode *list_command(const char *command, guint offset, guint count)
{
        JsonNode *n;
        JsonObject *o = command_new(command, &n);
        json_object_set_boolean_member(o, "verbose", true);
        json_object_set_int_member(o, "count", count);
        json_object_set_int_member(o, "offset", offset);
        return n;
}

JsonNode *dynsec_cmd_list_clients(guint offset, guint count)
{
        return list_command("listClients", offset, count);
}

JsonNode *dynsec_cmd_list_roles(guint offset, guint count)
{
        return list_command("listRoles", offset, count);
}

JsonNode *dynsec_cmd_set_default_acl_access(bool subscribe, bool publish_client_send)
{
        static const DynsecAcl sub = {.acltype = "subscribe"};
        static const DynsecAcl pub = {.acltype = "publishClientSend"};
        DynsecAcl s = sub, p = pub;
        JsonNode *n;
        JsonObject *o = command_new("setDefaultACLAccess", &n);
        JsonArray *a = json_array_new();

        s.allow = subscribe;
        p.allow = publish_client_send;
        json_array_add_object_element(a, acl_object(&s, true));
        json_array_add_object_element(a, acl_object(&p, true));
        json_object_set_array_member(o, "acls", a);
        return n;
}

/* ---- The batches netmakerd sends --------------------------------------------------------- */

/* The exact error texts of Mosquitto 2.0's plugin (plugins/dynamic-security/). */
static const char *const tolerate_client_missing[] = {"Client not found", NULL};
static const char *const tolerate_role_missing[] = {"Role not found", NULL};
static const char *const tolerate_role_exists[] = {"Role already exists", NULL};
static const char *const tolerate_acl_exists[] = {"ACL with this topic already exists", NULL};

char *dynsec_host_name(const char *host_id)
{
        return g_strconcat("host-", host_id, NULL);
}

DynsecBatch *dynsec_batch_host_account_create(const char *server, const char *host_id, const char *password)
{
        g_autoptr(DynsecBatch) b = dynsec_batch_new();
        g_autofree char *name = dynsec_host_name(host_id);
        g_autofree char *msg = g_strdup_printf("nm/%s/host/%s/msg", server, host_id);
        g_autofree char *report = g_strdup_printf("nm/%s/host/%s/report", server, host_id);
        const DynsecAcl acls[] = {
                {"subscribePattern", msg, true},
                {"publishClientReceive", msg, true},
                {"publishClientSend", report, true},
        };

        dynsec_batch_add(b, dynsec_cmd_delete_client(name), tolerate_client_missing);
        dynsec_batch_add(b, dynsec_cmd_delete_role(name), tolerate_role_missing);
        dynsec_batch_add(b, dynsec_cmd_create_role(name, acls, G_N_ELEMENTS(acls)), NULL);
        dynsec_batch_add(b, dynsec_cmd_create_client(name, password, name, name), NULL);
        return TAKE_PTR(b);
}

DynsecBatch *dynsec_batch_host_account_delete(const char *server, const char *host_id)
{
        g_autoptr(DynsecBatch) b = dynsec_batch_new();
        g_autofree char *name = dynsec_host_name(host_id);

        dynsec_batch_add(b, dynsec_cmd_delete_client(name), tolerate_client_missing);
        dynsec_batch_add(b, dynsec_cmd_delete_role(name), tolerate_role_missing);
        return TAKE_PTR(b);
}

DynsecBatch *dynsec_batch_host_account_bind(const char *host_id)
{
        g_autoptr(DynsecBatch) b = dynsec_batch_new();
        g_autofree char *name = dynsec_host_name(host_id);

        dynsec_batch_add(b, dynsec_cmd_set_client_id(name, name), NULL);
        return TAKE_PTR(b);
}

DynsecBatch *dynsec_batch_host_accounts_list(guint offset, guint page_size)
{
        g_autoptr(DynsecBatch) b = dynsec_batch_new();

        dynsec_batch_add(b, dynsec_cmd_list_clients(offset, page_size), NULL);
        dynsec_batch_add(b, dynsec_cmd_list_roles(offset, page_size), NULL);
        return TAKE_PTR(b);
}

void dynsec_host_account_free(DynsecHostAccount *a)
{
        if (!a)
                return;
        g_free(a->host_id);
        g_free(a);
}

/* "host-<uuid>" → the uuid inside `name`, or NULL for any other name. */
static const char *host_id_of(const char *name)
{
        if (!name || !g_str_has_prefix(name, "host-") || !nm_uuid_valid(name + strlen("host-")))
                return NULL;
        return name + strlen("host-");
}

static DynsecHostAccount *account_get(GHashTable *accounts, const char *host_id)
{
        DynsecHostAccount *a = g_hash_table_lookup(accounts, host_id);

        if (!a) {
                a = g_new0(DynsecHostAccount, 1);
                a->host_id = g_strdup(host_id);
                g_hash_table_insert(accounts, a->host_id, a);
        }
        return a;
}

static const char *object_string(JsonObject *o, const char *member)
{
        JsonNode *n = json_object_get_member(o, member);
        if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
                return NULL;
        return json_node_get_string(n);
}

/* The entries of one listing answer ("clients" or "roles") and whether more follow it. */
static JsonArray *listing(const DynsecBatch *b, guint i, const char *member, guint offset, guint page_size,
                          bool *more)
{
        JsonObject *data = dynsec_batch_data(b, i);
        JsonNode *n = data ? json_object_get_member(data, member) : NULL;
        JsonNode *total = data ? json_object_get_member(data, "totalCount") : NULL;
        JsonArray *a;
        guint len;

        if (!n || !JSON_NODE_HOLDS_ARRAY(n))
                return NULL;
        a = json_node_get_array(n);
        len = json_array_get_length(a);
        /* A full page is followed by another unless the total says it was the last. */
        *more = *more || (len >= page_size && (!total || !JSON_NODE_HOLDS_VALUE(total) ||
                                               json_node_get_value_type(total) != G_TYPE_INT64 ||
                                               (gint64)offset + len < json_node_get_int(total)));
        return a;
}

static void add_client(GHashTable *accounts, JsonObject *client)
{
        const char *username = object_string(client, "username");
        const char *id = host_id_of(username);
        DynsecHostAccount *a;

        if (!id)
                return;
        a = account_get(accounts, id);
        a->has_client = true;
        a->bound = streq0(object_string(client, "clientid"), username);
}

static void add_role(GHashTable *accounts, JsonObject *role, const char *server)
{
        const char *id = host_id_of(object_string(role, "rolename"));
        g_autofree char *ours = NULL;
        DynsecHostAccount *a;
        JsonNode *n;

        if (!id)
                return;
        a = account_get(accounts, id);
        a->has_role = true;
        ours = g_strdup_printf("nm/%s/host/%s/", server, id);
        n = json_object_get_member(role, "acls");
        if (!n || !JSON_NODE_HOLDS_ARRAY(n))
                return;
        JsonArray *acls = json_node_get_array(n);
        for (guint i = 0; i < json_array_get_length(acls); i++) {
                JsonNode *e = json_array_get_element(acls, i);
                const char *topic;
                if (!JSON_NODE_HOLDS_OBJECT(e))
                        continue;
                topic = object_string(json_node_get_object(e), "topic");
                if (topic && g_str_has_prefix(topic, ours))
                        a->role_ours = true;
        }
}

int dynsec_host_accounts_add(const DynsecBatch *b, const char *server, guint offset, guint page_size,
                             GHashTable *accounts)
{
        JsonArray *clients, *roles;
        bool more = false;

        g_return_val_if_fail(server && accounts && page_size > 0, -EINVAL);

        if (dynsec_batch_size(b) != 2)
                return -EBADMSG;
        clients = listing(b, 0, "clients", offset, page_size, &more);
        roles = listing(b, 1, "roles", offset, page_size, &more);
        if (!clients || !roles)
                return -EBADMSG;
        /* Names only (a broker that ignores "verbose") tell nothing of bindings and ACLs: skipped. */
        for (guint i = 0; i < json_array_get_length(clients); i++) {
                JsonNode *e = json_array_get_element(clients, i);
                if (JSON_NODE_HOLDS_OBJECT(e))
                        add_client(accounts, json_node_get_object(e));
        }
        for (guint i = 0; i < json_array_get_length(roles); i++) {
                JsonNode *e = json_array_get_element(roles, i);
                if (JSON_NODE_HOLDS_OBJECT(e))
                        add_role(accounts, json_node_get_object(e), server);
        }
        return more ? 1 : 0;
}

char *dynsec_server_role_name(const char *server)
{
        return g_strconcat("netmakerd-", server, NULL);
}

DynsecBatch *dynsec_batch_server_setup(const char *server, const char *admin_user)
{
        g_autoptr(DynsecBatch) b = dynsec_batch_new();
        g_autofree char *role = dynsec_server_role_name(server);
        g_autofree char *msgs = g_strdup_printf("nm/%s/host/+/msg", server);
        g_autofree char *reports = g_strdup_printf("nm/%s/host/+/report", server);
        const DynsecAcl acls[] = {
                {"publishClientSend", msgs, true},
                {"subscribePattern", reports, true},
                {"publishClientReceive", reports, true},
        };

        dynsec_batch_add(b, dynsec_cmd_set_default_acl_access(false, false), NULL);
        dynsec_batch_add(b, dynsec_cmd_create_role(role, acls, G_N_ELEMENTS(acls)), tolerate_role_exists);
        /* When the role was there already, make sure it has what we need. */
        for (size_t i = 0; i < G_N_ELEMENTS(acls); i++)
                dynsec_batch_add(b, dynsec_cmd_add_role_acl(role, &acls[i]), tolerate_acl_exists);
        dynsec_batch_add(b, dynsec_cmd_get_client(admin_user), NULL);
        return TAKE_PTR(b);
}

bool dynsec_client_has_role(JsonObject *data, const char *rolename)
{
        JsonNode *n;
        JsonObject *client;
        JsonArray *roles;

        if (!data || !rolename)
                return false;
        n = json_object_get_member(data, "client");
        if (!n || !JSON_NODE_HOLDS_OBJECT(n))
                return false;
        client = json_node_get_object(n);
        n = json_object_get_member(client, "roles");
        if (!n || !JSON_NODE_HOLDS_ARRAY(n))
                return false;
        roles = json_node_get_array(n);
        for (guint i = 0; i < json_array_get_length(roles); i++) {
                JsonNode *e = json_array_get_element(roles, i);
                JsonNode *rn;
                if (!JSON_NODE_HOLDS_OBJECT(e))
                        continue;
                rn = json_object_get_member(json_node_get_object(e), "rolename");
                if (rn && JSON_NODE_HOLDS_VALUE(rn) && json_node_get_value_type(rn) == G_TYPE_STRING &&
                    streq0(json_node_get_string(rn), rolename))
                        return true;
        }
        return false;
}

/* ---- Requests in flight -------------------------------------------------------------------- */

typedef struct DynsecRequest {
        Dynsec *d;
        guint64 id;
        DynsecBatch *batch;
        guint n_answered;
        dynsec_done_t done;
        void *userdata;
        sd_event_source *timer;
} DynsecRequest;

struct Dynsec {
        sd_event *event;
        uint64_t timeout;
        char *prefix;
        guint64 next_id;
        GHashTable *requests; /* id → DynsecRequest */
        unsigned depth;       /* inside a `done` callback */
        bool dead;
};

static void request_free(DynsecRequest *q)
{
        if (!q)
                return;
        q->timer = sd_event_source_disable_unref(q->timer);
        dynsec_batch_free(q->batch);
        g_free(q);
}

static void dynsec_really_free(Dynsec *d)
{
        g_hash_table_unref(d->requests);
        sd_event_unref(d->event);
        g_free(d->prefix);
        g_free(d);
}

/* Removes the request and calls its `done` once. Returns false when `d` was freed meanwhile. */
static bool request_complete(Dynsec *d, guint64 id, int r, const char *message)
{
        DynsecRequest *q = NULL;
        gpointer key;

        if (!g_hash_table_steal_extended(d->requests, &id, &key, (gpointer *)&q))
                return true;
        q->timer = sd_event_source_disable_unref(q->timer);
        d->depth++;
        if (q->done)
                q->done(r, message, q->batch, q->userdata);
        request_free(q);
        if (--d->depth == 0 && d->dead) {
                dynsec_really_free(d);
                return false;
        }
        return true;
}

static int request_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
        DynsecRequest *q = userdata;
        Dynsec *d = q->d;
        g_autofree char *msg = g_strdup_printf("The broker did not answer within %" PRIu64 " ms",
                                               d->timeout / USEC_PER_MSEC);

        (void)request_complete(d, q->id, -ETIMEDOUT, msg);
        return 0;
}

int dynsec_new(sd_event *event, uint64_t timeout_usec, Dynsec **ret)
{
        Dynsec *d;
        guint32 rnd[2];

        g_return_val_if_fail(event, -EINVAL);
        g_return_val_if_fail(ret, -EINVAL);

        d = g_new0(Dynsec, 1);
        d->event = sd_event_ref(event);
        d->timeout = timeout_usec ?: DYNSEC_DEFAULT_TIMEOUT_USEC;
        rnd[0] = g_random_int();
        rnd[1] = g_random_int();
        d->prefix = g_strdup_printf("nm%08x%08x", rnd[0], rnd[1]);
        d->next_id = 1;
        d->requests = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, (GDestroyNotify)request_free);
        *ret = d;
        return 0;
}

void dynsec_fail_all(Dynsec *d, int error, const char *message)
{
        g_autoptr(GArray) ids = NULL;
        GHashTableIter it;
        DynsecRequest *q;

        if (!d)
                return;
        ids = g_array_new(false, false, sizeof(guint64));
        g_hash_table_iter_init(&it, d->requests);
        while (g_hash_table_iter_next(&it, NULL, (gpointer *)&q))
                g_array_append_val(ids, q->id);
        d->depth++;
        for (guint i = 0; i < ids->len && !d->dead; i++)
                (void)request_complete(d, g_array_index(ids, guint64, i), error, message);
        if (--d->depth == 0 && d->dead)
                dynsec_really_free(d);
}

Dynsec *dynsec_free(Dynsec *d)
{
        if (!d || d->dead)
                return NULL;
        d->depth++;
        dynsec_fail_all(d, -ECANCELED, "The server is shutting down");
        d->dead = true;
        if (--d->depth == 0)
                dynsec_really_free(d);
        return NULL;
}

int dynsec_submit(Dynsec *d, DynsecBatch *b, dynsec_done_t done, void *userdata, char **ret_payload,
                  guint64 *ret_id)
{
        DynsecRequest *q;
        int r;

        g_return_val_if_fail(d && !d->dead, -EINVAL);
        g_return_val_if_fail(b && dynsec_batch_size(b) > 0, -EINVAL);
        g_return_val_if_fail(ret_payload, -EINVAL);

        q = g_new0(DynsecRequest, 1);
        q->d = d;
        q->id = d->next_id++;
        q->batch = b;
        q->done = done;
        q->userdata = userdata;

        uint64_t now = 0;
        (void)sd_event_now(d->event, CLOCK_MONOTONIC, &now);
        r = sd_event_add_time(d->event, &q->timer, CLOCK_MONOTONIC, now + d->timeout, 100 * USEC_PER_MSEC,
                              request_timeout, q);
        if (r < 0) {
                q->batch = NULL; /* the caller keeps it on failure */
                request_free(q);
                return r;
        }
        (void)sd_event_source_set_description(q->timer, "dynsec-timeout");

        *ret_payload = dynsec_batch_to_json(b, d->prefix, q->id);
        if (ret_id)
                *ret_id = q->id;
        g_hash_table_insert(d->requests, &q->id, q);
        return 0;
}

void dynsec_cancel(Dynsec *d, guint64 id)
{
        if (d)
                g_hash_table_remove(d->requests, &id);
}

guint dynsec_pending(Dynsec *d)
{
        return d ? g_hash_table_size(d->requests) : 0;
}

const char *dynsec_correlation_prefix(Dynsec *d)
{
        return d ? d->prefix : NULL;
}

/* "<our prefix>.<id>.<index>" → id and index; false for anything else. */
static bool correlation_parse(Dynsec *d, const char *s, guint64 *ret_id, guint *ret_index)
{
        size_t n = strlen(d->prefix);
        const char *p, *dot;
        g_autofree char *id_text = NULL;
        guint64 id, index;

        if (strncmp(s, d->prefix, n) != 0 || s[n] != '.')
                return false;
        p = s + n + 1;
        dot = strchr(p, '.');
        if (!dot)
                return false;
        id_text = g_strndup(p, dot - p);
        if (!g_ascii_string_to_unsigned(id_text, 10, 1, G_MAXUINT64, &id, NULL))
                return false;
        if (!g_ascii_string_to_unsigned(dot + 1, 10, 0, G_MAXUINT, &index, NULL))
                return false;
        *ret_id = id;
        *ret_index = (guint)index;
        return true;
}

static const char *member_string(JsonObject *o, const char *member, bool *wrong_type)
{
        JsonNode *n = json_object_get_member(o, member);
        if (!n || JSON_NODE_HOLDS_NULL(n))
                return NULL;
        if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING) {
                if (wrong_type)
                        *wrong_type = true;
                return NULL;
        }
        return json_node_get_string(n);
}

/* The message for a failed request: the first command the broker refused. */
static int request_evaluate(DynsecRequest *q, char **ret_message)
{
        for (guint i = 0; i < q->batch->commands->len; i++) {
                DynsecCommand *c = g_ptr_array_index(q->batch->commands, i);
                JsonObject *o = json_node_get_object(c->node);
                const char *target;

                if (!c->error ||
                    (c->tolerated && g_strv_contains((const char *const *)c->tolerated, c->error)))
                        continue;
                target = member_string(o, "username", NULL) ?: member_string(o, "rolename", NULL);
                *ret_message = g_strdup_printf("The broker refused %s%s%s: %s", c->name, target ? " " : "",
                                               strempty(target), c->error);
                return -EIO;
        }
        *ret_message = NULL;
        return 0;
}

int dynsec_handle_response(Dynsec *d, const void *payload, size_t len)
{
        g_autoptr(JsonObject) root = NULL;
        g_autoptr(GArray) finished = NULL;
        JsonNode *rn;
        JsonArray *responses;
        int matched = 0;

        if (!d || d->dead)
                return -EINVAL;
        if (!payload || len == 0 || len > DYNSEC_MAX_RESPONSE)
                return -EBADMSG;
        root = nm_json_parse_object(payload, (gssize)len, NULL);
        if (!root)
                return -EBADMSG;
        rn = json_object_get_member(root, "responses");
        if (!rn || !JSON_NODE_HOLDS_ARRAY(rn))
                return -EBADMSG;
        responses = json_node_get_array(rn);

        finished = g_array_new(false, false, sizeof(guint64));
        for (guint i = 0; i < json_array_get_length(responses); i++) {
                JsonNode *e = json_array_get_element(responses, i);
                JsonObject *o;
                const char *corr, *command, *error;
                bool bad = false;
                DynsecRequest *q;
                DynsecCommand *c;
                JsonNode *data;
                guint64 id;
                guint index;

                if (!JSON_NODE_HOLDS_OBJECT(e))
                        continue;
                o = json_node_get_object(e);
                corr = member_string(o, "correlationData", NULL);
                if (!corr || !correlation_parse(d, corr, &id, &index))
                        continue;
                q = g_hash_table_lookup(d->requests, &id);
                if (!q || index >= q->batch->commands->len)
                        continue;
                c = g_ptr_array_index(q->batch->commands, index);
                if (c->answered)
                        continue;

                command = member_string(o, "command", &bad);
                error = member_string(o, "error", &bad);
                c->answered = true;
                q->n_answered++;
                matched++;
                if (bad)
                        c->error = g_strdup("malformed answer");
                else if (!streq0(command, c->name))
                        c->error = g_strdup_printf("answer for another command (\"%.32s\")", strna(command));
                else if (error)
                        c->error = g_strndup(error, 200);
                data = json_object_get_member(o, "data");
                if (data && JSON_NODE_HOLDS_OBJECT(data))
                        c->data = json_node_copy(data);
                if (q->n_answered == q->batch->commands->len)
                        g_array_append_val(finished, q->id);
        }

        d->depth++;
        for (guint i = 0; i < finished->len && !d->dead; i++) {
                guint64 id = g_array_index(finished, guint64, i);
                DynsecRequest *q = g_hash_table_lookup(d->requests, &id);
                g_autofree char *message = NULL;
                int r;

                if (!q)
                        continue;
                r = request_evaluate(q, &message);
                (void)request_complete(d, id, r, message);
        }
        if (--d->depth == 0 && d->dead)
                dynsec_really_free(d);
        return matched;
}
