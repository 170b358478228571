/* A netclientd Manager for unit tests, registered with a made-up server (nothing connects: the
 * tests hand it messages directly): its own state directory with an identity and server.json.
 * Header-only: static functions. */
#pragma once

#include <gio/gio.h>

#include "daemon-config.h"
#include "keys.h"
#include "manager.h"
#include "state.h"

/* A fresh WireGuard public key in base64 (its private half is thrown away); *ret_pub when wanted. */
static inline char *fixture_key_b64(NmKey *ret_pub)
{
        NmKey priv, pub;
        char b[NM_KEY_B64_LEN + 1];
        nm_key_generate_wg(&priv, &pub);
        nm_key_to_base64(&pub, b);
        if (ret_pub)
                *ret_pub = pub;
        return g_strdup(b);
}

/* Makes the directory (from the g_dir_make_tmp() template), the configuration, the manager with
 * its identity, and the server it is registered with as host *ret_host_id. */
static inline void agent_fixture_setup(const char *tmpl, char **ret_dir, Config **ret_config,
                                       Manager **ret_m, char **ret_host_id)
{
        g_autoptr(GError) e = NULL;
        NmKey priv;

        char *dir = g_dir_make_tmp(tmpl, &e);
        g_assert_no_error(e);
        Config *config = config_new();
        g_free(config->state_dir);
        config->state_dir = g_strdup(dir);
        Manager *m = NULL;
        g_assert_cmpint(manager_new(config, &m), ==, 0);
        g_assert_cmpint(manager_load_state(m), ==, 0);
        g_assert_cmpint(identity_load_or_create(dir, &m->identity, &e), ==, 1);
        m->have_identity = true;

        char *host_id = nm_uuid_new();
        ServerConfig *s = server_config_new();
        s->api = g_strdup("http://198.18.0.254:8081");
        nm_key_generate_box(&priv, &s->server_key);
        s->host_id = g_strdup(host_id);
        s->credential = g_strdup("nmh.x.y");
        s->mqtt_url = g_strdup("mqtt://198.18.0.254:1883");
        s->mqtt_username = g_strdup("host-x");
        s->mqtt_password = g_strdup("pw");
        s->topic_msg = g_strdup("nm/t/host/x/msg");
        s->topic_report = g_strdup("nm/t/host/x/report");
        g_assert_cmpint(server_config_save(dir, s, &e), ==, 0);
        m->server = s;
        *ret_dir = dir;
        *ret_config = config;
        *ret_m = m;
        *ret_host_id = host_id;
}

/* Frees what agent_fixture_setup() made and removes the directory (it has no subdirectories). */
static inline void agent_fixture_teardown(char *dir, Config *config, Manager *m, char *host_id)
{
        manager_free(m);
        config_free(config);
        g_autoptr(GFile) d = g_file_new_for_path(dir);
        g_autoptr(GFileEnumerator) en = g_file_enumerate_children(d, "standard::name", 0, NULL, NULL);
        GFileInfo *info;
        while (en && (info = g_file_enumerator_next_file(en, NULL, NULL))) {
                g_autoptr(GFile) child = g_file_get_child(d, g_file_info_get_name(info));
                g_assert_true(g_file_delete(child, NULL, NULL));
                g_object_unref(info);
        }
        g_assert_true(g_file_delete(d, NULL, NULL));
        g_free(dir);
        g_free(host_id);
}
