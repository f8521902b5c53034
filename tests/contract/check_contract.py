#!/usr/bin/env python3
"""check_contract.py - validates orderd's machine-readable contract
(docs/contract/) and what it describes, with a real JSON Schema validator.

  check_contract.py docs          the schemas themselves, every JSON example
                                  in docs/CONTRACT.md, the demo data
                                  (tests/data/demo/*.jsonl) and the AsyncAPI
                                  document (structure, references, examples)
  check_contract.py events        every event the integration suite read
                                  (the *.jsonl files its harness wrote under
                                  $ORDERD_TEST_EVENTS_DIR)
  check_contract.py reset         empties $ORDERD_TEST_EVENTS_DIR (before
                                  the suite)

Exit 0 when everything validates, 1 otherwise (each failure printed),
77 when ORDERD_TEST_EVENTS_DIR is not set (ctest: skipped).
"""
import glob
import json
import os
import re
import sys

import jsonschema
import yaml

V = jsonschema.Draft202012Validator
failures = []


def fail(where, msg):
    failures.append(f"{where}: {msg}")


def load_schemas(root):
    d = os.path.join(root, "docs", "contract")
    schemas = {}
    for name in ("command.schema.json", "event.schema.json"):
        with open(os.path.join(d, name), encoding="utf-8") as f:
            schemas[name] = json.load(f)
        V.check_schema(schemas[name])
    return schemas


def validator(schemas, name):
    return V(schemas[name])


def errors(v, instance):
    return sorted(v.iter_errors(instance), key=lambda e: list(e.path))


def fmt(e):
    path = "/".join(str(p) for p in e.absolute_path) or "(top)"
    return f"{path}: {e.message}"


# docs/CONTRACT.md's first part is illustrative: "..." stands for any
# value and "a | b" lists the values a field takes
def placeholder_ok(e):
    inst = e.instance
    if inst == "...":
        return True
    if isinstance(inst, str) and " | " in inst:
        sub = V(e.schema)
        return all(sub.is_valid(alt.strip()) for alt in inst.split("|"))
    return False


def tolerated(e):
    """an error of the shared, illustrative example that only its
    placeholders cause (for anyOf: some branch fails only on them)"""
    if placeholder_ok(e):
        return True
    # contract v2 ("sources") adds source.name to the v1 example, which
    # predates it
    if (list(e.path) == ["source"] and e.validator == "required"
            and "'name'" in e.message):
        return True
    if e.validator in ("anyOf", "oneOf") and e.context:
        branches = {}
        for sub in e.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        return any(all(tolerated(sub) for sub in subs)
                   for subs in branches.values())
    return False


def check_contract_md(root, schemas):
    path = os.path.join(root, "docs", "CONTRACT.md")
    text = open(path, encoding="utf-8").read()
    shared, _, notes = text.partition("\n---\n")
    blocks = 0
    for part, body in (("shared", shared), ("notes", notes)):
        for m in re.finditer(r"```json\n(.*?)```", body, re.S):
            blocks += 1
            line = text[: text.find(m.group(0))].count("\n") + 1
            where = f"docs/CONTRACT.md:{line}"
            try:
                doc = json.loads(m.group(1))
            except ValueError as ex:
                fail(where, f"example is not JSON: {ex}")
                continue
            kind = ("event.schema.json" if "event_id" in doc
                    else "command.schema.json")
            for e in errors(validator(schemas, kind), doc):
                if part == "shared" and tolerated(e):
                    continue
                fail(where, f"{kind}: {fmt(e)}")
    if blocks == 0:
        fail(path, "no ```json examples found")
    return blocks


def check_demo(root, schemas):
    v = validator(schemas, "command.schema.json")
    files = sorted(glob.glob(os.path.join(root, "tests", "data", "demo",
                                          "*.jsonl")))
    if not files:
        fail("tests/data/demo", "no demo data")
    n = 0
    for f in files:
        rel = os.path.relpath(f, root)
        for i, line in enumerate(open(f, encoding="utf-8"), 1):
            line = line.strip()
            if not line:
                continue
            try:
                doc = json.loads(line)
            except ValueError:
                # the demo's deliberate poison line: it must not be JSON
                # at all, or the worker would treat it as a command
                continue
            n += 1
            for e in errors(v, doc):
                fail(f"{rel}:{i}", fmt(e))
    return n


def resolve(doc, ref, where):
    if not ref.startswith("#/"):
        return None
    node = doc
    for part in ref[2:].split("/"):
        if not isinstance(node, dict) or part not in node:
            fail(where, f"unresolved $ref {ref}")
            return None
        node = node[part]
    return node


