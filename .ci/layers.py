#!/usr/bin/env python3
"""The layering rules of ARCHITECTURE.md, checked on the source text (run by .ci/run).

- No import circle inside any folder of src/: within a folder, a module that names a sibling
  (`super::x`, `crate::folder::x`) must not be named back by it, directly or around a loop. The
  crate root's children (auth, db, web, ...) count as one folder. Unit-test modules at the end
  of a file (`#[cfg(test)] mod tests`) are left out: a test may reach where the code may not.
- web/ knows accounts only through auth: no `db::User`, no `hashed_password`, no `mail::`, no
  link-path constant (`*_PATH` from mail).
- The operator's side (admin.rs, cli.rs) does not import the web layer.
- No arrow points up: db/ names neither auth nor web nor the operator's side, auth/ and mail.rs
  do not name web, mail.rs does not name auth, and nothing outside db/ names Diesel.
- db/mod.rs only declares and re-exports: under 150 lines.

Prints every broken rule and exits 1, or prints a one-line summary.
"""
import re
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"


def code_of(path):
    """The file's text without comments and without its trailing unit-test module."""
    text = path.read_text()
    cut = re.search(r"^#\[cfg\(test\)\]\s*\n\s*(pub(\([^)]*\))? )?mod \w+\s*\{", text, re.M)
    if cut:
        text = text[: cut.start()]
    return "\n".join(line.split("//")[0] for line in text.splitlines())


def module_name(path, folder):
    """The name of the folder's child that `path` belongs to, or None for the folder's own file."""
    rel = path.relative_to(folder)
    if rel.parts[0] in ("mod.rs", "lib.rs", "main.rs"):
        return None
    return rel.parts[0].removesuffix(".rs")


def folders():
    """Every folder holding modules, with its children (module name -> files)."""
    for folder in [SRC] + sorted(p for p in SRC.rglob("*") if p.is_dir()):
        children = {}
        for path in folder.rglob("*.rs"):
            name = module_name(path, folder)
            if name is not None:
                children.setdefault(name, []).append(path)
        if len(children) > 1:
            yield folder, children


def reexports(folder, children):
    """Child module -> the names the folder's own file re-exports from it (`pub use x::{A, B}`)."""
    own = folder / ("lib.rs" if folder == SRC else "mod.rs")
    text = code_of(own) if own.exists() else ""
    names = {}
    for child, items, alias in re.findall(r"pub use (?:self::)?(\w+)::(\{[^;]*\}|[\w:]+)(?: as (\w+))?;", text):
        if child in children:
            listed = [alias] if alias else [item.split()[-1].split("::")[-1] for item in items.strip("{}").split(",") if item.strip()]
            names.setdefault(child, set()).update(listed)
    return names


def edges(folder, children):
    """Sibling -> siblings it names, directly or by a name the folder re-exports from them."""
    prefix = "".join(f"{part}::" for part in ("crate",) + folder.relative_to(SRC).parts)
    exported = reexports(folder, children)
    graph = {}
    for name, paths in children.items():
        named = set()
        for path in paths:
            text = code_of(path)
            for other in children:
                if other == name:
                    continue
                words = [other] + sorted(exported.get(other, ()))
                alternatives = "|".join(re.escape(word) for word in words)
                pattern = re.escape(prefix) + rf"(?:{alternatives})\b"
                if path.parent == folder:
                    pattern += rf"|\bsuper::(?:{alternatives})\b|\bsuper::\{{[^}}]*\b(?:{alternatives})\b"
                if re.search(pattern, text):
                    named.add(other)
        graph[name] = named
    return graph


def cycles(graph):
    """Each strongly connected set of more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def main():
    problems = []
    checked = 0
    for folder, children in folders():
        checked += 1
        for group in cycles(edges(folder, children)):
            where = folder.relative_to(SRC.parent)
            problems.append(f"{where}/: import circle between {', '.join(group)}")
    for path in sorted((SRC / "web").rglob("*.rs")):
        text = code_of(path)
        for word in ("db::User", "hashed_password", "mail::"):
            if re.search(r"\b" + re.escape(word), text):
                problems.append(f"{path.relative_to(SRC.parent)}: names `{word}` (web knows accounts through auth)")
        for constant in re.findall(r"\b[A-Z_]+_PATH\b", text):
            if re.search(r"\bmail\b", text):
                problems.append(f"{path.relative_to(SRC.parent)}: link path `{constant}` from mail")
    for name in ("admin.rs", "cli.rs"):
        if re.search(r"\bweb::", code_of(SRC / name)):
            problems.append(f"src/{name}: imports the web layer")
    upward = {
        "db": ("auth", "web", "admin", "cli", "mail"),
        "auth": ("web", "admin", "cli"),
        "mail.rs": ("web", "auth", "admin", "cli"),
    }
    for part, above in upward.items():
        paths = [SRC / part] if part.endswith(".rs") else sorted((SRC / part).rglob("*.rs"))
        for path in paths:
            for name in re.findall(r"\bcrate::(\w+)", code_of(path)):
                if name in above:
                    problems.append(f"{path.relative_to(SRC.parent)}: imports `crate::{name}` (an arrow up)")
    for path in sorted(SRC.rglob("*.rs")):
        if "db" not in path.relative_to(SRC).parts[:1] and re.search(r"\bdiesel::", code_of(path)):
            problems.append(f"{path.relative_to(SRC.parent)}: names Diesel (SQL lives in db/)")
    lines = len((SRC / "db" / "mod.rs").read_text().splitlines())
    if lines >= 150:
        problems.append(f"src/db/mod.rs: {lines} lines (it only declares and re-exports: under 150)")
    for problem in problems:
        print(problem)
    if problems:
        sys.exit(1)
    print(f"layers: {checked} folders without an import circle, no arrow up; web, admin and db/mod.rs keep their rules")


if __name__ == "__main__":
    main()
