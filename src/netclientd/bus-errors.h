/* The D-Bus error names of org.netmaker.Client (one per API error code of nm-error.h, plus the
 * daemon's own), and helpers that turn a GError into a D-Bus error so every method fails the
 * same way. */
#pragma once

#include <stdarg.h>
#include <glib.h>
#include <systemd/sd-bus.h>

#include "macro.h"

#define BUS_ERROR_PREFIX           "org.netmaker.Client.Error."
#define BUS_ERROR_FAILED           BUS_ERROR_PREFIX "Failed"
#define BUS_ERROR_INVALID_ARGUMENT BUS_ERROR_PREFIX "InvalidArgument"
#define BUS_ERROR_UNAUTHENTICATED  BUS_ERROR_PREFIX "Unauthenticated"
#define BUS_ERROR_ACCESS_DENIED    BUS_ERROR_PREFIX "AccessDenied"
#define BUS_ERROR_NOT_FOUND        BUS_ERROR_PREFIX "NotFound"
#define BUS_ERROR_NOT_SUPPORTED    BUS_ERROR_PREFIX "NotSupported"
#define BUS_ERROR_CONFLICT         BUS_ERROR_PREFIX "Conflict"
#define BUS_ERROR_KEY_EXHAUSTED    BUS_ERROR_PREFIX "KeyExhausted"
#define BUS_ERROR_UNAVAILABLE      BUS_ERROR_PREFIX "Unavailable"
#define BUS_ERROR_EXHAUSTED        BUS_ERROR_PREFIX "Exhausted"
/* The daemon's own: */
#define BUS_ERROR_NOT_REGISTERED BUS_ERROR_PREFIX "NotRegistered"
#define BUS_ERROR_BUSY           BUS_ERROR_PREFIX "Busy"
#define BUS_ERROR_CANCELLED      BUS_ERROR_PREFIX "Cancelled"

/* Maps errnos to our names for handlers that return a bare negative errno. */
extern const sd_bus_error_map bus_error_map[];

/* The D-Bus name for an NM_ERROR code. */
const char *bus_error_name_for_code(int code);
/* Sets `e` from a GError (NM_ERROR domain maps by code; anything else is Failed) and returns a
 * negative errno that matches it. */
int bus_error_set_gerror(sd_bus_error *e, const GError *error);
/* Sets `e` to the name of an NM_ERROR code with a formatted message; returns a negative errno. */
int bus_error_setf_code(sd_bus_error *e, int code, const char *fmt, ...) _printf_(3, 4);
