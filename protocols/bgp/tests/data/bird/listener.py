import socket, struct, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.2", 1179)); s.listen(1); s.settimeout(20)
c, _ = s.accept(); c.settimeout(5)
def readmsg():
    h = b""
    while len(h) < 19: h += c.recv(19 - len(h))
    l = struct.unpack("!H", h[16:18])[0]
    b = b""
    while len(b) < l - 19: b += c.recv(l - 19 - len(b))
    return h + b
msgs = []
m = readmsg(); msgs.append(m)
caps = bytes([1,4,0,1,0,1, 1,4,0,2,0,1, 2,0, 65,4]) + struct.pack("!I", 65002)
opt = bytes([2, len(caps)]) + caps
body = struct.pack("!BHH4sB", 4, 65002, 90, socket.inet_aton("192.0.2.2"), len(opt)) + opt
c.sendall(b"\xff"*16 + struct.pack("!HB", 19 + len(body), 1) + body)
c.sendall(b"\xff"*16 + struct.pack("!HB", 19, 4))
deadline = time.time() + 8
while time.time() < deadline:
    try: m = readmsg()
    except Exception: break
    msgs.append(m)
    if m[18] == 4 and len([x for x in msgs if x[18]==2]) >= 3: break
for i, m in enumerate(msgs):
    open(f"/tmp/cap/msg{i}_type{m[18]}.bin", "wb").write(m)
print(len(msgs), [m[18] for m in msgs])
