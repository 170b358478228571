/* Proves a peer's bookkeeping for hosts behind NAT: the endpoint rule (the device's roamed endpoint
 * is kept while the server repeats what was written, and when the server names a new one while the
 * device has a session somewhere WireGuard roamed to; the server's new endpoint is written when the
 * device still sits where it was put, or has no session; after a start, a session decides), and
 * what check-ins say of a peer (handshake age, none yet, since when, the class that triggers an
 * early check-in). */
#include <string.h>

#include "peer.h"

#define NOW 1800000000

static WgEndpoint ep(const char *s)
{
        WgEndpoint e;
        g_assert_cmpint(wg_endpoint_parse(s, &e, NULL), ==, 0);
        return e;
}

static void test_endpoint_rule(void)
{
        WgEndpoint written = ep("198.18.50.3:51821"), roamed = ep("198.18.50.3:40123"), none = {};

        /* The server repeats itself: the device's endpoint stays, roamed or not, session or not. */
        g_assert_true(peer_keep_device_endpoint("198.18.50.3:51821", "198.18.50.3:51821", &roamed, 0, NOW));
        g_assert_true(peer_keep_device_endpoint("198.18.50.3:51821", "198.18.50.3:51821", &written, NOW - 10,
                                                NOW));
        /* The server names another (its observation of a symmetric NAT's mapping for itself); the
         * device roamed away from what we wrote and has a session there: kept. */
        g_assert_true(
                peer_keep_device_endpoint("198.18.50.3:51821", "198.18.50.3:20999", &roamed, NOW - 10, NOW));
        /* ... but not once that session is over (180 s), nor without one. */
        g_assert_false(peer_keep_device_endpoint("198.18.50.3:51821", "198.18.50.3:20999", &roamed,
                                                 NOW - 181, NOW));
        g_assert_false(peer_keep_device_endpoint("198.18.50.3:51821", "198.18.50.3:20999", &roamed, 0, NOW));
        /* The peer moved and the device never roamed (it still has what we wrote): written, even
         * with a session at the old place. */
        g_assert_false(
                peer_keep_device_endpoint("198.18.50.3:51821", "198.18.7.9:51821", &written, NOW - 10, NOW));
        /* After a start (nothing written yet by this process): a session keeps what the device has. */
        g_assert_true(peer_keep_device_endpoint(NULL, "198.18.50.3:20999", &roamed, NOW - 100, NOW));
        g_assert_false(peer_keep_device_endpoint(NULL, "198.18.50.3:20999", &roamed, 0, NOW));
        /* No endpoint on the device: nothing to keep. */
        g_assert_false(
                peer_keep_device_endpoint("198.18.50.3:51821", "198.18.50.3:51821", &none, NOW - 10, NOW));
}

static void test_status_and_class(void)
{
        Peer p = {.desired = nm_peer_new(), .created_usec = 1000 * G_USEC_PER_SEC};
        NmPeerStatus st;
        uint64_t now = (uint64_t)NOW * G_USEC_PER_SEC, mono = 1040 * G_USEC_PER_SEC;

        memset(&p.desired->public_key, 0x42, sizeof(NmKey));
        p.rx_bytes = 10;
        p.tx_bytes = 20;
        /* Never a handshake, a peer for 40 s. */
        peer_status(&p, now, mono, &st);
        g_assert_cmpint(st.handshake, ==, -1);
        g_assert_cmpuint(st.since, ==, 40);
        g_assert_cmpuint(st.rx_bytes, ==, 10);
        g_assert_cmpuint(st.tx_bytes, ==, 20);
        g_assert_true(nm_key_equal(&st.public_key, &p.desired->public_key));
        g_assert_cmpint(peer_class(&st, 0), ==, PEER_CLASS_NO_SESSION);
        g_assert_cmpint(peer_class(&st, 60), ==, PEER_CLASS_NO_SESSION);
        g_assert_cmpint(peer_class(&st, 30), ==, PEER_CLASS_DOWN_LONG);
        /* A handshake 12 s ago: a session. */
        p.latest_handshake_usec = now - 12 * G_USEC_PER_SEC;
        peer_status(&p, now, mono, &st);
        g_assert_cmpint(st.handshake, ==, 12);
        g_assert_cmpint(peer_class(&st, 30), ==, PEER_CLASS_SESSION);
        /* 250 s ago: the session ran out 70 s ago. */
        p.latest_handshake_usec = now - 250 * G_USEC_PER_SEC;
        peer_status(&p, now, mono, &st);
        g_assert_cmpint(peer_class(&st, 60), ==, PEER_CLASS_DOWN_LONG);
        g_assert_cmpint(peer_class(&st, 90), ==, PEER_CLASS_NO_SESSION);
        nm_peer_free(p.desired);
}

int main(int argc, char *argv[])
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/peer/endpoint-rule", test_endpoint_rule);
        g_test_add_func("/peer/status-and-class", test_status_and_class);
        return g_test_run();
}
