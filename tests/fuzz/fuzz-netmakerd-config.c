/* libFuzzer target for netmakerd's configuration (src/netmakerd/config.c): any bytes as the key
 * file and NETMAKERD_* variables are refused with a message or give a configuration that keeps the
 * rules config.h states. The input is the file, then optionally a line "@@env" and the environment,
 * one VAR=value a line. The file is handed over as /proc/self/fd/N of a memfd, as a path. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

/* netmakerd's, not the build's config.h that the include path finds first. */
#include "../../src/netmakerd/config.h"
#include "log.h"
#include "macro.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        log_set_max_level(LOG_CRIT);
        /* config_new_defaults() reads it: keep it out of the result. */
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
        g_autoptr(Config) c = NULL;
        g_auto(GStrv) envp = NULL;
        char path[64];

        if (fd < 0 && (fd = memfd_create("netmakerd.conf", MFD_CLOEXEC)) < 0)
                abort();
        if (ftruncate(fd, 0) < 0 || pwrite(fd, data, file_len, 0) != (ssize_t)file_len)
                abort();
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        if (sep) {
                g_autofree char *env = g_strndup(sep + 7, size - file_len - 7);
                envp = g_strsplit(env, "\n", 64);
        } else
                envp = g_new0(char *, 1);

        if (config_load(path, envp, &c, &e) < 0) {
                g_assert(e && e->message && *e->message && !c);
                return 0;
        }
        g_assert(c->listen && (c->listen_family == AF_INET || c->listen_family == AF_INET6));
        g_assert(c->database && c->state_directory && c->server_name && c->dns_domain);
        g_assert(!c->tls_certificate == !c->tls_key);
        g_assert(!(c->broker_certificate && c->broker_ca_file));
        g_assert(!c->admin_password || c->admin_user);
        g_assert(c->default_mtu >= 1280 && c->default_mtu <= 9000 && c->default_listen_port >= 1);
        g_autofree char *scheme = NULL, *location = NULL;
        g_assert(config_parse_database(c->database, &scheme, &location, NULL) == 0);
        return 0;
}
