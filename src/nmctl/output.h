/* nmctl's human output: aligned tables, "Key: value" lists, and lenient reading of the members
 * of the server's JSON objects (a missing or odd member shows as "-", never as a crash). */
#pragma once

#include <stdbool.h>
#include <stdio.h>
#include <json-glib/json-glib.h>

typedef struct Table Table;

/* Columns named by the NULL-terminated headers. */
Table *table_new(const char *header, ...) G_GNUC_NULL_TERMINATED;
/* A two-column "Key: value" list without a header. */
Table *table_new_list(void);
void table_free(Table *t);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Table, table_free)

/* One cell per column, taken over (g_free); NULL shows as "-". */
void table_add_row_take(Table *t, ...);
/* Adds "Key:" and value (copied; NULL shows as "-") to a list. */
void table_add_item(Table *t, const char *key, const char *value);
void table_add_item_take(Table *t, const char *key, char *value);
guint table_rows(const Table *t);
void table_print(const Table *t, FILE *f);

/* Reading members; each returns a new string or NULL when absent / null / of another type. */
char *json_member_string(JsonObject *o, const char *member);
char *json_member_int(JsonObject *o, const char *member);
/* "yes"/"no". */
char *json_member_bool(JsonObject *o, const char *member);
/* Array of strings joined by ", " ("" for an empty array). */
char *json_member_strv(JsonObject *o, const char *member);
/* A Unix time as local "YYYY-MM-DD HH:MM:SS"; `zero` for 0 (may be NULL). */
char *json_member_time(JsonObject *o, const char *member, const char *zero);
gint64 json_member_int_value(JsonObject *o, const char *member, gint64 fallback);
char *format_time(gint64 t);

/* The array in an answer, or NULL (with a message) when the answer is not an array. */
JsonArray *answer_array(JsonNode *n);
JsonObject *answer_object(JsonNode *n);
