#!/usr/bin/python3
"""Stands in for netmakerd in the socket-activation check while the real binary is not built:
takes the listening socket systemd passes (LISTEN_FDS), says READY=1 on NOTIFY_SOCKET (as a
Type=notify service must) and answers GET /api/v1/health. Standard library only."""
import json
import os
import socket
import sys


def notify(msg: bytes):
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(msg, addr)


def main():
    if os.environ.get("LISTEN_PID") != str(os.getpid()) or int(os.environ.get("LISTEN_FDS", "0")) < 1:
        sys.exit("netmakerd-standin: no socket from systemd (LISTEN_FDS)")
    srv = socket.socket(fileno=3)
    notify(b"READY=1\nSTATUS=stand-in serving /api/v1/health")
    body = json.dumps({"status": "ok", "version": "standin", "database": "none",
                       "broker_connected": False}).encode()
    while True:
        conn, _ = srv.accept()
        with conn:
            conn.settimeout(5)
            try:
                req = conn.recv(4096).decode(errors="replace")
            except OSError:
                continue
            if req.startswith("GET /api/v1/health "):
                head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                conn.sendall(head.encode() + b"Connection: close\r\n\r\n" + body)
            else:
                conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


if __name__ == "__main__":
    main()
