import socket, time, secrets
from mailmover.devserver import DevServer
def run(port, u, p, n):
    s = socket.create_connection(("127.0.0.1", port)); f = s.makefile("rb")
    f.readline(); s.sendall(f"a LOGIN {u} {p}\r\n".encode())
    while not f.readline().startswith(b"a "): pass
    cmds = b"".join(b"c%d CREATE \"Client %d\"\r\n" % (i, i) for i in range(n))
    t = time.perf_counter(); s.sendall(cmds); marks = {}
    done = 0
    while done < n:
        line = f.readline()
        if line.startswith(b"c"):
            done += 1
            if done in (500, 1000, 2000): marks[done] = round(time.perf_counter() - t, 1)
    return marks
for layout, sep in (("fs", None), ("maildir++", "/")):
    with DevServer(layout=layout, separator=sep, extra_conf="mailbox_list_index = no\n") as server:
        u = f"x{secrets.token_hex(3)}"; server.add_user(u, "pw12345678")
        print(layout, "no list index", run(server.port, u, "pw12345678", 2000))
