/* libFuzzer target for the dynamic-security answers netmakerd reads from the broker
 * (src/netmakerd/dynsec.c): any bytes must neither crash nor complete a request twice, nor crash
 * the reading of a host-account listing. "@P" in the input stands for the registry's random
 * correlation prefix, so the fuzzer can reach matching ("@P.4.0" answers the listClients). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dynsec.h"
#include "macro.h"

#define N_REQUESTS 4

static unsigned calls[N_REQUESTS];

static void done(int r, const char *message, DynsecBatch *b, void *userdata)
{
        unsigned *n = userdata;
        (*n)++;
        if (*n > 1)
                abort(); /* completed twice */
}

static void listed(int r, const char *message, DynsecBatch *b, void *userdata)
{
        g_autoptr(GHashTable) accounts = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                                               (GDestroyNotify)dynsec_host_account_free);

        done(r, message, b, userdata);
        /* Whatever was answered, answered or not: pages of 2, so "more" is reachable. */
        (void)dynsec_host_accounts_add(b, "s", 0, 2, accounts);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static sd_event *e;
        Dynsec *d = NULL;
        char *payload = NULL;
        g_autoptr(GString) in = g_string_sized_new(size + 64);

        if (!e && sd_event_new(&e) < 0)
                abort();
        if (dynsec_new(e, 0, &d) < 0)
                abort();
        memset(calls, 0, sizeof(calls));
        /* Requests 1 to 4 wait for answers. */
        for (int i = 0; i < N_REQUESTS; i++) {
                DynsecBatch *b = i == 0 ? dynsec_batch_host_account_create(
                                                  "s", "0b8e8f5c-7f43-4a55-9f55-2a1d3c4b5a69", "pw")
                                 : i == 1 ? dynsec_batch_host_account_delete(
                                                    "s", "0b8e8f5c-7f43-4a55-9f55-2a1d3c4b5a69")
                                 : i == 2 ? dynsec_batch_server_setup("s", "admin")
                                          : dynsec_batch_host_accounts_list(0, 2);
                if (dynsec_submit(d, b, i == 3 ? listed : done, &calls[i], &payload, NULL) < 0)
                        abort();
                nm_free_secret(payload);
        }
        for (size_t i = 0; i < size; i++) {
                if (i + 1 < size && data[i] == '@' && data[i + 1] == 'P') {
                        g_string_append(in, dynsec_correlation_prefix(d));
                        i++;
                } else
                        g_string_append_c(in, (char)data[i]);
        }
        (void)dynsec_handle_response(d, in->str, in->len);
        (void)dynsec_handle_response(d, in->str, in->len); /* duplicates change nothing */
        dynsec_free(d);
        for (int i = 0; i < N_REQUESTS; i++)
                if (calls[i] != 1)
                        abort(); /* every request completes exactly once (answer or cancel) */
        return 0;
}
