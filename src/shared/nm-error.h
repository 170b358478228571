/* The expected errors of the API (bad input, missing objects, conflicts...): one enum shared by the
 * REST server, the D-Bus service and the CLIs, so each maps to one HTTP status and one D-Bus name. */
#pragma once

#include <glib.h>

#define NM_ERROR (nm_error_quark())
GQuark nm_error_quark(void);

typedef enum {
        NM_ERROR_INTERNAL,
        NM_ERROR_INVALID_JSON,
        NM_ERROR_INVALID_ARGUMENT,
        NM_ERROR_UNAUTHENTICATED,
        NM_ERROR_FORBIDDEN,
        NM_ERROR_NOT_FOUND,
        NM_ERROR_METHOD_NOT_ALLOWED,
        NM_ERROR_CONFLICT,
        NM_ERROR_GONE,
        NM_ERROR_TOO_LARGE,
        NM_ERROR_UNSUPPORTED_MEDIA_TYPE,
        NM_ERROR_UNAVAILABLE,
        NM_ERROR_EXHAUSTED,
        NM_ERROR_TOO_MANY_REQUESTS, /* a rate limit: retry later (Retry-After) */
        _NM_ERROR_MAX,
} NmErrorCode;

/* HTTP status for a code (500 for unknown codes). */
unsigned nm_error_http_status(int code);
/* Stable machine-readable name: "invalid-argument", "not-found", ... */
const char *nm_error_code_name(int code);
/* Reverse of nm_error_code_name(); NM_ERROR_INTERNAL for unknown names. */
int nm_error_code_from_name(const char *name);
/* The D-Bus error name suffix in CamelCase: "InvalidArgument", "NotFound", ... */
const char *nm_error_dbus_suffix(int code);
