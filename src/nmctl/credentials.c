/* nmctl's stored login and password prompts. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "credentials.h"
#include "tls.h"
#include "json-util.h"
#include "macro.h"

#define MAX_FILE     16384
#define MAX_PASSWORD 1024

void stored_login_clear(StoredLogin *l)
{
        g_free(l->server);
        nm_free_secret(l->token);
        g_free(l->username);
        g_free(l->role);
        memset(l, 0, sizeof(*l));
}

static char *config_dir(void)
{
        const char *x = g_getenv("XDG_CONFIG_HOME");
        if (x && g_path_is_absolute(x))
                return g_build_filename(x, "nmctl", NULL);
        return g_build_filename(g_get_home_dir(), ".config", "nmctl", NULL);
}

char *credentials_path(void)
{
        g_autofree char *dir = config_dir();
        return g_build_filename(dir, "token", NULL);
}

int credentials_load(StoredLogin *ret)
{
        g_autofree char *path = credentials_path();
        _cleanup_close_ int fd = -1;
        _cleanup_secret_ char *text = NULL;
        g_autoptr(JsonObject) o = NULL;
        const char *server = NULL, *token = NULL, *username = NULL, *role = NULL;
        gint64 expires_at = 0;
        struct stat st;
        ssize_t n;

        memset(ret, 0, sizeof(*ret));
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return errno == ENOENT ? -ENOENT : -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        /* Like ssh with its keys: a token others can read is not trusted to be only ours. */
        if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0)
                return -EPERM;
        if (st.st_size > MAX_FILE)
                return -EINVAL;
        text = g_malloc0(MAX_FILE + 1);
        n = read(fd, text, MAX_FILE);
        if (n < 0)
                return -errno;

        o = nm_json_parse_object(text, n, NULL);
        if (!o || !nm_json_get_string(o, "server", true, &server, NULL) ||
            !nm_json_get_string(o, "token", true, &token, NULL) ||
            !nm_json_get_string(o, "username", false, &username, NULL) ||
            !nm_json_get_string(o, "role", false, &role, NULL) ||
            !nm_json_get_int(o, "expires_at", false, 0, G_MAXINT64, &expires_at, NULL))
                return -EINVAL;
        ret->server = g_strdup(server);
        ret->token = g_strdup(token);
        ret->username = g_strdup(username);
        ret->role = g_strdup(role);
        ret->expires_at = expires_at;
        return 0;
}

static int mkdir_private(const char *dir)
{
        g_autofree char *parent = g_path_get_dirname(dir);

        /* The parent (~/.config) with the usual mode; ours 0700. */
        if (g_mkdir_with_parents(parent, 0755) < 0)
                return -errno;
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        if (chmod(dir, 0700) < 0)
                return -errno;
        return 0;
}

/* Writes `name` in nmctl's directory atomically, mode 0600. */
static int write_private(const char *name, const char *text)
{
        g_autofree char *dir = config_dir();
        g_autofree char *path = g_build_filename(dir, name, NULL);
        g_autofree char *tmp = NULL;
        _cleanup_close_ int fd = -1;
        size_t len = strlen(text), done = 0;
        int r;

        r = mkdir_private(dir);
        if (r < 0)
                return r;
        tmp = g_strdup_printf("%s.%08x", path, g_random_int());
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        while (done < len) {
                ssize_t n = write(fd, text + done, len - done);
                if (n < 0) {
                        r = -errno;
                        (void)unlink(tmp);
                        return r;
                }
                done += (size_t)n;
        }
        if (fsync(fd) < 0 || rename(tmp, path) < 0) {
                r = -errno;
                (void)unlink(tmp);
                return r;
        }
        return 0;
}

int credentials_save(const StoredLogin *l)
{
        g_autoptr(JsonBuilder) b = json_builder_new();
        _cleanup_secret_ char *text = NULL;

        json_builder_begin_object(b);
        nm_json_add_string(b, "server", l->server);
        nm_json_add_string(b, "token", l->token);
        nm_json_add_string(b, "username", l->username);
        nm_json_add_string(b, "role", l->role);
        nm_json_add_int(b, "expires_at", l->expires_at);
        json_builder_end_object(b);
        text = nm_json_builder_to_string(b);
        return write_private("token", text);
}

/* ---- known servers ---------------------------------------------------------------------------- */

char *known_servers_path(void)
{
        g_autofree char *dir = config_dir();
        return g_build_filename(dir, "known-servers", NULL);
}

