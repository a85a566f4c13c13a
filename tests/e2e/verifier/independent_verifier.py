#!/usr/bin/env python3
"""An independent verifier of a ccnode's checkpoints and proofs.

It shares no code with ccnode: only the Python standard library (hashlib,
base64, json) and the `cryptography` package for Ed25519. It follows the
public specifications: C2SP signed-note and tlog-checkpoint (signatures,
verifier keys, checkpoints), RFC 9162 section 2.1.3.2 and 2.1.4.2 (inclusion
and consistency proofs over RFC 6962 hashing), and ccnode's documented
balances tree (docs/PROTOCOL.md, "Checkpoints and proofs").

Usage: independent_verifier.py VKEY FILE...   (exit 0: all verified; 1: one failed)
Each FILE is a signed checkpoint (text) or the JSON of /proof/inclusion,
/proof/consistency or /statement.
"""

import base64
import hashlib
import json
import struct
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


class Failure(Exception):
    pass


def b64(text):
    raw = base64.b64decode(text, validate=True)
    if base64.b64encode(raw).decode() != text:
        raise Failure("non-canonical base64")
    return raw


def parse_vkey(vkey):
    name, key_id, key = vkey.strip().split("+", 2)
    raw = b64(key)
    if len(raw) != 33 or raw[0] != 0x01:
        raise Failure("not an Ed25519 verifier key")
    expected = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    if expected.hex() != key_id:
        raise Failure("the verifier key's id does not match its name and key")
    return name, expected, Ed25519PublicKey.from_public_bytes(raw[1:])


def verify_note(note, vkey):
    """Returns the checkpoint lines of a note signed by vkey."""
    name, key_id, public = vkey
    cut = note.rfind("\n\n")
    if cut < 0:
        raise Failure("no signature block")
    text, block = note[: cut + 1], note[cut + 2 :]
    signed = False
    for line in block.split("\n"):
        if not line:
            continue
        if not line.startswith("\u2014 "):
            raise Failure("malformed signature line")
        sig_name, sig = line[2:].split(" ", 1)
        raw = b64(sig)
        if sig_name == name and raw[:4] == key_id:
            try:
                public.verify(raw[4:], text.encode())
            except InvalidSignature:
                raise Failure("the node's signature does not verify")
            signed = True
    if not signed:
        raise Failure("no signature by the node's key")
    lines = text[:-1].split("\n")
    if lines[0] != name:
        raise Failure("the origin is not the key's name")
    size = int(lines[1])
    if str(size) != lines[1]:
        raise Failure("bad tree size")
    root = b64(lines[2])
    if len(root) != 32:
        raise Failure("bad root")
    extensions = lines[3:]
    return size, root, extensions


def node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def inclusion_root(index, size, leaf, proof):
    """RFC 9162 2.1.3.2."""
    if index >= size:
        raise Failure("index beyond size")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise Failure("inclusion proof too long")
        if fn % 2 == 1 or fn == sn:
            r = node(p, r)
            while fn % 2 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise Failure("inclusion proof too short")
    return r


def check_consistency(first, second, first_hash, second_hash, proof):
    """RFC 9162 2.1.4.2."""
    if first == second:
        if proof or first_hash != second_hash:
            raise Failure("equal sizes need equal roots and no proof")
        return
    if first == 0 or first > second or not proof:
        raise Failure("bad sizes or empty proof")
    if first & (first - 1) == 0:
        proof = [first_hash] + proof
    fn, sn = first - 1, second - 1
    while fn % 2 == 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            raise Failure("consistency proof too long")
        if fn % 2 == 1 or fn == sn:
            fr = node(c, fr)
            sr = node(c, sr)
            while fn % 2 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0 or fr != first_hash or sr != second_hash:
        raise Failure("the consistency proof does not verify")


def i128(value):
    return int(value).to_bytes(16, "big", signed=True)


