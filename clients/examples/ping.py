# A carrel client in plain Python (socket, struct, json): PING, garbage, 200 pipelined requests.
import json, socket, struct, sys

def frame(obj): body = json.dumps(obj).encode(); return struct.pack(">I", len(body)) + body
def exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk: raise ConnectionError("closed")
        buf += chunk
    return buf
def recv(s): (n,) = struct.unpack(">I", exact(s, 4)); return json.loads(exact(s, n))

s = socket.create_connection((sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1", int(sys.argv[2]) if len(sys.argv) > 2 else 9000))
s.sendall(frame({"rpcId": 1, "method": "PING"})); print(json.dumps(recv(s)))
s.sendall(struct.pack(">I", 9) + b"not json!"); print(json.dumps(recv(s)))
s.sendall(b"".join(frame({"rpcId": i, "method": "PING"}) for i in range(2, 202)))
replies = [recv(s) for _ in range(200)]
print(json.dumps({"answered": len(replies), "allPong": all(r["result"] == "PONG" for r in replies), "ids": sorted(r["rpcId"] for r in replies) == list(range(2, 202))}))
