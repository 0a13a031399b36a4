"""Per destination connection of a ``mailmover copy --trace`` file: the commands answered
by verb, Dovecot's own reported seconds for them summed (the first figure of its
``(0.012 + 0.000 secs)``), the first one sent and the last answer (seconds in the trace).

    .venv/bin/python bench/trace_dest_stats.py TRACE  # many_folders_bench.py --keep-traces
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from pathlib import Path

TIMING = re.compile(r"\(([0-9.]+)(?: \+ [0-9.]+)* secs\)")


def main(path: str) -> None:
    sent: dict[tuple[str, str], tuple[str, float]] = {}
    # label -> verb -> [answered, Dovecot seconds, first sent, last answer]
    stats: dict[str, dict[str, list[float]]] = defaultdict(dict)
    for line in Path(path).read_text(errors="replace").splitlines():
        fields = line.split(maxsplit=4)
        if len(fields) < 5 or fields[2] not in ("C:", "S:") or fields[1].startswith("src"):
            continue
        at, label, arrow, rest = float(fields[0]), fields[1], fields[2], f"{fields[3]} {fields[4]}"
        if arrow == "C:":
            words = rest.split()
            if len(words) > 1 and words[1].isupper():
                sent[(label, words[0])] = (words[1], at)
        elif rest.startswith("Tagged(tag='"):
            tag = rest.split("'")[1]
            if (label, tag) not in sent:
                continue
            verb, first = sent.pop((label, tag))
            row = stats[label].setdefault(verb, [0, 0.0, first, at])
            found = TIMING.search(rest)
            row[0] += 1
            row[1] += float(found.group(1)) if found else 0.0
            row[2], row[3] = min(row[2], first), max(row[3], at)
    for label, verbs in sorted(stats.items()):
        for verb, (n, secs, first, last) in sorted(verbs.items()):
            if n > 5:
                print(
                    f"{label:6} {verb:10} n={n:5.0f} dovecot {secs:6.1f} s"
                    f"  sent from {first:6.1f} last answer {last:6.1f}"
                )


if __name__ == "__main__":
    main(sys.argv[1])
