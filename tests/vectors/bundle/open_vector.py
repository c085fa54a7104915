#!/usr/bin/env python3
"""An independent reader of the bundle test vector, written from
docs/FORMAT.md and docs/CRYPTO.md (not from the C code): decrypts
payload.enc with the vector's fixed CEK, parses the framing, checks every
item against the index and the index against the manifest.  TEST ONLY.

    python3 open_vector.py BUNDLE.sbx [OUTDIR]

Needs Python 3 and the `cryptography` package."""
import hashlib, json, os, sys, tarfile
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

CEK = bytes(range(0x40, 0x60))          # the vector's content key (README)

def entries(path):
    with tarfile.open(path, "r:") as t:
        names = [m.name for m in t.getmembers()]
        assert names == ["manifest.json", "manifest.sig", "identity.sbxi", "payload.enc"], names
        return {n: t.extractfile(n).read() for n in names}

def stream_decrypt(cek, ad, ct):
    h = ct[:40]
    assert h[:8] == b"SBXS\x01\x01\x10\x00", h[:8]
    k = HKDF(hashes.SHA256(), 32, h[8:40], b"sealbox-stream-v1\0" + h[:8]).derive(cek)
    aead, body, out, i = AESGCM(k), ct[40:], b"", 0
    size = 65536 + 16
    while True:
        chunk, body = body[:size], body[size:]
        final = len(body) == 0
        out += aead.decrypt(i.to_bytes(11, "big") + bytes([final]), chunk, ad)
        i += 1
        if final:
            return out

def frames(pt):
    assert pt[:5] == b"SBXP\x01"
    u32 = lambda b, o: int.from_bytes(b[o:o + 4], "big")
    items, data, off, index = [], {}, 5, None
    while off < len(pt):
        t = pt[off]; off += 1
        if t == 1:
            no, plen = u32(pt, off), int.from_bytes(pt[off + 4:off + 6], "big")
            assert no == len(items)
            items.append(pt[off + 6:off + 6 + plen].decode()); data[no] = b""
            off += 6 + plen
        elif t == 2:
            no, n = u32(pt, off), u32(pt, off + 4)
            assert no in (0, 1, len(items) - 1) and 1 <= n <= 1 << 20
            data[no] += pt[off + 8:off + 8 + n]; off += 8 + n
        elif t == 3:
            n = u32(pt, off); index = pt[off + 4:off + 4 + n]; off += 4 + n
            assert off == len(pt), "bytes after the index"
        else:
            raise ValueError("frame type %d" % t)
    return items, data, index

def check_index(index, items, data):
    assert int.from_bytes(index[:4], "big") == len(items)
    off = 4
    for no, path in enumerate(items):
        plen = int.from_bytes(index[off:off + 2], "big")
        assert index[off + 2:off + 2 + plen].decode() == path
        size = int.from_bytes(index[off + 2 + plen:off + 10 + plen], "big")
        digest = index[off + 10 + plen:off + 42 + plen]
        assert size == len(data[no]) and digest == hashlib.sha256(data[no]).digest(), path
        off += 42 + plen
    assert off == len(index)

def main():
    e = entries(sys.argv[1])
    m = json.loads(e["manifest.json"])
    assert hashlib.sha256(e["payload.enc"]).hexdigest() == m["payload"]["ciphertext_sha256"]
    ad = b"sealbox-payload-v1\0" + bytes.fromhex(m["appliance_id"]) + m["case"].encode()
    pt = stream_decrypt(CEK, ad, e["payload.enc"])
    assert len(pt) == m["payload"]["plaintext_bytes"]
    items, data, index = frames(pt)
    check_index(index, items, data)
    assert hashlib.sha256(index).hexdigest() == m["payload"]["index_sha256"]
    assert len(items) == m["payload"]["items"]
    print("bundle id", hashlib.sha256(e["manifest.json"]).hexdigest())
    for no, path in enumerate(items):
        print("%d %-28s %6d %s" % (no, path, len(data[no]), hashlib.sha256(data[no]).hexdigest()))
        if len(sys.argv) > 2:
            dst = os.path.join(sys.argv[2], path)
            os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
            with open(dst, "wb") as f:
                f.write(data[no])
    print("OK")

if __name__ == "__main__":
    main()
