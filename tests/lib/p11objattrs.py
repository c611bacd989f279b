#!/usr/bin/env python3
"""Print what import tests check on every object of one token, read through ctypes (no project code).

One line per object, sorted:
    cert    <id> <label> cat=<n|-> subject=<ok|bad|-> issuer=<ok|bad|-> serial=<HEX|-> sha256=<hex>
    privkey <id> <label> sensitive=<0|1|-> extractable=<0|1|-> private=<0|1|-> sign=<0|1|->
    pubkey  <id> <label>
CKA_SUBJECT and CKA_ISSUER are "ok" when they equal the Names inside CKA_VALUE byte for byte, and
serial is the INTEGER in CKA_SERIAL_NUMBER (DER) as openssl prints serials.

Usage: p11objattrs.py MODULE TOKEN_LABEL      (PIN from env TC_P11CERTS_PIN)
"""
import ctypes
import hashlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import p11certs as p  # noqa: E402

CKA_SUBJECT, CKA_ISSUER, CKA_SERIAL_NUMBER = 0x101, 0x81, 0x82
CKA_SENSITIVE, CKA_EXTRACTABLE, CKA_PRIVATE, CKA_SIGN = 0x103, 0x162, 0x2, 0x108


def tlv(b, i):
    """(tag, start of value, end of value) of the DER element at i."""
    tag, n = b[i], b[i + 1]
    i += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(b[i:i + k], "big")
        i += k
    return tag, i, i + n


def names(cert):
    _, s, _ = tlv(cert, 0)          # Certificate
    _, s, e = tlv(cert, s)          # TBSCertificate
    fields = []
    i = s
    while i < e:
        tag, vs, ve = tlv(cert, i)
        fields.append((tag, cert[i:ve]))
        i = ve
    if fields[0][0] == 0xA0:       # [0] version
        fields = fields[1:]
    # serial, signature, issuer, validity, subject
    return fields[2][1], fields[4][1]


def flag(v):
    return "-" if v is None else str(int(v != b"\0"))


def main(module, token):
    lib = p.bind(ctypes.CDLL(module))
    lib.C_Initialize(None)
    sess = p.CK_SESSION_HANDLE(0)
    out = []
    try:
        slot = p.find_slot(lib, token)
        p.check(lib.C_OpenSession(slot, p.CKF_SERIAL_SESSION, None, None, ctypes.byref(sess)),
                "C_OpenSession")
        pin = os.environ["TC_P11CERTS_PIN"].encode()
        p.check(lib.C_Login(sess, p.CKU_USER, pin, len(pin)), "C_Login")
        p.check(lib.C_FindObjectsInit(sess, None, 0), "C_FindObjectsInit")
        handles = []
        batch = (p.CK_OBJECT_HANDLE * 64)()
        while True:
            n = p.CK_ULONG(0)
            p.check(lib.C_FindObjects(sess, batch, 64, ctypes.byref(n)), "C_FindObjects")
            if n.value == 0:
                break
            handles.extend(batch[i] for i in range(n.value))
        lib.C_FindObjectsFinal(sess)
        for h in handles:
            cls = int.from_bytes(p.get_attr(lib, sess, h, p.CKA_CLASS), sys.byteorder)
            oid = (p.get_attr(lib, sess, h, p.CKA_ID) or b"").hex() or "-"
            label = (p.get_attr(lib, sess, h, p.CKA_LABEL) or b"").decode("utf-8", "replace")
            label = label.replace(" ", "_") or "-"
            if cls == 1:
                value = p.get_attr(lib, sess, h, p.CKA_VALUE)
                issuer, subject = names(value)
                cat = p.get_attr(lib, sess, h, p.CKA_CERTIFICATE_CATEGORY)
                subj = p.get_attr(lib, sess, h, CKA_SUBJECT)
                iss = p.get_attr(lib, sess, h, CKA_ISSUER)
                ser = p.get_attr(lib, sess, h, CKA_SERIAL_NUMBER)
                serial = "-"
                if ser:
                    _, s, e = tlv(ser, 0)
                    serial = ser[s:e].hex().upper()
                    if len(serial) > 2 and serial.startswith("00"):
                        serial = serial[2:]
                out.append("cert %s %s cat=%s subject=%s issuer=%s serial=%s sha256=%s" % (
                    oid, label, int.from_bytes(cat, sys.byteorder) if cat else "-",
                    "-" if subj is None else ("ok" if subj == subject else "bad"),
                    "-" if iss is None else ("ok" if iss == issuer else "bad"),
                    serial, hashlib.sha256(value).hexdigest()))
            elif cls == 3:
                out.append("privkey %s %s sensitive=%s extractable=%s private=%s sign=%s" % (
                    oid, label, flag(p.get_attr(lib, sess, h, CKA_SENSITIVE)),
                    flag(p.get_attr(lib, sess, h, CKA_EXTRACTABLE)),
                    flag(p.get_attr(lib, sess, h, CKA_PRIVATE)),
                    flag(p.get_attr(lib, sess, h, CKA_SIGN))))
            elif cls == 2:
                out.append("pubkey %s %s" % (oid, label))
        lib.C_Logout(sess)
    finally:
        if sess.value:
            lib.C_CloseSession(sess)
        lib.C_Finalize(None)
    for line in sorted(out):
        print(line)


if __name__ == "__main__":
    try:
        main(sys.argv[1], sys.argv[2])
    except (p.P11Error, OSError, KeyError, IndexError) as e:
        sys.exit("p11objattrs: %s" % e)
