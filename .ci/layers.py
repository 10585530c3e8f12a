#!/usr/bin/env python3
"""Checks that the crate's modules import downward only.

Reads every `use crate::..`, `use super::..` and path in a module's code (tests and comments
left out), and fails if

  * any two modules import each other, directly or through others (a parent module that
    uses a child's items counts as importing it), or
  * a module imports one of a higher layer than its own (LAYERS below, bottom first; a
    submodule is in its top-level module's layer).

Usage: .ci/layers.py [-v]   (-v prints every module's imports)
"""
import os
import re
import sys

# Bottom first. A module may import its own layer or lower ones (without a cycle).
LAYERS = {
    "src": [
        ["sync", "hash", "error", "handle"],            # primitives
        ["nexthop"],                                    # next-hop groups, on primitives only
        ["prefix", "route", "criteria"],                # addresses and routes
        ["journal", "clock", "version"],                # versions and their journal
        ["skiplist"],                                   # the ordered index
        ["cursor", "slots"],                            # positions and pins
        ["reclaim"],                                    # the reclaimer
        ["table"],                                      # the public table
        ["builder", "enumeration", "commit", "block", "feed"],  # its concerns
        ["fib"],                                        # forwarding, on top
    ],
    "capi/src": None,  # one crate-internal layer: only cycles are checked
}


def modules(root):
    mods = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            if f.endswith(".rs"):
                rel = os.path.relpath(os.path.join(dirpath, f), root)[:-3].split("/")
                if rel[-1] in ("mod", "lib"):
                    rel = rel[:-1]
                mods["::".join(rel) or "crate"] = open(os.path.join(dirpath, f)).read()
    return mods


def code_of(src):
    src = re.sub(r"#\[cfg\((?:all\()?test[^\]]*\]\s*mod tests\s*\{.*", "", src, flags=re.S)
    return re.sub(r"//[^\n]*", "", src)


def expand(prefix, body):
    items, depth, cur = [], 0, ""
    for ch in body:
        depth += ch == "{"
        depth -= ch == "}"
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
        else:
            cur += ch
    items.append(cur)
    out = []
    for it in (i.strip() for i in items):
        if not it:
            continue
        m = re.match(r"([\w:]*?)(?:::)?\{(.*)\}$", it, re.S)
        if m:
            out += expand(prefix + [x for x in m.group(1).split("::") if x], m.group(2))
        else:
            out.append(prefix + [x for x in it.split(" as ")[0].split("::") if x])
    return out


def resolve(mods, m, path):
    if not path:
        return None
    if path[0] == "crate":
        base, path = [], path[1:]
    elif path[0] in ("super", "self"):
        base = [] if m == "crate" else m.split("::")
        while path and path[0] in ("super", "self"):
            if path[0] == "super":
                base = base[:-1]
            path = path[1:]
    else:
        return None
    full = base + path
    for k in range(len(full), 0, -1):
        if "::".join(full[:k]) in mods:
            return "::".join(full[:k])
    return None


def graph(mods):
    edges = {}
    for m, src in mods.items():
        code, deps = code_of(src), set()
        for u in re.finditer(r"\buse\s+((?:crate|super|self)\b[^;]*);", code, re.S):
            for p in expand([], u.group(1)):
                deps.add(resolve(mods, m, p))
        for u in re.finditer(r"\b((?:crate|super)(?:::\w+)+)", code):
            deps.add(resolve(mods, m, u.group(1).split("::")))
        depth = 0 if m == "crate" else m.count("::") + 1
        for c in mods:
            if c != m and c.count("::") + 1 == depth + 1 and (m == "crate" or c.startswith(m + "::")):
                if re.search(r"(?<![\w:])(?:self::)?" + c.split("::")[-1] + r"::", code):
                    deps.add(c)
        deps -= {None, m, "crate"}
        edges[m] = deps
    return edges


def cycles(edges):
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    os.chdir(os.path.join(here, ".."))
    bad = 0
    for root, layers in LAYERS.items():
        mods = modules(root)
        edges = graph(mods)
        if "-v" in sys.argv:
            for m in sorted(edges):
                print(f"{root}: {m} -> {', '.join(sorted(edges[m]))}")
        for c in cycles(edges):
            print(f"{root}: import cycle: {' <-> '.join(c)}")
            bad += 1
        if layers:
            level = {name: i for i, names in enumerate(layers) for name in names}
            for m, deps in edges.items():
                top = m.split("::")[0]
                if m == "crate":
                    continue
                if top not in level:
                    print(f"{root}: module {top} has no layer in .ci/layers.py")
                    bad += 1
                    continue
                for d in deps:
                    dt = d.split("::")[0]
                    if dt in level and level[dt] > level[top]:
                        print(f"{root}: upward import: {m} (layer {level[top]}) -> {d} (layer {level[dt]})")
                        bad += 1
        print(f"{root}: {len(mods)} modules, {sum(len(v) for v in edges.values())} imports")
    if bad:
        sys.exit(1)
    print("layers: every import runs downward, no cycles")


main()
