/* Strict JSON reading on top of json-glib. */
#include <string.h>

#include "json-util.h"
#include "macro.h"
#include "nm-error.h"

/* json-glib recurses per nesting level; bound it before parsing so hostile input cannot
 * exhaust the stack. */
static bool depth_ok(const char *data, gsize len)
{
        int depth = 0;
        bool in_string = false, escaped = false;

        for (gsize i = 0; i < len; i++) {
                char c = data[i];
                if (in_string) {
                        if (escaped)
                                escaped = false;
                        else if (c == '\\')
                                escaped = true;
                        else if (c == '"')
                                in_string = false;
                        continue;
                }
                if (c == '"')
                        in_string = true;
                else if (c == '[' || c == '{') {
                        if (++depth > NM_JSON_MAX_DEPTH)
                                return false;
                } else if (c == ']' || c == '}')
                        depth--;
        }
        return true;
}

JsonNode *nm_json_parse(const char *data, gssize len, GError **error)
{
        g_autoptr(JsonParser) parser = NULL;
        g_autoptr(GError) e = NULL;

        if (!data)
                data = "";
        if (len < 0)
                len = (gssize)strlen(data);
        if (len == 0) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_JSON, "Empty body: a JSON value was expected");
                return NULL;
        }
        if (memchr(data, 0, (gsize)len) || !g_utf8_validate(data, len, NULL)) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_JSON, "Invalid JSON: not valid UTF-8 text");
                return NULL;
        }
        if (!depth_ok(data, (gsize)len)) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_JSON,
                            "Invalid JSON: nested deeper than %d levels", NM_JSON_MAX_DEPTH);
                return NULL;
        }
        parser = json_parser_new_immutable();
        if (!json_parser_load_from_data(parser, data, len, &e)) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_JSON, "Invalid JSON: %s", e->message);
                return NULL;
        }
        JsonNode *root = json_parser_get_root(parser);
        if (!root) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_JSON, "Empty body: a JSON value was expected");
                return NULL;
        }
        return json_node_copy(root);
}

JsonObject *nm_json_parse_object(const char *data, gssize len, GError **error)
{
        g_autoptr(JsonNode) n = nm_json_parse(data, len, error);
        if (!n)
                return NULL;
        if (!JSON_NODE_HOLDS_OBJECT(n)) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_JSON, "Invalid JSON: an object was expected");
                return NULL;
        }
        return json_object_ref(json_node_get_object(n));
}

bool nm_json_check_members(JsonObject *o, const char *what, const char *const *allowed, GError **error)
{
        JsonObjectIter it;
        const char *name;
        JsonNode *node;

        json_object_iter_init(&it, o);
        while (json_object_iter_next(&it, &name, &node)) {
                if (allowed && g_strv_contains(allowed, name))
                        continue;
                g_autofree char *list = allowed ? g_strjoinv(", ", (char **)allowed) : g_strdup("");
                g_autofree char *shown = g_utf8_make_valid(name, MIN(strlen(name), 64));
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Unknown member \"%s\" in %s (accepted: %s)", shown, what, list);
                return false;
        }
        return true;
}

static JsonNode *member(JsonObject *o, const char *name)
{
        JsonNode *n = json_object_get_member(o, name);
        if (n && JSON_NODE_HOLDS_NULL(n))
                return NULL;
        return n;
}

static bool missing(const char *name, bool required, GError **error)
{
        if (!required)
                return true;
        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "Missing member \"%s\"", name);
        return false;
}

bool nm_json_get_string(JsonObject *o, const char *name, bool required, const char **ret, GError **error)
{
        JsonNode *n = member(o, name);
        if (!n)
                return missing(name, required, error);
        if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "Member \"%s\" must be a string",
                            name);
                return false;
        }
        *ret = json_node_get_string(n);
        return true;
}

