/* Linked into every fuzz target: GLib's warnings, criticals and errors abort, so that libFuzzer
 * keeps the input. They mean a bug (a GError set twice, a g_return_if_fail() that failed), which
 * would otherwise scroll past as a line on stderr. abort() rather than GLib's own fatal handling,
 * which traps (SIGTRAP) where libFuzzer only catches SIGABRT and SIGSEGV. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

static const char *field(const GLogField *fields, gsize n, const char *key)
{
        for (gsize i = 0; i < n; i++)
                if (strcmp(fields[i].key, key) == 0 && fields[i].length < 0)
                        return fields[i].value;
        return "";
}

/* GLib's own bug, not ours: GLib 2.74's g_key_file_get_string() sets its GError twice for a
 * value with a bad escape and a backslash at its end ("a\q\"); the caller gets an error and
 * refuses the value (tests/fuzz/corpus/netmakerd-config/bad-escape-then-backslash). */
static bool known(const GLogField *fields, gsize n)
{
        const char *domain = field(fields, n, "GLIB_DOMAIN"), *message = field(fields, n, "MESSAGE");
        return strcmp(domain, "GLib") == 0 && strstr(message, "GError set over the top") &&
               strstr(message, "escape character at end of line");
}

static GLogWriterOutput fatal_writer(GLogLevelFlags level, const GLogField *fields, gsize n, gpointer data)
{
        GLogWriterOutput r = g_log_writer_default(level, fields, n, data);
        if ((level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING)) && !known(fields, n))
                abort();
        return r;
}

__attribute__((constructor)) static void fuzz_glib_fatal(void)
{
        g_log_set_writer_func(fatal_writer, NULL, NULL);
}
