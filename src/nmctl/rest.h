/* nmctl's REST calls (libcurl): one request, the server's error body turned into a message, and
 * the outcome as an nmctl exit code. */
#pragma once

#include <json-glib/json-glib.h>

#include "nmctl.h"

/* METHOD /api/v1<path> with an optional JSON body. Returns NMCTL_EXIT_OK with the parsed answer in
 * *ret (NULL for an empty one) and the raw text in *ret_raw (either may be NULL); otherwise prints
 * why on stderr (the server's own message when it refused) and returns NMCTL_EXIT_REFUSED or
 * NMCTL_EXIT_UNREACHABLE. `body` may hold a password: it is never printed. */
int rest_call(Ctx *c, const char *method, const char *path, const char *body, JsonNode **ret,
              char **ret_raw);

/* For a first login: whether a CA vouches for the server (*ret_ca_trusted), else the pin of the
 * key it presents (a handshake that trusts anything and sends nothing). NMCTL_EXIT_UNREACHABLE
 * (after printing why) when there is no TLS server to ask. */
int rest_probe_key(Ctx *c, NmTlsPin *ret, bool *ret_ca_trusted);

/* rest_call(), then with --json prints the raw answer; returns the exit code. For commands whose
 * human output is made by the caller from *ret when !c->json. */
int rest_call_show(Ctx *c, const char *method, const char *path, const char *body, JsonNode **ret);
