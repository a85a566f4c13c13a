#!/usr/bin/env python3
"""An independent RFC 9421 signer of a ccnode-to-ccnode request.

It shares no code with ccnode: the Python standard library (hashlib,
base64, json, time, secrets) and the `cryptography` package for Ed25519. It
follows RFC 9421 (HTTP Message Signatures: signature base, section 2.5;
Ed25519, section 3.3.6), RFC 9530 (Content-Digest, sha-256) and RFC 8941
(structured-field strings), with the components and parameters that
docs/PROTOCOL.md ("Signed requests between ccnodes") names.

Usage: httpsig_signer.py SEED_B64 KEYID METHOD URL [--header NAME:VALUE]...
                         [--body TEXT] [--created-offset SECONDS] [--nonce TEXT]
SEED_B64 is the 32-byte Ed25519 seed in base64; KEYID the signer's verifier
key as its GET /node/key answers it. Prints a JSON object of the headers to
add: content-digest, date, signature-input, signature.
"""

import argparse
import base64
import hashlib
import json
import secrets
import time
from email.utils import formatdate
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def sf_string(text):
    """An RFC 8941 sf-string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("seed")
    parser.add_argument("keyid")
    parser.add_argument("method")
    parser.add_argument("url")
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--body", default="")
    parser.add_argument("--created-offset", type=int, default=0)
    parser.add_argument("--nonce", default=None)
    args = parser.parse_args()

    key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(args.seed))
    url = urlsplit(args.url)
    headers = {}
    for pair in args.header:
        name, _, value = pair.partition(":")
        headers[name.strip().lower()] = value.strip()
    digest = base64.b64encode(hashlib.sha256(args.body.encode()).digest()).decode()
    headers["content-digest"] = "sha-256=:" + digest + ":"
    created = int(time.time()) + args.created_offset
    headers["date"] = formatdate(created, usegmt=True)

    # RFC 9421 section 2.2: derived components.
    derived = {"@method": args.method.upper(), "@path": url.path or "/", "@query": "?" + url.query}
    components = ["@method", "@path"]
    if url.query:
        components.append("@query")
    components += ["content-digest", "date", "cc-node"]
    if "last-hash" in headers:
        components.append("last-hash")

    nonce = args.nonce or secrets.token_hex(16)
    params = "(" + " ".join(sf_string(c) for c in components) + ")"
    params += ";created=%d;keyid=%s;nonce=%s;alg=%s" % (
        created, sf_string(args.keyid), sf_string(nonce), sf_string("ed25519"))
    # RFC 9421 section 2.5: one line per component, then @signature-params, no final newline.
    lines = []
    for c in components:
        value = derived[c] if c.startswith("@") else headers[c]
        lines.append("%s: %s" % (sf_string(c), value))
    lines.append('"@signature-params": ' + params)
    base = "\n".join(lines).encode()
    signature = base64.b64encode(key.sign(base)).decode()
    out = {
        "content-digest": headers["content-digest"],
        "date": headers["date"],
        "signature-input": "py=" + params,
        "signature": "py=:" + signature + ":",
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
