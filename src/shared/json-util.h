/* Strict JSON reading on top of json-glib: type-checked members, unknown members refused,
 * nesting bounded, and error messages that name the member and the value. */
#pragma once

#include <stdbool.h>
#include <json-glib/json-glib.h>

#define NM_JSON_MAX_DEPTH 32

/* Parses one JSON value. Refuses invalid UTF-8, nesting deeper than NM_JSON_MAX_DEPTH and
 * trailing garbage, with NM_ERROR_INVALID_JSON. */
JsonNode *nm_json_parse(const char *data, gssize len, GError **error);
/* Same, and requires an object. */
JsonObject *nm_json_parse_object(const char *data, gssize len, GError **error);

/* Refuses members not in the NULL-terminated list. `what` names the object in messages. */
bool nm_json_check_members(JsonObject *o, const char *what, const char *const *allowed, GError **error);

/* Each getter: when the member is absent, leaves *ret alone and succeeds unless `required`.
 * A member of the wrong type, or out of range, fails with NM_ERROR_INVALID_ARGUMENT. A JSON null
 * counts as absent. */
bool nm_json_get_string(JsonObject *o, const char *member, bool required, const char **ret, GError **error);
bool nm_json_get_int(JsonObject *o, const char *member, bool required, gint64 min, gint64 max, gint64 *ret,
                     GError **error);
bool nm_json_get_bool(JsonObject *o, const char *member, bool required, bool *ret, GError **error);
/* An array of strings, at most `max` of them; *ret is a new NULL-terminated vector (g_strfreev). */
bool nm_json_get_strv(JsonObject *o, const char *member, bool required, guint max, char ***ret,
                      GError **error);
bool nm_json_get_object(JsonObject *o, const char *member, bool required, JsonObject **ret, GError **error);
bool nm_json_get_array(JsonObject *o, const char *member, bool required, JsonArray **ret, GError **error);

/* Serialises compactly. */
char *nm_json_to_string(JsonNode *node);
char *nm_json_builder_to_string(JsonBuilder *b);

/* Convenience for builders. */
void nm_json_add_string(JsonBuilder *b, const char *member, const char *value); /* NULL -> null */
void nm_json_add_int(JsonBuilder *b, const char *member, gint64 value);
void nm_json_add_bool(JsonBuilder *b, const char *member, bool value);
void nm_json_add_strv(JsonBuilder *b, const char *member, const char *const *v);
