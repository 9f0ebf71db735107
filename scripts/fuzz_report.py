#!/usr/bin/env python3
"""What the API fuzzing reached: one row per operation of the OpenAPI document with the status
codes it answered, read from the HAR file schemathesis writes (`--report har`), which holds every
request of every phase, stateful ones included.

Exits 1 when an operation was never called, or was only ever refused: every answer one of
REFUSED (no credentials or the wrong ones, not found, a method the path does not have, a
malformed or invalid request, ...). Such an operation was not tested, whatever the run says.
A 409 counts as reached: the request got through to the ticket's rules, which refused the state.

Usage: fuzz_report.py OPENAPI_JSON HAR_JSON [--seen "METHOD /path STATUS" ...]
(`--seen`: a request made outside schemathesis, such as the fetch of the document itself, which
schemathesis does not fuzz.)
"""

import collections
import json
import sys
import urllib.parse

REFUSED = {400, 401, 403, 404, 405, 408, 413, 415, 422, 429}
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def operations(doc):
    """(method, path template) of every operation, in document order."""
    return [
        (method.upper(), path)
        for path, item in doc.get("paths", {}).items()
        for method in METHODS
        if method in item
    ]


def match(ops, method, path):
    """The operation a request went to: same method, same number of segments, literals equal;
    the template with the most literal segments wins (`/v1/tickets/{id}/live` over
    `/v1/tickets/{id}/{action}`). None for a method the path does not have."""
    segments = path.split("/")
    best, best_literals = None, -1
    for op_method, template in ops:
        if op_method != method:
            continue
        parts = template.split("/")
        if len(parts) != len(segments):
            continue
        literals = 0
        for part, seg in zip(parts, segments):
            if part.startswith("{") and part.endswith("}"):
                if seg == "":
                    break
            elif part == seg:
                literals += 1
            else:
                break
        else:
            if literals > best_literals:
                best, best_literals = (op_method, template), literals
    return best


def main(openapi_path, har_path, seen):
    with open(openapi_path, encoding="utf-8") as f:
        ops = operations(json.load(f))
    with open(har_path, encoding="utf-8") as f:
        entries = json.load(f)["log"]["entries"]
    requests = [
        (
            e["request"]["method"].upper(),
            urllib.parse.urlsplit(e["request"]["url"]).path,
            e["response"]["status"],
        )
        for e in entries
    ]
    for extra in seen:
        method, path, status = extra.split()
        requests.append((method.upper(), path, int(status)))
    answered = {op: collections.Counter() for op in ops}
    elsewhere = collections.Counter()
    for method, path, status in requests:
        op = match(ops, method, path)
        if op is None:
            elsewhere[status] += 1
        else:
            answered[op][status] += 1

    def codes(counter):
        return " ".join(f"{s}×{n}" for s, n in sorted(counter.items()))

    width = max(len(f"{m} {p}") for m, p in ops)
    print(f"{'operation':<{width}}  {'requests':>8}  reached  status codes answered")
    failed = []
    for op in ops:
        counter = answered[op]
        reached = any(s not in REFUSED for s in counter)
        label = f"{op[0]} {op[1]}"
        print(
            f"{label:<{width}}  {sum(counter.values()):>8}  {'yes' if reached else 'NO':<7}  "
            f"{codes(counter) or '(never called)'}"
        )
        if not reached:
            failed.append(label)
    if elsewhere:
        label = "(methods the paths do not have)"
        print(f"{label:<{width}}  {sum(elsewhere.values()):>8}  {'':<7}  {codes(elsewhere)}")
    print(f"{len(requests)} requests, {len(ops) - len(failed)} of {len(ops)} operations reached")
    if failed:
        print(
            "error: never called, or only ever refused ("
            + ", ".join(str(s) for s in sorted(REFUSED))
            + "): "
            + ", ".join(failed),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    args, seen = sys.argv[1:], []
    while "--seen" in args:
        i = args.index("--seen")
        seen.append(args[i + 1] if i + 1 < len(args) else "")
        del args[i : i + 2]
    if len(args) != 2 or any(len(s.split()) != 3 for s in seen):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(args[0], args[1], seen))
