/* The SQLite backend of the store: one connection in WAL mode with foreign keys on, a cache of
 * prepared statements, and $N parameters bound by name. */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "nm-error.h"
#include "store.h"

typedef struct SqliteDb {
        sqlite3 *db;
        GHashTable *statements; /* SQL text -> sqlite3_stmt */
} SqliteDb;

static int map_error(sqlite3 *db, int rc, const char *what, GError **error)
{
        int ext = sqlite3_extended_errcode(db);
        const char *msg = sqlite3_errmsg(db);
        int r;
        NmErrorCode code = NM_ERROR_INTERNAL;

        switch (rc & 0xff) {
        case SQLITE_CONSTRAINT:
                if (ext == SQLITE_CONSTRAINT_FOREIGNKEY) {
                        r = -ENOENT;
                        code = NM_ERROR_NOT_FOUND;
                } else if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY) {
                        r = -EEXIST;
                        code = NM_ERROR_CONFLICT;
                } else
                        r = -EINVAL;
                break;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                r = -EBUSY;
                code = NM_ERROR_UNAVAILABLE;
                break;
        case SQLITE_FULL:
                r = -ENOSPC;
                code = NM_ERROR_UNAVAILABLE;
                break;
        case SQLITE_NOMEM:
                r = -ENOMEM;
                break;
        case SQLITE_READONLY:
        case SQLITE_PERM:
        case SQLITE_CANTOPEN:
                r = -EACCES;
                code = NM_ERROR_UNAVAILABLE;
                break;
        default:
                r = -EIO;
        }
        log_debug("SQLite: %s failed: %s (%d)", what, msg, ext);
        if (code == NM_ERROR_UNAVAILABLE)
                g_set_error(error, NM_ERROR, code, "The database is unavailable: %s", msg);
        else
                g_set_error(error, NM_ERROR, code, "Database error: %s", msg);
        return r;
}

static void finalize_statement(gpointer p)
{
        sqlite3_finalize(p);
}

static void sqlite_close(void *p)
{
        SqliteDb *d = p;
        if (!d)
                return;
        if (d->statements)
                g_hash_table_unref(d->statements);
        if (d->db)
                sqlite3_close_v2(d->db);
        g_free(d);
}

static int exec_script(void *p, const char *sql, GError **error)
{
        SqliteDb *d = p;
        int rc = sqlite3_exec(d->db, sql, NULL, NULL, NULL);
        if (rc != SQLITE_OK)
                return map_error(d->db, rc, "script", error);
        return 0;
}

/* The database holds the server's secret keys: the file is the service's alone. */
static int prepare_file(const char *path, GError **error)
{
        g_autofree char *dir = g_path_get_dirname(path);
        _cleanup_close_ int fd = -1;
        struct stat st;

        if (g_mkdir_with_parents(dir, 0700) < 0) {
                int r = -errno;
                g_set_error(error, NM_ERROR, NM_ERROR_UNAVAILABLE,
                            "Failed to create the database directory %s: %s", dir, g_strerror(-r));
                return r;
        }
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
        if (fd < 0) {
                int r = -errno;
                g_set_error(error, NM_ERROR, NM_ERROR_UNAVAILABLE, "Failed to open the database %s: %s",
                            path, g_strerror(-r));
                return r;
        }
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode)) {
                g_set_error(error, NM_ERROR, NM_ERROR_UNAVAILABLE, "The database %s is not a regular file",
                            path);
                return -EINVAL;
        }
        if ((st.st_mode & 0077) && st.st_uid == geteuid()) {
                log_debug("Tightening the permissions of %s to 0600.", path);
                (void)fchmod(fd, st.st_mode & 0700);
        }
        return 0;
}

static int sqlite_open(const char *location, void **ret, GError **error)
{
        SqliteDb *d;
        int rc, r;

        r = prepare_file(location, error);
        if (r < 0)
                return r;

        d = g_new0(SqliteDb, 1);
        rc = sqlite3_open_v2(location, &d->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
        if (rc != SQLITE_OK) {
                if (d->db)
                        r = map_error(d->db, rc, "open", error);
                else {
                        r = -ENOMEM;
                        g_set_error(error, NM_ERROR, NM_ERROR_INTERNAL, "Failed to open %s: out of memory",
                                    location);
                }
                sqlite_close(d);
                return r;
        }
        sqlite3_extended_result_codes(d->db, 1);
        d->statements = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, finalize_statement);

        /* A second netmakerd (or an admin's sqlite3 shell) may hold the lock for a moment. */
        sqlite3_busy_timeout(d->db, 5000);
        r = exec_script(d, "PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;",
                        error);
        if (r < 0) {
                g_prefix_error(error, "%s: ", location);
                sqlite_close(d);
                return r;
        }
        *ret = d;
        return 0;
}

