/* Proves the QR code renderings: the SVG is one path of unit runs on integer coordinates inside a
 * quiet zone of 4 modules that draws exactly the modules libqrencode made, and the PNG, decoded
 * again with libpng, shows the same modules at the requested scale. */
#include <errno.h>
#include <png.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "qr.h"

#define TEXT                                                                                                \
        "[Interface]\nPrivateKey = cHJpdmF0ZS1rZXktb2YtdGhlLWNsaWVudC0wMDAwMDA=\nAddress = "                \
        "10.99.0.254/32\n"

static void test_svg(void)
{
        g_autofree guint8 *m = NULL;
        g_autofree char *svg = NULL;
        guint w;

        g_assert_cmpint(qr_modules(TEXT, &m, &w), ==, 0);
        g_assert_cmpuint(w, >=, 21);
        g_assert_cmpint(qr_svg(TEXT, 8, &svg), ==, 0);
        guint size = w + 2 * QR_QUIET_ZONE;
        g_autofree char *viewbox = g_strdup_printf("viewBox=\"0 0 %u %u\"", size, size);
        g_assert_nonnull(strstr(svg, viewbox));
        g_assert_true(g_str_has_prefix(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\""));

        /* Exactly one path; draw it back. */
        const char *d = strstr(svg, " d=\"");
        g_assert_nonnull(d);
        g_assert_null(strstr(d + 1, "<path"));
        d += 4;
        g_autofree guint8 *drawn = g_new0(guint8, (gsize)w * w);
        while (*d != '"') {
                unsigned x, y, run, back;
                int used = 0;
                g_assert_cmpint(sscanf(d, "M%u %uh%uv1h-%uz%n", &x, &y, &run, &back, &used), ==, 4);
                g_assert_cmpuint(run, ==, back);
                g_assert_cmpuint(x, >=, QR_QUIET_ZONE);
                g_assert_cmpuint(y, >=, QR_QUIET_ZONE);
                g_assert_cmpuint(x + run, <=, w + QR_QUIET_ZONE);
                g_assert_cmpuint(y, <, w + QR_QUIET_ZONE);
                for (unsigned i = 0; i < run; i++)
                        drawn[(y - QR_QUIET_ZONE) * w + x - QR_QUIET_ZONE + i] = 1;
                d += used;
        }
        g_assert_cmpmem(drawn, (gsize)w * w, m, (gsize)w * w);

        g_autofree char *none = NULL;
        g_assert_cmpint(qr_svg("", 8, &none), ==, -EINVAL);
}

typedef struct Reader {
        const guint8 *data;
        size_t len, pos;
} Reader;

static void read_bytes(png_structp png, png_bytep out, png_size_t n)
{
        Reader *r = png_get_io_ptr(png);
        g_assert_cmpuint(r->pos + n, <=, r->len);
        memcpy(out, r->data + r->pos, n);
        r->pos += n;
}

static void test_png(void)
{
        const guint scale = 3;
        g_autofree guint8 *m = NULL, *png = NULL;
        size_t len;
        guint w;

        g_assert_cmpint(qr_modules(TEXT, &m, &w), ==, 0);
        g_assert_cmpint(qr_png(TEXT, scale, &png, &len), ==, 0);
        g_assert_cmpmem(png, 8, "\x89PNG\r\n\x1a\n", 8);

        Reader r = {.data = png, .len = len};
        png_structp p = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
        png_infop info = png_create_info_struct(p);
        png_set_read_fn(p, &r, read_bytes);
        png_read_info(p, info);
        guint side = png_get_image_width(p, info);
        g_assert_cmpuint(side, ==, (w + 2 * QR_QUIET_ZONE) * scale);
        g_assert_cmpuint(png_get_image_height(p, info), ==, side);
        g_assert_cmpuint(png_get_bit_depth(p, info), ==, 1);
        png_set_packing(p); /* one byte per pixel: 0 black, 1 white */
        png_read_update_info(p, info);
        g_autofree guint8 *pixels = g_malloc((gsize)side * side);
        g_autofree png_bytep *rows = g_new(png_bytep, side);
        for (guint y = 0; y < side; y++)
                rows[y] = pixels + (gsize)y * side;
        png_read_image(p, rows);
        png_destroy_read_struct(&p, &info, NULL);

        for (guint y = 0; y < side; y++)
                for (guint x = 0; x < side; x++) {
                        guint mx = x / scale, my = y / scale;
                        bool dark = mx >= QR_QUIET_ZONE && my >= QR_QUIET_ZONE && mx < w + QR_QUIET_ZONE &&
                                    my < w + QR_QUIET_ZONE &&
                                    m[(my - QR_QUIET_ZONE) * w + mx - QR_QUIET_ZONE];
                        g_assert_cmpint(pixels[(gsize)y * side + x] == 0, ==, dark);
                }
}

static void test_too_long(void)
{
        g_autofree char *huge = g_strnfill(8000, 'x');
        g_autofree guint8 *m = NULL;
        guint w;
        g_assert_cmpint(qr_modules(huge, &m, &w), <, 0);
}

int main(int argc, char *argv[])
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/qr/svg", test_svg);
        g_test_add_func("/qr/png", test_png);
        g_test_add_func("/qr/too-long", test_too_long);
        return g_test_run();
}
