/* libFuzzer target for netclientd's configuration (src/netclientd/daemon-config.c): any bytes as
 * /etc/netclient/netclientd.conf and NETCLIENTD_* variables are refused with a message or give a
 * configuration within its limits. The input is the file, then optionally a line "@@env" and the
 * environment, one VAR=value a line; the file is /proc/self/fd/N of a memfd. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "daemon-config.h"
#include "log.h"
#include "macro.h"
#include "stun.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        log_set_max_level(LOG_CRIT);
        unsetenv("STATE_DIRECTORY");
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static int fd = -1;
        const char *sep = memmem(data, size, "\n@@env\n", 7);
        size_t file_len = sep ? (size_t)(sep - (const char *)data) : size;
        g_autoptr(GError) e = NULL;
        g_autoptr(Config) c = config_new();
        g_auto(GStrv) envp = NULL;
        int r;

        if (fd < 0 && (fd = memfd_create("netclientd.conf", MFD_CLOEXEC)) < 0)
                abort();
        if (ftruncate(fd, 0) < 0 || pwrite(fd, data, file_len, 0) != (ssize_t)file_len)
                abort();
        g_free(c->config_file);
        c->config_file = g_strdup_printf("/proc/self/fd/%d", fd);
        if (sep) {
                g_autofree char *env = g_strndup(sep + 7, size - file_len - 7);
                envp = g_strsplit(env, "\n", 64);
        } else
                envp = g_new0(char *, 1);

        r = config_load_file(c, &e);
        if (r >= 0)
                r = config_load_env(c, envp, &e);
        if (r < 0) {
                g_assert(e && e->message && *e->message);
                return 0;
        }
        g_assert(c->state_dir && g_path_is_absolute(c->state_dir));
        g_assert(c->checkin_usec > 0 && c->stats_usec > 0 && c->http_timeout_usec > 0);
        for (char **s = c->stun_servers; s && *s; s++) {
                g_autofree char *host = NULL;
                uint16_t port = 0;
                g_assert(stun_server_parse(*s, &host, &port, NULL) == 0);
        }
        return 0;
}
