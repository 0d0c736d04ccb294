"""Print the first free TCP port on 127.0.0.1 from the given one on (default 8000), so a
second `make demo` serves beside the first instead of failing."""

import socket
import sys

start = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
for port in range(start, start + 100):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
    print(port)
    break
else:
    sys.exit(f"no free port in {start}..{start + 99}")
