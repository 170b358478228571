/* Per-network observer keys, derived from one secret and cached. */
#include <string.h>
#include <sodium.h>

#include "observer-keys.h"

#define LABEL "netmakerd observer v1"

struct ObserverKeys {
        uint8_t secret[OBSERVER_SECRET_LEN];
        GHashTable *responders; /* network name -> WgResponder* */
};

static void responder_free(gpointer p)
{
        wg_responder_clear(p);
        g_free(p);
}

ObserverKeys *observer_keys_new(const uint8_t secret[OBSERVER_SECRET_LEN])
{
        ObserverKeys *k = g_new0(ObserverKeys, 1);
        memcpy(k->secret, secret, OBSERVER_SECRET_LEN);
        k->responders = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, responder_free);
        return k;
}

void observer_keys_free(ObserverKeys *k)
{
        if (!k)
                return;
        g_hash_table_unref(k->responders);
        sodium_memzero(k->secret, sizeof(k->secret));
        g_free(k);
}

const WgResponder *observer_keys_get(ObserverKeys *k, const char *network)
{
        WgResponder *r = g_hash_table_lookup(k->responders, network);
        crypto_generichash_state st;
        NmKey priv;

        if (r)
                return r;
        /* The label and its NUL keep "a" + "bc" and "ab" + "c" apart from any other use. */
        crypto_generichash_init(&st, k->secret, sizeof(k->secret), sizeof(priv.b));
        crypto_generichash_update(&st, (const unsigned char *)LABEL, sizeof(LABEL));
        crypto_generichash_update(&st, (const unsigned char *)network, strlen(network));
        crypto_generichash_final(&st, priv.b, sizeof(priv.b));
        priv.b[0] &= 248;
        priv.b[31] = (priv.b[31] & 127) | 64;
        r = g_new0(WgResponder, 1);
        int ret = wg_responder_init(r, &priv);
        sodium_memzero(&priv, sizeof(priv));
        sodium_memzero(&st, sizeof(st));
        if (ret < 0) {
                g_free(r);
                return NULL;
        }
        g_hash_table_insert(k->responders, g_strdup(network), r);
        return r;
}

void observer_keys_forget(ObserverKeys *k, const char *network)
{
        g_hash_table_remove(k->responders, network);
}