bool nm_json_get_int(JsonObject *o, const char *name, bool required, gint64 min, gint64 max, gint64 *ret,
                     GError **error)
{
        JsonNode *n = member(o, name);
        if (!n)
                return missing(name, required, error);
        if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "Member \"%s\" must be an integer",
                            name);
                return false;
        }
        gint64 v = json_node_get_int(n);
        if (v < min || v > max) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Member \"%s\" is %" G_GINT64_FORMAT ": out of range (%" G_GINT64_FORMAT
                            "-%" G_GINT64_FORMAT ")",
                            name, v, min, max);
                return false;
        }
        *ret = v;
        return true;
}

bool nm_json_get_bool(JsonObject *o, const char *name, bool required, bool *ret, GError **error)
{
        JsonNode *n = member(o, name);
        if (!n)
                return missing(name, required, error);
        if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_BOOLEAN) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Member \"%s\" must be true or false", name);
                return false;
        }
        *ret = json_node_get_boolean(n);
        return true;
}

bool nm_json_get_strv(JsonObject *o, const char *name, bool required, guint max, char ***ret, GError **error)
{
        JsonNode *n = member(o, name);
        if (!n)
                return missing(name, required, error);
        if (!JSON_NODE_HOLDS_ARRAY(n)) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Member \"%s\" must be an array of strings", name);
                return false;
        }
        JsonArray *a = json_node_get_array(n);
        guint len = json_array_get_length(a);
        if (len > max) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Member \"%s\" has %u entries: at most %u are accepted", name, len, max);
                return false;
        }
        g_auto(GStrv) v = g_new0(char *, len + 1);
        for (guint i = 0; i < len; i++) {
                JsonNode *e = json_array_get_element(a, i);
                if (!JSON_NODE_HOLDS_VALUE(e) || json_node_get_value_type(e) != G_TYPE_STRING) {
                        g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                    "Member \"%s\" must be an array of strings (entry %u is not)", name, i);
                        return false;
                }
                v[i] = g_strdup(json_node_get_string(e));
        }
        g_strfreev(*ret);
        *ret = TAKE_PTR(v);
        return true;
}

bool nm_json_get_object(JsonObject *o, const char *name, bool required, JsonObject **ret, GError **error)
{
        JsonNode *n = member(o, name);
        if (!n)
                return missing(name, required, error);
        if (!JSON_NODE_HOLDS_OBJECT(n)) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "Member \"%s\" must be an object",
                            name);
                return false;
        }
        *ret = json_node_get_object(n);
        return true;
}

bool nm_json_get_array(JsonObject *o, const char *name, bool required, JsonArray **ret, GError **error)
{
        JsonNode *n = member(o, name);
        if (!n)
                return missing(name, required, error);
        if (!JSON_NODE_HOLDS_ARRAY(n)) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "Member \"%s\" must be an array",
                            name);
                return false;
        }
        *ret = json_node_get_array(n);
        return true;
}

char *nm_json_to_string(JsonNode *node)
{
        return json_to_string(node, FALSE);
}

char *nm_json_builder_to_string(JsonBuilder *b)
{
        g_autoptr(JsonNode) root = json_builder_get_root(b);
        return json_to_string(root, FALSE);
}

void nm_json_add_string(JsonBuilder *b, const char *name, const char *value)
{
        json_builder_set_member_name(b, name);
        if (value)
                json_builder_add_string_value(b, value);
        else
                json_builder_add_null_value(b);
}

void nm_json_add_int(JsonBuilder *b, const char *name, gint64 value)
{
        json_builder_set_member_name(b, name);
        json_builder_add_int_value(b, value);
}

void nm_json_add_bool(JsonBuilder *b, const char *name, bool value)
{
        json_builder_set_member_name(b, name);
        json_builder_add_boolean_value(b, value);
}

void nm_json_add_strv(JsonBuilder *b, const char *name, const char *const *v)
{
        json_builder_set_member_name(b, name);
        json_builder_begin_array(b);
        for (; v && *v; v++)
                json_builder_add_string_value(b, *v);
        json_builder_end_array(b);
}
