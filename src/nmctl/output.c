/* nmctl's human output: aligned tables and "Key: value" lists. */
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "macro.h"
#include "output.h"

struct Table {
        guint columns;
        bool list;        /* "Key: value" without a header */
        GPtrArray *cells; /* of char *, row by row; the first row holds the headers unless list */
};

Table *table_new(const char *header, ...)
{
        Table *t = g_new0(Table, 1);
        va_list ap;

        t->cells = g_ptr_array_new_with_free_func(g_free);
        va_start(ap, header);
        for (const char *h = header; h; h = va_arg(ap, const char *)) {
                g_ptr_array_add(t->cells, g_strdup(h));
                t->columns++;
        }
        va_end(ap);
        return t;
}

Table *table_new_list(void)
{
        Table *t = g_new0(Table, 1);
        t->cells = g_ptr_array_new_with_free_func(g_free);
        t->columns = 2;
        t->list = true;
        return t;
}

void table_free(Table *t)
{
        if (!t)
                return;
        g_ptr_array_unref(t->cells);
        g_free(t);
}

/* Control characters never reach the terminal. */
static char *cell(char *s)
{
        if (!s)
                return g_strdup("-");
        for (char *p = s; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        *p = ' ';
        return s;
}

void table_add_row_take(Table *t, ...)
{
        va_list ap;

        va_start(ap, t);
        for (guint i = 0; i < t->columns; i++)
                g_ptr_array_add(t->cells, cell(va_arg(ap, char *)));
        va_end(ap);
}

void table_add_item_take(Table *t, const char *key, char *value)
{
        g_ptr_array_add(t->cells, g_strconcat(key, ":", NULL));
        g_ptr_array_add(t->cells, cell(value));
}

void table_add_item(Table *t, const char *key, const char *value)
{
        table_add_item_take(t, key, g_strdup(value));
}

guint table_rows(const Table *t)
{
        guint rows = t->cells->len / t->columns;
        return t->list ? rows : rows - 1;
}

static size_t width(const char *s)
{
        return g_utf8_validate(s, -1, NULL) ? (size_t)g_utf8_strlen(s, -1) : strlen(s);
}

void table_print(const Table *t, FILE *f)
{
        g_autofree size_t *w = g_new0(size_t, t->columns);
        guint n = t->cells->len;

        for (guint i = 0; i < n; i++)
                w[i % t->columns] = MAX(w[i % t->columns], width(g_ptr_array_index(t->cells, i)));
        for (guint i = 0; i < n; i++) {
                const char *s = g_ptr_array_index(t->cells, i);
                guint col = i % t->columns;
                bool last = col == t->columns - 1;

                fputs(s, f);
                if (last)
                        fputc('\n', f);
                else
                        for (size_t k = width(s); k < w[col] + (t->list ? 1 : 2); k++)
                                fputc(' ', f);
        }
}

/* ---- JSON members -------------------------------------------------------------------------- */

static JsonNode *member_value(JsonObject *o, const char *member, GType type)
{
        JsonNode *n = o ? json_object_get_member(o, member) : NULL;
        if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != type)
                return NULL;
        return n;
}

char *json_member_string(JsonObject *o, const char *member)
{
        JsonNode *n = member_value(o, member, G_TYPE_STRING);
        return n ? g_strdup(json_node_get_string(n)) : NULL;
}

gint64 json_member_int_value(JsonObject *o, const char *member, gint64 fallback)
{
        JsonNode *n = member_value(o, member, G_TYPE_INT64);
        return n ? json_node_get_int(n) : fallback;
}

char *json_member_int(JsonObject *o, const char *member)
{
        JsonNode *n = member_value(o, member, G_TYPE_INT64);
        return n ? g_strdup_printf("%" G_GINT64_FORMAT, json_node_get_int(n)) : NULL;
}

char *json_member_bool(JsonObject *o, const char *member)
{
        JsonNode *n = member_value(o, member, G_TYPE_BOOLEAN);
        return n ? g_strdup(json_node_get_boolean(n) ? "yes" : "no") : NULL;
}

char *json_member_strv(JsonObject *o, const char *member)
{
        JsonNode *n = o ? json_object_get_member(o, member) : NULL;
        g_autoptr(GString) s = NULL;
        JsonArray *a;

        if (!n || !JSON_NODE_HOLDS_ARRAY(n))
                return NULL;
        a = json_node_get_array(n);
        s = g_string_new(NULL);
        for (guint i = 0; i < json_array_get_length(a); i++) {
                JsonNode *e = json_array_get_element(a, i);
                if (!JSON_NODE_HOLDS_VALUE(e) || json_node_get_value_type(e) != G_TYPE_STRING)
                        continue;
                if (s->len > 0)
                        g_string_append(s, ", ");
                g_string_append(s, json_node_get_string(e));
        }
        return g_string_free(g_steal_pointer(&s), false);
}

char *format_time(gint64 t)
{
        g_autoptr(GDateTime) d = g_date_time_new_from_unix_local(t);
        return d ? g_date_time_format(d, "%Y-%m-%d %H:%M:%S") : g_strdup_printf("%" G_GINT64_FORMAT, t);
}

char *json_member_time(JsonObject *o, const char *member, const char *zero)
{
        JsonNode *n = member_value(o, member, G_TYPE_INT64);
        if (!n)
                return NULL;
        if (json_node_get_int(n) == 0)
                return g_strdup(zero);
        return format_time(json_node_get_int(n));
}

JsonArray *answer_array(JsonNode *n)
{
        if (!n || !JSON_NODE_HOLDS_ARRAY(n)) {
                fprintf(stderr, "Error: the server's answer is not a list.\n");
                return NULL;
        }
        return json_node_get_array(n);
}

JsonObject *answer_object(JsonNode *n)
{
        if (!n || !JSON_NODE_HOLDS_OBJECT(n)) {
                fprintf(stderr, "Error: the server's answer is not an object.\n");
                return NULL;
        }
        return json_node_get_object(n);
}