/* The file's lines "URL PIN"; NULL when there is none. Comments (#) and blank lines are kept. */
static char **known_servers_lines(void)
{
        g_autofree char *path = known_servers_path();
        g_autofree char *text = NULL;
        gsize len;

        if (!g_file_get_contents(path, &text, &len, NULL) || len > 1024 * 1024)
                return NULL;
        return g_strsplit(text, "\n", -1);
}

int known_server_get(const char *server, NmTlsPin *ret)
{
        g_auto(GStrv) lines = known_servers_lines();

        for (char **l = lines; l && *l; l++) {
                g_auto(GStrv) f = g_strsplit_set(g_strstrip(*l), " \t", 2);
                if (f[0] && f[1] && streq0(f[0], server))
                        return nm_tls_pin_parse(g_strstrip(f[1]), ret) ? 0 : -EINVAL;
        }
        return -ENOENT;
}

int known_server_set(const char *server, const NmTlsPin *pin)
{
        g_auto(GStrv) lines = known_servers_lines();
        g_autoptr(GString) out = g_string_new(NULL);
        g_autofree char *text = nm_tls_pin_format(pin);

        if (!lines)
                g_string_append(out,
                                "# Servers nmctl trusts by the key of their TLS certificate (as ssh's "
                                "known_hosts):\n"
                                "# URL PIN. Written by \"nmctl login\"; remove a line to be asked again.\n");
        for (char **l = lines; l && *l; l++) {
                g_autofree char *copy = g_strdup(*l);
                g_auto(GStrv) f = g_strsplit_set(g_strstrip(copy), " \t", 2);
                if (f[0] && streq0(f[0], server))
                        continue;
                if (!**l && !l[1])
                        break; /* the end of the last line */
                g_string_append_printf(out, "%s\n", *l);
        }
        g_string_append_printf(out, "%s %s\n", server, text);
        return write_private("known-servers", out->str);
}

int credentials_remove(void)
{
        g_autofree char *path = credentials_path();
        if (unlink(path) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

/* One line without its newline; NULL at end of file or when too long. */
static char *read_one_line(FILE *f)
{
        _cleanup_secret_ char *buf = g_malloc0(MAX_PASSWORD + 2);
        size_t n;

        if (!fgets(buf, MAX_PASSWORD + 2, f))
                return NULL;
        n = strlen(buf);
        if (n > 0 && buf[n - 1] == '\n')
                buf[--n] = 0;
        else if (n > MAX_PASSWORD)
                return NULL;
        if (n > 0 && buf[n - 1] == '\r')
                buf[--n] = 0;
        return TAKE_PTR(buf);
}

static char *ask_tty(FILE *tty, const char *prompt)
{
        struct termios old, quiet;
        bool restore = false;
        char *line;

        /* Echo off before the prompt shows, and without flushing: what is typed (or pasted)
         * right after the prompt must not be lost. */
        if (tcgetattr(fileno(tty), &old) == 0) {
                quiet = old;
                quiet.c_lflag &= ~(tcflag_t)ECHO;
                quiet.c_lflag |= ECHONL;
                restore = tcsetattr(fileno(tty), TCSANOW, &quiet) == 0;
        }
        fputs(prompt, tty);
        fflush(tty);
        line = read_one_line(tty);
        if (restore)
                (void)tcsetattr(fileno(tty), TCSANOW, &old);
        return line;
}

char *read_password(const char *prompt, bool from_stdin, bool confirm)
{
        _cleanup_secret_ char *first = NULL;
        _cleanup_secret_ char *second = NULL;
        FILE *tty;

        if (from_stdin) {
                first = read_one_line(stdin);
                if (!first || !*first) {
                        fprintf(stderr,
                                "nmctl: no password on standard input (one line, at most %d characters).\n",
                                MAX_PASSWORD);
                        return NULL;
                }
                return TAKE_PTR(first);
        }

        tty = fopen("/dev/tty", "r+e");
        if (!tty) {
                fprintf(stderr, "nmctl: no terminal to ask for the password on; use --password-stdin.\n");
                return NULL;
        }
        first = ask_tty(tty, prompt);
        if (first && *first && confirm) {
                second = ask_tty(tty, "Again: ");
                if (!second || !streq0(first, second)) {
                        fclose(tty);
                        fprintf(stderr, "nmctl: the passwords differ.\n");
                        return NULL;
                }
        }
        fclose(tty);
        if (!first || !*first) {
                fprintf(stderr, "nmctl: no password given.\n");
                return NULL;
        }
        return TAKE_PTR(first);
}

char *read_line_tty(const char *prompt)
{
        FILE *tty = fopen("/dev/tty", "r+e");
        char *line;

        if (!tty)
                return NULL;
        fputs(prompt, tty);
        fflush(tty);
        line = read_one_line(tty);
        fclose(tty);
        return line;
}
