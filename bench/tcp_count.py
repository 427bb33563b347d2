#!/usr/bin/env python3
"""A counting TCP proxy: forwards 127.0.0.1:LISTEN to TARGET and counts the bytes each way.

    tcp_count.py LISTEN_PORT TARGET_HOST:PORT STATS_FILE

Prints READY once listening. Every 50 ms, when something changed, rewrites STATS_FILE with one
line: `connections=N up=BYTES down=BYTES` (up: client to server, down: server to client;
HTTP headers and bodies, as on the wire without TLS). Standard library only.
"""
import os
import socket
import sys
import threading
import time

lock = threading.Lock()
stats = {"connections": 0, "up": 0, "down": 0}


def pump(src, dst, key):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
            with lock:
                stats[key] += len(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(conn, target):
    try:
        upstream = socket.create_connection(target)
    except OSError:
        conn.close()
        return
    for s in (conn, upstream):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with lock:
        stats["connections"] += 1
    t = threading.Thread(target=pump, args=(upstream, conn, "down"), daemon=True)
    t.start()
    pump(conn, upstream, "up")
    t.join()
    conn.close()
    upstream.close()


def writer(path):
    last = None
    while True:
        time.sleep(0.05)
        with lock:
            line = "connections={connections} up={up} down={down}\n".format(**stats)
        if line != last:
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                f.write(line)
            os.replace(tmp, path)
            last = line


def main():
    port, target, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    host, tport = target.rsplit(":", 1)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(128)
    threading.Thread(target=writer, args=(path,), daemon=True).start()
    print("READY", flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn, (host, int(tport))), daemon=True).start()


if __name__ == "__main__":
    main()
