/* Synchronous netlink requests and dumps over libnl that keep the kernel's errno and extended ACK. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <linux/netlink.h>
#include <netlink/errno.h>
#include <netlink/handlers.h>
#include <netlink/socket.h>

#include "macro.h"
#include "netlink-util.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

int netlink_errno_from_nlerr(int nlerr)
{
        switch (nlerr < 0 ? -nlerr : nlerr) {
        case NLE_SUCCESS:
                return 0;
        case NLE_INTR:
                return -EINTR;
        case NLE_BAD_SOCK:
                return -EBADF;
        case NLE_AGAIN:
                return -EAGAIN;
        case NLE_NOMEM:
                return -ENOMEM;
        case NLE_EXIST:
                return -EEXIST;
        case NLE_INVAL:
                return -EINVAL;
        case NLE_RANGE:
                return -ERANGE;
        case NLE_MSGSIZE:
        case NLE_ATTRSIZE:
                return -EMSGSIZE;
        case NLE_OPNOTSUPP:
                return -EOPNOTSUPP;
        case NLE_AF_NOSUPPORT:
                return -EAFNOSUPPORT;
        case NLE_OBJ_NOTFOUND:
                return -ENOENT;
        case NLE_NOADDR:
                return -EADDRNOTAVAIL;
        case NLE_BUSY:
                return -EBUSY;
        case NLE_NOACCESS:
                return -EACCES;
        case NLE_PERM:
                return -EPERM;
        case NLE_NODEV:
                return -ENODEV;
        case NLE_DUMP_INTR:
                return -EAGAIN;
        case NLE_MSG_TRUNC:
        case NLE_MSG_TOOSHORT:
        case NLE_MSG_OVERFLOW:
        case NLE_SEQ_MISMATCH:
        case NLE_PARSE_ERR:
        case NLE_MSGTYPE_NOSUPPORT:
                return -EBADMSG;
        default:
                return -EIO;
        }
}

int netlink_socket_open(int protocol, struct nl_sock **ret)
{
        struct nl_sock *sk;
        int one = 1, r;

        sk = nl_socket_alloc();
        if (!sk)
                return -ENOMEM;
        r = nl_connect(sk, protocol);
        if (r < 0) {
                nl_socket_free(sk);
                return netlink_errno_from_nlerr(r);
        }
        /* Both are best effort: old kernels refuse them and work the same without. */
        (void)setsockopt(nl_socket_get_fd(sk), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
        (void)setsockopt(nl_socket_get_fd(sk), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
        /* Dumps of large devices arrive in bursts; a roomy receive buffer avoids ENOBUFS. */
        (void)nl_socket_set_buffer_size(sk, 1 << 20, 1 << 20);
        *ret = sk;
        return 0;
}

typedef struct Reply {
        bool done;
        int error;
        char *extack;
        int (*handler)(struct nl_msg *m, void *userdata);
        void *userdata;
} Reply;

char *netlink_error_extack(const struct nlmsghdr *h)
{
        const struct nlmsgerr *e = nlmsg_data(h);
        size_t off = sizeof(*e), total;
        struct nlattr *tb[NLMSGERR_ATTR_MAX + 1] = {};

        if (!(h->nlmsg_flags & NLM_F_ACK_TLVS) || h->nlmsg_len < NLMSG_HDRLEN)
                return NULL;
        if (!(h->nlmsg_flags & NLM_F_CAPPED))
                off += e->msg.nlmsg_len > sizeof(struct nlmsghdr)
                               ? e->msg.nlmsg_len - sizeof(struct nlmsghdr)
                               : 0;
        off = NLMSG_ALIGN(off);
        total = h->nlmsg_len - NLMSG_HDRLEN;
        if (off >= total)
                return NULL;
        if (nla_parse(tb, NLMSGERR_ATTR_MAX, (struct nlattr *)((char *)e + off), (int)(total - off), NULL) <
            0)
                return NULL;
        if (tb[NLMSGERR_ATTR_MSG] && nla_len(tb[NLMSGERR_ATTR_MSG]) > 0)
                return g_strndup(nla_data(tb[NLMSGERR_ATTR_MSG]),
                                 MIN((size_t)nla_len(tb[NLMSGERR_ATTR_MSG]), 256));
        return NULL;
}

int netlink_done_errno(const struct nlmsghdr *h)
{
        int e;

        if (nlmsg_datalen(h) < (int)sizeof(int))
                return 0;
        memcpy(&e, nlmsg_data(h), sizeof(e));
        return e < 0 ? e : 0;
}

static int on_error(struct sockaddr_nl *nla, struct nlmsgerr *e, void *arg)
{
        Reply *st = arg;

        st->done = true;
        st->error = e->error < 0 ? e->error : -EIO;
        g_free(st->extack);
        st->extack = netlink_error_extack((const struct nlmsghdr *)((const char *)e - NLMSG_HDRLEN));
        return NL_STOP;
}

static int on_ack(struct nl_msg *msg, void *arg)
{
        Reply *st = arg;
        st->done = true;
        return NL_STOP;
}

static int on_finish(struct nl_msg *msg, void *arg)
{
        Reply *st = arg;
        int e = netlink_done_errno(nlmsg_hdr(msg));

        st->done = true;
        /* A dump that failed part-way reports the errno in its NLMSG_DONE. */
        if (e < 0)
                st->error = e;
        return NL_STOP;
}

static int on_valid(struct nl_msg *msg, void *arg)
{
        Reply *st = arg;
        int r;

        if (!st->handler || st->error < 0)
                return NL_OK;
        r = st->handler(msg, st->userdata);
        if (r < 0) {
                /* Keep reading to the end of the dump so the socket stays in step. */
                st->error = r;
                st->handler = NULL;
        }
        return NL_OK;
}

static int wait_reply(struct nl_sock *sk, Reply *st, char **ret_extack)
{
        struct nl_cb *cb;
        int r = 0;

        cb = nl_cb_alloc(NL_CB_DEFAULT);
        if (!cb)
                return -ENOMEM;
        nl_cb_err(cb, NL_CB_CUSTOM, on_error, st);
        nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, on_ack, st);
        nl_cb_set(cb, NL_CB_FINISH, NL_CB_CUSTOM, on_finish, st);
        nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, on_valid, st);

        while (!st->done) {
                r = nl_recvmsgs(sk, cb);
                if (r < 0 && !st->done) {
                        if (r == -NLE_DUMP_INTR)
                                st->error = -EAGAIN;
                        else
                                st->error = netlink_errno_from_nlerr(r);
                        break;
                }
                /* libnl reports an interrupted dump only after NLMSG_DONE was read. */
                if (r == -NLE_DUMP_INTR && st->error == 0)
                        st->error = -EAGAIN;
        }
        nl_cb_put(cb);

        if (ret_extack)
                *ret_extack = st->error < 0 ? TAKE_PTR(st->extack) : NULL;
        g_free(st->extack);
        return st->error;
}

int netlink_request(struct nl_sock *sk, struct nl_msg *msg, char **ret_extack)
{
        Reply st = {};
        int r;

        if (ret_extack)
                *ret_extack = NULL;
        nlmsg_hdr(msg)->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
        r = nl_send_auto(sk, msg);
        if (r < 0)
                return netlink_errno_from_nlerr(r);
        return wait_reply(sk, &st, ret_extack);
}

int netlink_dump(struct nl_sock *sk, struct nl_msg *msg, int (*handler)(struct nl_msg *m, void *userdata),
                 void *userdata, char **ret_extack)
{
        Reply st = {.handler = handler, .userdata = userdata};
        int r;

        if (ret_extack)
                *ret_extack = NULL;
        nlmsg_hdr(msg)->nlmsg_flags |= NLM_F_REQUEST | NLM_F_DUMP;
        r = nl_send_auto(sk, msg);
        if (r < 0)
                return netlink_errno_from_nlerr(r);
        return wait_reply(sk, &st, ret_extack);
}
