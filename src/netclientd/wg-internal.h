/* Helpers shared by the WireGuard backends (not part of the interface the daemon uses). */
#pragma once

#include <glib.h>

#include "macro.h"

/* Sets `error` (when not NULL) with a message and an NM_ERROR code chosen from the errno, and
 * returns r (a negative errno) so callers can `return wg_error(error, r, "…");`. */
int wg_error(GError **error, int r, const char *fmt, ...) _printf_(3, 4);

/* Hash and equality for NmKey pointers (public keys are random: a few bytes make a good hash). */
guint wg_key_hash(gconstpointer k);
gboolean wg_key_equal(gconstpointer a, gconstpointer b);