static int step_script(SqliteDb *d, const char *sql, GError **error)
{
        return exec_script(d, sql, error);
}

static int sqlite_begin(void *p, GError **error)
{
        return step_script(p, "BEGIN IMMEDIATE", error);
}

static int sqlite_commit(void *p, GError **error)
{
        return step_script(p, "COMMIT", error);
}

static int sqlite_rollback(void *p)
{
        SqliteDb *d = p;
        if (sqlite3_get_autocommit(d->db))
                return 0; /* SQLite already rolled back (e.g. after SQLITE_FULL) */
        return step_script(p, "ROLLBACK", NULL);
}

static int sqlite_exec(void *p, const char *sql, const StoreValue *params, size_t n_params,
                       StoreResult **ret, GError **error)
{
        SqliteDb *d = p;
        sqlite3_stmt *stmt = g_hash_table_lookup(d->statements, sql);
        g_autoptr(StoreResult) res = NULL;
        int rc, r;

        if (!stmt) {
                rc = sqlite3_prepare_v2(d->db, sql, -1, &stmt, NULL);
                if (rc != SQLITE_OK)
                        return map_error(d->db, rc, "prepare", error);
                g_hash_table_insert(d->statements, g_strdup(sql), stmt);
        }

        for (size_t i = 0; i < n_params; i++) {
                char name[32];
                g_snprintf(name, sizeof(name), "$%zu", i + 1);
                int idx = sqlite3_bind_parameter_index(stmt, name);
                if (idx == 0)
                        continue; /* the statement does not use this one */
                switch (params[i].type) {
                case STORE_NULL:
                        rc = sqlite3_bind_null(stmt, idx);
                        break;
                case STORE_INT:
                        rc = sqlite3_bind_int64(stmt, idx, params[i].i);
                        break;
                case STORE_TEXT:
                        rc = sqlite3_bind_text(stmt, idx, params[i].s, -1, SQLITE_STATIC);
                        break;
                default:
                        g_assert_not_reached();
                }
                if (rc != SQLITE_OK) {
                        r = map_error(d->db, rc, "bind", error);
                        sqlite3_reset(stmt);
                        sqlite3_clear_bindings(stmt);
                        return r;
                }
        }

        res = store_result_new((guint)sqlite3_column_count(stmt));
        for (;;) {
                rc = sqlite3_step(stmt);
                if (rc == SQLITE_DONE)
                        break;
                if (rc != SQLITE_ROW) {
                        r = map_error(d->db, rc, "step", error);
                        sqlite3_reset(stmt);
                        sqlite3_clear_bindings(stmt);
                        return r;
                }
                store_result_add_row(res);
                for (guint c = 0; c < res->n_cols; c++) {
                        switch (sqlite3_column_type(stmt, (int)c)) {
                        case SQLITE_NULL:
                                store_result_set(res, c, STORE_NULL, 0, NULL);
                                break;
                        case SQLITE_INTEGER:
                                store_result_set(res, c, STORE_INT, sqlite3_column_int64(stmt, (int)c),
                                                 NULL);
                                break;
                        default:
                                store_result_set(res, c, STORE_TEXT, 0,
                                                 (const char *)sqlite3_column_text(stmt, (int)c));
                                break;
                        }
                }
        }
        res->changes = sqlite3_changes(d->db);
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);
        if (ret)
                *ret = TAKE_PTR(res);
        return 0;
}

const StoreBackend store_backend_sqlite = {
        .name = "sqlite",
        .open = sqlite_open,
        .close = sqlite_close,
        .begin = sqlite_begin,
        .commit = sqlite_commit,
        .rollback = sqlite_rollback,
        .exec = sqlite_exec,
        .exec_script = exec_script,
};