def check_asyncapi(root, schemas):
    path = os.path.join(root, "docs", "contract", "asyncapi.yaml")
    where = "docs/contract/asyncapi.yaml"
    doc = yaml.safe_load(open(path, encoding="utf-8"))
    if doc.get("asyncapi") != "3.0.0":
        fail(where, "asyncapi must be 3.0.0")
    for key in ("info", "channels", "operations", "components"):
        if not isinstance(doc.get(key), dict):
            fail(where, f"missing {key}")
            return 0
    if not doc["info"].get("title") or not doc["info"].get("version"):
        fail(where, "info needs title and version")

    # every local reference resolves
    def walk(node, at):
        if isinstance(node, dict):
            for k, val in node.items():
                if k == "$ref" and isinstance(val, str):
                    resolve(doc, val, f"{where} {at}")
                else:
                    walk(val, f"{at}/{k}")
        elif isinstance(node, list):
            for i, val in enumerate(node):
                walk(val, f"{at}/{i}")
    walk(doc, "")

    for name, op in doc["operations"].items():
        if op.get("action") not in ("send", "receive"):
            fail(where, f"operation {name}: action must be send or receive")
        ch = resolve(doc, op.get("channel", {}).get("$ref", ""), where)
        if ch is None:
            fail(where, f"operation {name}: no channel")

    dlq_headers = set()
    examples = 0
    for name, msg in doc["components"]["messages"].items():
        at = f"{where} message {name}"
        hschema = msg.get("headers")
        if isinstance(hschema, dict) and "$ref" in hschema:
            hschema = resolve(doc, hschema["$ref"], at)
        if hschema is not None:
            V.check_schema(hschema)
        payload = msg.get("payload", {})
        pschema = None
        if "schema" in payload:
            ref = payload["schema"].get("$ref", "")
            fname, _, frag = ref.partition("#")
            if fname not in schemas:
                fail(at, f"payload schema {fname} is not in docs/contract")
                continue
            pschema = schemas[fname]
            if frag:
                pschema = dict(schemas[fname])
                pschema.pop("allOf", None)
                pschema.pop("properties", None)
                pschema.pop("required", None)
                pschema["$ref"] = "#" + frag
        for ex in msg.get("examples", []):
            examples += 1
            if isinstance(hschema, dict):
                # the header schemas' $refs point into this document
                hs = json.loads(json.dumps(hschema))
                for prop, sub in hs.get("properties", {}).items():
                    if "$ref" in sub:
                        target = resolve(doc, sub["$ref"], at)
                        sub.pop("$ref")
                        sub.update(target or {})
                hv = V(hs)
                for e in hv.iter_errors(ex.get("headers", {})):
                    fail(f"{at} example {ex.get('name')}", fmt(e))
            if pschema is not None:
                for e in V(pschema).iter_errors(ex.get("payload")):
                    fail(f"{at} example {ex.get('name')}", fmt(e))
        if name == "deadLetter" and isinstance(hschema, dict):
            dlq_headers = set(hschema.get("required", []))
    want = {"orderd-error", "orderd-source-topic",
            "orderd-source-partition", "orderd-source-offset"}
    if dlq_headers != want:
        fail(where, f"dead letters must require headers {sorted(want)}")
    return examples


def check_events(d, schemas):
    v = validator(schemas, "event.schema.json")
    files = sorted(glob.glob(os.path.join(d, "*.jsonl")))
    n = 0
    types = {}
    for f in files:
        for i, line in enumerate(open(f, encoding="utf-8"), 1):
            if not line.strip():
                continue
            n += 1
            where = f"{os.path.basename(f)}:{i}"
            try:
                ev = json.loads(line)
            except ValueError as ex:
                fail(where, f"not JSON: {ex}")
                continue
            types[ev.get("type")] = types.get(ev.get("type"), 0) + 1
            for e in errors(v, ev):
                fail(where, f"{fmt(e)} in {line.strip()[:400]}")
    return n, len(files), types


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in ("docs", "events", "reset"):
        print(__doc__, file=sys.stderr)
        return 2
    d = os.environ.get("ORDERD_TEST_EVENTS_DIR", "")
    if sys.argv[1] != "docs" and not d:
        print("ORDERD_TEST_EVENTS_DIR is not set (scripts/test sets it): "
              "no events to check", file=sys.stderr)
        return 77
    if sys.argv[1] == "reset":
        os.makedirs(d, exist_ok=True)
        for f in glob.glob(os.path.join(d, "*.jsonl")):
            os.remove(f)
        return 0
    root = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    schemas = load_schemas(root)
    if sys.argv[1] == "docs":
        nb = check_contract_md(root, schemas)
        nd = check_demo(root, schemas)
        na = check_asyncapi(root, schemas)
        summary = (f"{nb} examples in docs/CONTRACT.md, {nd} demo commands, "
                   f"{na} AsyncAPI examples")
    else:
        n, nfiles, types = check_events(d, schemas)
        if n == 0:
            fail(d, "no events recorded: the harness hook did not run")
        summary = (f"{n} events from {nfiles} test processes: " +
                   ", ".join(f"{k} {c}" for k, c in sorted(types.items(),
                             key=lambda kv: str(kv[0]))))
    for f in failures:
        print(f, file=sys.stderr)
    print(("FAILED: " if failures else "ok: ") + summary +
          (f" ({len(failures)} failures)" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
