# Opens N subscriber connections that subscribe to a branch and then never read a byte, for the
# memory tests. Each socket gets a small MSS and receive buffer first: on loopback (MSS 64 KiB)
# Linux would otherwise let the kernel hold ~4 MB per stalled socket before the server's own
# buffer fills at all, which only measures the kernel and takes far more events to reach.
# Prints "ready N" once every socket has connected and sent its subscribe; exits when stdin closes.
# usage: stalledSubscribers.py HOST PORT N BRANCH
import json, socket, struct, sys

host, port, n, branch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
body = json.dumps({"type": "subscribe", "branch": branch}).encode()
frame = struct.pack(">I", len(body)) + body
socks = []
for _ in range(n):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
    s.connect((host, port))
    s.sendall(frame)
    socks.append(s)
print("ready", len(socks), flush=True)
sys.stdin.read()
