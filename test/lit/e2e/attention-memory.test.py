"""attention-memory.test's helper: the train step's arena bytes of each
compile (kiln-static-buffers' remark), and their growth from T=256 to 1024."""
import re
import sys


def arena(path):
    with open(path) as f:
        for line in f:
            m = re.search(r"@train_step: \d+ temporaries in (\d+) bytes", line)
            if m:
                return int(m.group(1))
    sys.exit("no arena size for @train_step in " + path)


fused = [arena(p) for p in sys.argv[1:3]]
unfused = [arena(p) for p in sys.argv[3:5]]
print("fused: arena x%.1f for T x4 (%d -> %d bytes)" % (fused[1] / fused[0], *fused))
print("unfused: arena x%.1f for T x4 (%d -> %d bytes)" % (unfused[1] / unfused[0], *unfused))
