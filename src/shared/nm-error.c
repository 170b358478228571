/* The expected errors of the API and their HTTP statuses and names. */
#include "nm-error.h"
#include "macro.h"

G_DEFINE_QUARK(nm - error - quark, nm_error)

static const struct {
        unsigned status;
        const char *name;
        const char *dbus;
} table[_NM_ERROR_MAX] = {
        [NM_ERROR_INTERNAL] = {500, "internal", "Failed"},
        [NM_ERROR_INVALID_JSON] = {400, "invalid-json", "InvalidArgument"},
        [NM_ERROR_INVALID_ARGUMENT] = {400, "invalid-argument", "InvalidArgument"},
        [NM_ERROR_UNAUTHENTICATED] = {401, "unauthenticated", "Unauthenticated"},
        [NM_ERROR_FORBIDDEN] = {403, "forbidden", "AccessDenied"},
        [NM_ERROR_NOT_FOUND] = {404, "not-found", "NotFound"},
        [NM_ERROR_METHOD_NOT_ALLOWED] = {405, "method-not-allowed", "NotSupported"},
        [NM_ERROR_CONFLICT] = {409, "conflict", "Conflict"},
        [NM_ERROR_GONE] = {410, "gone", "KeyExhausted"},
        [NM_ERROR_TOO_LARGE] = {413, "too-large", "InvalidArgument"},
        [NM_ERROR_UNSUPPORTED_MEDIA_TYPE] = {415, "unsupported-media-type", "InvalidArgument"},
        [NM_ERROR_UNAVAILABLE] = {503, "unavailable", "Unavailable"},
        [NM_ERROR_EXHAUSTED] = {507, "exhausted", "Exhausted"},
        /* Over D-Bus the same advice as a server that is away: try again later. */
        [NM_ERROR_TOO_MANY_REQUESTS] = {429, "too-many-requests", "Unavailable"},
};

unsigned nm_error_http_status(int code)
{
        if (code < 0 || code >= _NM_ERROR_MAX)
                return 500;
        return table[code].status;
}

const char *nm_error_code_name(int code)
{
        if (code < 0 || code >= _NM_ERROR_MAX)
                return "internal";
        return table[code].name;
}

int nm_error_code_from_name(const char *name)
{
        for (int i = 0; i < _NM_ERROR_MAX; i++)
                if (streq0(table[i].name, name))
                        return i;
        return NM_ERROR_INTERNAL;
}

const char *nm_error_dbus_suffix(int code)
{
        if (code < 0 || code >= _NM_ERROR_MAX)
                return "Failed";
        return table[code].dbus;
}
