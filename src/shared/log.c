/* Logging to stderr, with syslog priority prefixes when stderr is the journal. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"

static int max_level = LOG_INFO;
static int to_journal = -1;

void log_set_max_level(int level)
{
        max_level = level;
}

int log_get_max_level(void)
{
        return max_level;
}

int log_level_from_string(const char *s)
{
        static const char *const names[] = {"emerg",   "alert",  "crit", "err",
                                            "warning", "notice", "info", "debug"};
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (g_ascii_strcasecmp(s, names[i]) == 0)
                        return (int)i;
        if (g_ascii_strcasecmp(s, "error") == 0)
                return LOG_ERR;
        if (g_ascii_strcasecmp(s, "warn") == 0)
                return LOG_WARNING;
        if (s[0] >= '0' && s[0] <= '7' && s[1] == 0)
                return s[0] - '0';
        return -EINVAL;
}

/* stderr is the journal when $JOURNAL_STREAM names the device and inode of fd 2. */
static int stderr_is_journal(void)
{
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return 0;
        if (fstat(STDERR_FILENO, &st) < 0)
                return 0;
        return st.st_dev == dev && st.st_ino == ino;
}

int log_internal(int level, int error, const char *file, int line, const char *func, const char *fmt, ...)
{
        int saved = errno;
        va_list ap;

        if (error < 0)
                error = -error;
        if (level > max_level)
                return -error;
        if (to_journal < 0)
                to_journal = stderr_is_journal();

        char buf[2048];
        errno = error;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);

        if (to_journal)
                fprintf(stderr, "<%d>%s\n", level, buf);
        else if (max_level >= LOG_DEBUG)
                fprintf(stderr, "%s:%d %s: %s\n", file, line, func, buf);
        else
                fprintf(stderr, "%s\n", buf);
        errno = saved;
        return -error;
}

void nm_free_secret(char *s)
{
        if (!s)
                return;
        explicit_bzero(s, strlen(s));
        g_free(s);
}
