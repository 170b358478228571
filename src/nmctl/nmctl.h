/* What the parts of nmctl (the admin CLI over the REST API) share: the invocation context, the
 * exit codes, and the entry point of each command group. */
#pragma once

#include <getopt.h>
#include <stdbool.h>
#include <json-glib/json-glib.h>

#include "tls.h"

#define NMCTL_DEFAULT_SERVER "https://127.0.0.1:8081"

/* Exit codes (docs/nmctl.md). */
enum {
        NMCTL_EXIT_OK = 0,
        NMCTL_EXIT_REFUSED = 1,     /* the server said no (or answered nonsense) */
        NMCTL_EXIT_USAGE = 2,       /* bad command line or local input */
        NMCTL_EXIT_UNREACHABLE = 3, /* no answer from the server */
};

typedef enum AuthSource {
        AUTH_NONE,
        AUTH_MASTER_KEY_OPTION,
        AUTH_MASTER_KEY_ENV,
        AUTH_TOKEN_ENV,
        AUTH_TOKEN_FILE,
} AuthSource;

typedef struct Ctx {
        char *server;         /* base URL without the trailing slash */
        bool server_explicit; /* from --server or $NMCTL_SERVER */
        char *master_key_arg; /* --master-key */
        char *credential;     /* what goes after "Bearer " */
        AuthSource auth_source;
        bool json;
        const char *program;
        char *pin_arg;    /* --pin or $NMCTL_PIN */
        char *ca_file;    /* --ca-file or $NMCTL_CA_FILE */
        bool insecure;    /* --insecure or $NMCTL_INSECURE=1: plain http:// off loopback */
        NmTlsTrust trust; /* how the server is verified: a pin (given or known), else a CA */
        bool pin_known;   /* the pin came from known-servers */
} Ctx;

/* Options every command accepts, also after the command name. */
enum {
        OPT_SERVER = 0x100,
        OPT_MASTER_KEY,
        OPT_JSON,
        OPT_HELP,
        OPT_PIN,
        OPT_CA_FILE,
        OPT_INSECURE,
        OPT_FIRST_COMMAND_OPTION, /* commands number their own options from here */
};

#define NMCTL_GLOBAL_OPTIONS                                                                                \
        {"server", required_argument, NULL, OPT_SERVER},                                                    \
                {"master-key", required_argument, NULL, OPT_MASTER_KEY},                                    \
                {"json", no_argument, NULL, OPT_JSON}, {"pin", required_argument, NULL, OPT_PIN},           \
                {"ca-file", required_argument, NULL, OPT_CA_FILE},                                          \
                {"insecure", no_argument, NULL, OPT_INSECURE},                                              \
        {                                                                                                   \
                "help", no_argument, NULL, 'h'                                                              \
        }

/* Handles a global option found while a command parses its own; returns true if it was one. */
bool ctx_handle_global_option(Ctx *c, int opt, const char *arg);
/* Settles server and credential after all options are read (env vars, the stored login). */
int ctx_finish(Ctx *c);
void ctx_clear(Ctx *c);

/* Prints "nmctl: <message>" to stderr and returns NMCTL_EXIT_USAGE. */
int usage_error(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

/* Command groups: argv[0] is the group name ("network"), argv[1] the verb. */
int cmd_login(Ctx *c, int argc, char *argv[]);
int cmd_logout(Ctx *c, int argc, char *argv[]);
int cmd_health(Ctx *c, int argc, char *argv[]);
int cmd_network(Ctx *c, int argc, char *argv[]);
int cmd_key(Ctx *c, int argc, char *argv[]);
int cmd_host(Ctx *c, int argc, char *argv[]);
int cmd_node(Ctx *c, int argc, char *argv[]);
int cmd_user(Ctx *c, int argc, char *argv[]);
int cmd_dns(Ctx *c, int argc, char *argv[]);
int cmd_nameserver(Ctx *c, int argc, char *argv[]);
/* cmd-topology.c: ACLs, external clients, and the node verbs for tags and roles. */
int cmd_acl(Ctx *c, int argc, char *argv[]);
int cmd_extclient(Ctx *c, int argc, char *argv[]);
int node_tags(Ctx *c, int argc, char *argv[]);
int node_egress(Ctx *c, int argc, char *argv[]);
int node_internet_gateway(Ctx *c, int argc, char *argv[]);
int node_use_internet_gateway(Ctx *c, int argc, char *argv[]);
int node_ingress(Ctx *c, int argc, char *argv[]);
int node_relay(Ctx *c, int argc, char *argv[]);
int node_failover(Ctx *c, int argc, char *argv[]);
/* A node's roles in words ("egress 192.168.50.0/24 (NAT); relay"), NULL for none. */
char *node_roles_text(JsonObject *o);
/* cmd-hosts.c: a node as "Key: value" lines. */
void print_node(JsonObject *o);

/* Parses the options of one verb: `longopts` must start with NMCTL_GLOBAL_OPTIONS. Calls
 * `handle` for the verb's own options (return <0 on a bad value, after printing why). Prints
 * `help` for --help and returns -1 with *ret_exit set (0 for help, 2 for errors); 0 when the
 * caller should go on with argv[optind...]. */
typedef int (*option_handler_t)(int opt, const char *arg, void *userdata);
int parse_verb_options(Ctx *c, int argc, char *argv[], const struct option *longopts, const char *help,
                       option_handler_t handle, void *userdata, int *ret_exit);

/* A command group's verbs: `nmctl GROUP VERB ...`. */
typedef struct Verb {
        const char *name;
        int (*run)(Ctx *c, int argc, char *argv[]); /* argv[0] is the verb */
        const char *synopsis;                       /* "create NAME [OPTIONS]" */
        const char *summary;
} Verb;
/* Runs the verb named by argv[1] (argv[0] is the group), or prints the group's help. */
int dispatch_verbs(Ctx *c, int argc, char *argv[], const Verb *verbs, const char *description);

/* Small helpers for the commands. */
char *path_escape(const char *component); /* one URL path component */
bool parse_uint_option(const char *name, const char *value, guint64 min, guint64 max, guint64 *ret);
