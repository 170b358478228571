/* GET /api/v1/health: whether the server, its database and its broker connection work. */
#include <microhttpd.h>

#include "http.h"
#include "json-util.h"
#include "manager.h"
#include "nm-error.h"

static int health_get(Request *r, GError **error)
{
        Manager *m = request_manager(r);
        g_autoptr(JsonBuilder) b = json_builder_new();
        gint64 version;
        int k;

        /* A cheap query proves the database answers. */
        k = store_schema_version(m->store, &version, error);
        if (k < 0) {
                g_clear_error(error);
                g_set_error(error, NM_ERROR, NM_ERROR_UNAVAILABLE, "The database does not answer");
                return k;
        }
        json_builder_begin_object(b);
        nm_json_add_string(b, "status", "ok");
        nm_json_add_string(b, "version", PACKAGE_VERSION);
        nm_json_add_string(b, "database", store_backend_name(m->store));
        nm_json_add_bool(b, "broker_connected", mq_is_connected(m->mq));
        json_builder_end_object(b);
        request_reply_builder(r, MHD_HTTP_OK, b);
        return 0;
}

const Route http_health_routes[] = {
        {"GET", "/health", ACCESS_ANYONE, health_get},
        {},
};
