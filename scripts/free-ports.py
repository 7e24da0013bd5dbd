"""Prints N free loopback TCP ports, preferring the given defaults when free.

usage: free-ports.py DEFAULT [DEFAULT ...]   (0 = any free port)
Ports are held open together so they are distinct, then released.
"""
import socket
import sys

MAX = 55000  # SeaweedFS puts gRPC on port+10000: keep that within range


def try_bind(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        s.close()
        return None
    return s


held = []
out = []
def with_neighbour(s):
    """Keeps s only if port+10000 (SeaweedFS's gRPC port) is free too."""
    if s is None:
        return None
    port = s.getsockname()[1]
    n = try_bind(port + 10000) if port < MAX else None
    if n is None:
        held.append(s)
        return None
    held.append(n)
    return s


for wanted in sys.argv[1:]:
    wanted = int(wanted)
    s = with_neighbour(try_bind(wanted)) if wanted else None
    while s is None:
        s = with_neighbour(try_bind(0))
    held.append(s)
    out.append(str(s.getsockname()[1]))
for s in held:
    s.close()
print(" ".join(out))
