/* nmctl's stored login (a user token in $XDG_CONFIG_HOME/nmctl/token, 0600 in a 0700 directory)
 * and reading passwords without echo. */
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "tls.h"

typedef struct StoredLogin {
        char *server;
        char *token; /* secret */
        char *username;
        char *role;
        gint64 expires_at;
} StoredLogin;

void stored_login_clear(StoredLogin *l);

/* "$XDG_CONFIG_HOME/nmctl/token", or "~/.config/nmctl/token". */
char *credentials_path(void);
/* 0, -ENOENT when there is none, -EPERM when the file is readable by others or not ours (then it
 * is not used), -EINVAL when it is not one of ours. */
int credentials_load(StoredLogin *ret);
/* Writes atomically with mode 0600, creating the directory with 0700. */
int credentials_save(const StoredLogin *l);
/* 0, also when there was nothing to remove. */
int credentials_remove(void);

/* Servers trusted by their key ("$XDG_CONFIG_HOME/nmctl/known-servers", lines "URL PIN"), as
 * ssh's known_hosts: remembered at the first login, checked at every call. get: 0, -ENOENT, or
 * -EINVAL for an unreadable pin. */
char *known_servers_path(void);
int known_server_get(const char *server, NmTlsPin *ret);
int known_server_set(const char *server, const NmTlsPin *pin);

/* A password: one line from stdin (--password-stdin), else asked on /dev/tty without echo
 * (twice when `confirm`). NULL with a message on stderr when there is no way to ask, the two
 * differ, or it is empty. Free with nm_free_secret(). */
char *read_password(const char *prompt, bool from_stdin, bool confirm);
/* A line from the terminal (with echo), for a user name; NULL when there is no terminal. */
char *read_line_tty(const char *prompt);
