/* QR codes: libqrencode for the modules, an SVG path by hand, PNG with libpng into memory. */
#include <errno.h>
#include <png.h>
#include <qrencode.h>
#include <stdbool.h>
#include <string.h>

#include "macro.h"
#include "qr.h"

int qr_modules(const char *text, guint8 **ret, guint *ret_width)
{
        if (!text || !*text)
                return -EINVAL;
        errno = 0;
        QRcode *q = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
        if (!q)
                return errno == ERANGE ? -E2BIG : -(errno ?: ENOMEM);
        guint w = (guint)q->width;
        guint8 *m = g_new(guint8, (gsize)w * w);
        for (gsize i = 0; i < (gsize)w * w; i++)
                m[i] = q->data[i] & 1;
        QRcode_free(q);
        *ret = m;
        *ret_width = w;
        return 0;
}

int qr_svg(const char *text, guint scale, char **ret)
{
        g_autofree guint8 *m = NULL;
        guint w;
        int r = qr_modules(text, &m, &w);
        if (r < 0)
                return r;
        guint size = w + 2 * QR_QUIET_ZONE;
        GString *s = g_string_sized_new(16 * w * w / 4 + 256);
        g_string_append_printf(
                s,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" viewBox=\"0 0 %u %u\" "
                "width=\"%u\" height=\"%u\" shape-rendering=\"crispEdges\">"
                "<rect width=\"%u\" height=\"%u\" fill=\"#ffffff\"/><path fill=\"#000000\" d=\"",
                size, size, size * scale, size * scale, size, size);
        for (guint y = 0; y < w; y++)
                for (guint x = 0; x < w;) {
                        if (!m[y * w + x]) {
                                x++;
                                continue;
                        }
                        guint run = 0;
                        while (x + run < w && m[y * w + x + run])
                                run++;
                        g_string_append_printf(s, "M%u %uh%uv1h-%uz", x + QR_QUIET_ZONE, y + QR_QUIET_ZONE,
                                               run, run);
                        x += run;
                }
        g_string_append(s, "\"/></svg>\n");
        *ret = g_string_free(s, false);
        return 0;
}

static void png_write_bytes(png_structp png, png_bytep data, png_size_t len)
{
        g_byte_array_append(png_get_io_ptr(png), data, (guint)len);
}

static void png_flush_nothing(png_structp png)
{
}

/* Everything libpng's longjmp may skip is allocated by the caller. */
static int png_encode(png_structp png, png_infop info, guint side, guint8 *const *rows)
{
        if (setjmp(png_jmpbuf(png)))
                return -EIO;
        png_set_IHDR(png, info, side, side, 1, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
        png_write_info(png, info);
        png_write_image(png, (png_bytepp)rows);
        png_write_end(png, NULL);
        return 0;
}

int qr_png(const char *text, guint scale, guint8 **ret, size_t *ret_len)
{
        g_autofree guint8 *m = NULL;
        guint w;
        int r;

        if (scale == 0 || scale > 64)
                return -EINVAL;
        r = qr_modules(text, &m, &w);
        if (r < 0)
                return r;
        guint side = (w + 2 * QR_QUIET_ZONE) * scale;
        gsize stride = (side + 7) / 8;
        g_autofree guint8 *pixels = g_malloc((gsize)side * stride);
        g_autofree guint8 **rows = g_new(guint8 *, side);
        memset(pixels, 0xff, (gsize)side * stride); /* 1 is white in greyscale */
        for (guint y = 0; y < side; y++) {
                rows[y] = pixels + (gsize)y * stride;
                guint my = y / scale;
                if (my < QR_QUIET_ZONE || my >= w + QR_QUIET_ZONE)
                        continue;
                for (guint x = 0; x < side; x++) {
                        guint mx = x / scale;
                        if (mx < QR_QUIET_ZONE || mx >= w + QR_QUIET_ZONE)
                                continue;
                        if (m[(my - QR_QUIET_ZONE) * w + (mx - QR_QUIET_ZONE)])
                                rows[y][x / 8] &= (guint8) ~(0x80u >> (x % 8));
                }
        }

        g_autoptr(GByteArray) out = g_byte_array_new();
        png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
        if (!png)
                return -ENOMEM;
        png_infop info = png_create_info_struct(png);
        if (!info) {
                png_destroy_write_struct(&png, NULL);
                return -ENOMEM;
        }
        png_set_write_fn(png, out, png_write_bytes, png_flush_nothing);
        r = png_encode(png, info, side, rows);
        png_destroy_write_struct(&png, &info);
        if (r < 0)
                return r;
        *ret_len = out->len;
        *ret = g_byte_array_steal(out, NULL);
        return 0;
}