def balance_root(proof):
    """ccnode's balances tree: leaves and nodes carry sums (docs/PROTOCOL.md). Returns the top node."""
    leaf = proof["leaf"]
    account = leaf["account"].encode()
    balance = int(leaf["balance_micros"])
    h = hashlib.sha256(
        b"\x00" + struct.pack(">I", len(account)) + account + i128(balance)
        + i128(leaf["min_micros"]) + i128(leaf["max_micros"])
    ).digest()
    current = (h, balance)

    def parent(left, right):
        return (hashlib.sha256(b"\x01" + left[0] + i128(left[1]) + right[0] + i128(right[1])).digest(), left[1] + right[1])

    fn, sn = proof["index"], proof["count"] - 1
    if proof["index"] >= proof["count"]:
        raise Failure("balance index beyond count")
    for p in proof["path"]:
        sibling = (b64(p["hash"]), int(p["sum_micros"]))
        if sn == 0:
            raise Failure("balance path too long")
        if fn % 2 == 1 or fn == sn:
            current = parent(sibling, current)
            while fn % 2 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            current = parent(current, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise Failure("balance path too short")
    return current


def exact(obj, keys):
    if not isinstance(obj, dict) or set(obj) != set(keys):
        raise Failure("unexpected or missing fields")


def verify(text, vkey):
    if not text.lstrip().startswith("{"):
        size, _, _ = verify_note(text, vkey)
        return "checkpoint of size %d" % size
    doc = json.loads(text)
    kind = doc.get("type")
    if kind == "inclusion":
        exact(doc, ["type", "seq", "size", "leaf_index", "leaf_hash", "root", "proof", "checkpoint"])
        if doc["leaf_index"] != doc["seq"] - 1:
            raise Failure("leaf_index is not seq - 1")
        size, root, _ = verify_note(doc["checkpoint"], vkey)
        if doc["size"] != size:
            raise Failure("size differs from the checkpoint's")
        leaf = b64(doc["leaf_hash"])
        computed = inclusion_root(doc["seq"] - 1, size, leaf, [b64(p) for p in doc["proof"]])
        if computed != root or b64(doc["root"]) != root:
            raise Failure("the inclusion proof does not lead to the signed root")
        return "record %d in tree %d" % (doc["seq"], size)
    if kind == "consistency":
        exact(doc, ["type", "from", "to", "proof", "from_checkpoint", "to_checkpoint"])
        m, r1, _ = verify_note(doc["from_checkpoint"], vkey)
        n, r2, _ = verify_note(doc["to_checkpoint"], vkey)
        if (doc["from"], doc["to"]) != (m, n):
            raise Failure("sizes differ from the checkpoints'")
        check_consistency(m, n, r1, r2, [b64(p) for p in doc["proof"]])
        return "tree %d extends tree %d" % (n, m)
    if kind == "ccnode-statement/v1":
        exact(doc, ["type", "origin", "account", "balance", "min", "max", "size", "checkpoint", "balance_proof"])
        proof = doc["balance_proof"]
        exact(proof, ["type", "size", "index", "count", "leaf", "path", "checkpoint"])
        exact(proof["leaf"], ["account", "balance_micros", "min_micros", "max_micros"])
        if proof["type"] != "balance" or doc["origin"] != vkey[0]:
            raise Failure("not a balance proof of this node")
        size, _, extensions = verify_note(proof["checkpoint"], vkey)
        if doc["checkpoint"] != proof["checkpoint"] or doc["size"] != size or proof["size"] != size:
            raise Failure("the statement and its proof disagree")
        roots = [b64(e.split(" ", 1)[1]) for e in extensions if e.startswith("balances ")]
        if len(roots) != 1:
            raise Failure("no balances line")
        top, total = balance_root(proof)
        committed = hashlib.sha256(b"\x02" + struct.pack(">Q", proof["count"]) + i128(total) + top).digest()
        if committed != roots[0]:
            raise Failure("the balance proof does not lead to the signed balances root")
        if total != 0:
            raise Failure("the balances do not sum to zero")
        def micros(stated):
            units, _, frac = stated.lstrip("-").partition(".")
            if len(frac) > 6 or not (units + frac).isdigit():
                raise Failure("not a decimal")
            value = int(units) * 1000000 + int((frac + "000000")[:6])
            return -value if stated.startswith("-") else value

        leaf = proof["leaf"]
        for field, key in [("balance", "balance_micros"), ("min", "min_micros"), ("max", "max_micros")]:
            if micros(doc[field]) != int(leaf[key]):
                raise Failure("the stated %s is not the proven one" % field)
        if doc["account"] != leaf["account"]:
            raise Failure("the stated account is not the proven one")
        return "%s has %s at checkpoint %d" % (doc["account"], doc["balance"], size)
    raise Failure("unknown document")


def main(argv):
    vkey = parse_vkey(argv[1])
    failed = False
    for path in argv[2:]:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        try:
            print("%s: OK: %s" % (path, verify(text, vkey)))
        except (Failure, ValueError, KeyError, TypeError, IndexError) as e:
            failed = True
            print("%s: FAILED: %s" % (path, e))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
