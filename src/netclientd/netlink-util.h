/* Synchronous netlink requests and dumps over libnl sockets that keep the kernel's errno and its
 * extended-ACK message (libnl alone folds errors into its own NLE_* codes). */
#pragma once

#include <netlink/msg.h>
#include <netlink/netlink.h>

/* A connected socket of `protocol` (NETLINK_ROUTE, NETLINK_GENERIC) with extended ACKs enabled.
 * Returns 0 or a negative errno. */
int netlink_socket_open(int protocol, struct nl_sock **ret);

/* Sends `msg` with NLM_F_ACK and waits for the kernel's answer. Returns 0 or the kernel's negative
 * errno; on failure *ret_extack (optional) receives the kernel's explanation when it gave one
 * (g_free() it), else NULL. Does not take ownership of msg. */
int netlink_request(struct nl_sock *sk, struct nl_msg *msg, char **ret_extack);

/* Sends a dump request (NLM_F_DUMP is added) and calls `handler` for each reply message until the
 * dump ends. A handler returning a negative errno stops the dump with that error. Returns 0,
 * -EAGAIN when the kernel flagged the dump as interrupted (the object changed: retry), or a
 * negative errno. */
int netlink_dump(struct nl_sock *sk, struct nl_msg *msg, int (*handler)(struct nl_msg *m, void *userdata),
                 void *userdata, char **ret_extack);

/* What the two functions above read from the kernel's answers by hand, for the fuzz target
 * (tests/fuzz/fuzz-netlink.c). The kernel's explanation in an NLMSG_ERROR message `h` (extended
 * ACK: at most 256 characters, g_free() it), or NULL; `h` holds at least the header and a struct
 * nlmsgerr, as libnl checks before it calls an error callback. */
char *netlink_error_extack(const struct nlmsghdr *h);
/* The negative errno an NLMSG_DONE carries, or 0. */
int netlink_done_errno(const struct nlmsghdr *h);

/* libnl's NLE_* error (negative or positive) as a negative errno. */
int netlink_errno_from_nlerr(int nlerr);
