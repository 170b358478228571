/* QR codes of external clients' configurations (libqrencode), as SVG written by hand and as PNG
 * (libpng), both with the standard quiet zone of 4 modules. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <glib.h>

#define QR_QUIET_ZONE 4

/* The modules of the QR code of `text` (8-bit mode, error correction M): *ret_width rows of
 * *ret_width bytes, 1 for dark. -EINVAL for an empty text, -E2BIG for one too long for any QR
 * code, -ENOMEM. */
int qr_modules(const char *text, guint8 **ret, guint *ret_width);

/* One <path> of unit squares on integer coordinates (runs of dark modules per row, offset by the
 * quiet zone) over a white square, scaled by `scale` pixels per module. */
int qr_svg(const char *text, guint scale, char **ret);
/* A 1-bit greyscale PNG, `scale` pixels per module. */
int qr_png(const char *text, guint scale, guint8 **ret, size_t *ret_len);
