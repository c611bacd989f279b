#!/usr/bin/env python3
"""Dump the value of every certificate object on one PKCS#11 token, for test snapshots.

pkcs11-tool can list objects but can only read back the *first* object matching an id/label,
so two certificates sharing CKA_ID and CKA_LABEL (a renewed credential kept side by side) cannot
be told apart with it.  This helper talks to the module directly through ctypes (no project code
involved) and prints one line per certificate object:

    <id hex, lowercase, "-" if empty>\t<sha256 of CKA_VALUE, lowercase>\t<category or ->\t<label>

Usage: p11certs.py MODULE TOKEN_LABEL [PIN]      (PIN may also come from env TC_P11CERTS_PIN)
       p11certs.py --export DIR MODULE TOKEN_LABEL [PIN]   also writes DIR/<n>.der
Exit status: 0 ok, 1 any PKCS#11 error or token not found (message on stderr).
"""

import ctypes
import hashlib
import os
import sys

CK_ULONG = ctypes.c_ulong
CK_RV = CK_ULONG
CK_SESSION_HANDLE = CK_ULONG
CK_OBJECT_HANDLE = CK_ULONG

CKR_OK = 0x0
CKR_ATTRIBUTE_SENSITIVE = 0x11
CKR_ATTRIBUTE_TYPE_INVALID = 0x12
CKR_USER_ALREADY_LOGGED_IN = 0x100
CKR_CRYPTOKI_ALREADY_INITIALIZED = 0x191

CKF_SERIAL_SESSION = 0x4
CKU_USER = 1
CKA_CLASS = 0x0
CKA_LABEL = 0x3
CKA_VALUE = 0x11
CKA_CERTIFICATE_CATEGORY = 0x87
CKA_ID = 0x102
CKO_CERTIFICATE = 0x1
CK_UNAVAILABLE_INFORMATION = CK_ULONG(-1).value

# CK_TOKEN_INFO starts with label[32]; the rest is read into a generous opaque buffer.
TOKEN_INFO_SIZE = 1024


class CK_ATTRIBUTE(ctypes.Structure):
    _fields_ = [("type", CK_ULONG), ("pValue", ctypes.c_void_p), ("ulValueLen", CK_ULONG)]


class P11Error(Exception):
    pass


def check(rv, what):
    if rv != CKR_OK:
        raise P11Error("%s failed: CKR 0x%lx" % (what, rv))


def bind(lib):
    sigs = {
        "C_Initialize": [ctypes.c_void_p],
        "C_Finalize": [ctypes.c_void_p],
        "C_GetSlotList": [ctypes.c_ubyte, ctypes.POINTER(CK_ULONG), ctypes.POINTER(CK_ULONG)],
        "C_GetTokenInfo": [CK_ULONG, ctypes.c_void_p],
        "C_OpenSession": [CK_ULONG, CK_ULONG, ctypes.c_void_p, ctypes.c_void_p,
                          ctypes.POINTER(CK_SESSION_HANDLE)],
        "C_CloseSession": [CK_SESSION_HANDLE],
        "C_Login": [CK_SESSION_HANDLE, CK_ULONG, ctypes.c_char_p, CK_ULONG],
        "C_Logout": [CK_SESSION_HANDLE],
        "C_FindObjectsInit": [CK_SESSION_HANDLE, ctypes.POINTER(CK_ATTRIBUTE), CK_ULONG],
        "C_FindObjects": [CK_SESSION_HANDLE, ctypes.POINTER(CK_OBJECT_HANDLE), CK_ULONG,
                          ctypes.POINTER(CK_ULONG)],
        "C_FindObjectsFinal": [CK_SESSION_HANDLE],
        "C_GetAttributeValue": [CK_SESSION_HANDLE, CK_OBJECT_HANDLE,
                                ctypes.POINTER(CK_ATTRIBUTE), CK_ULONG],
    }
    for name, args in sigs.items():
        fn = getattr(lib, name)
        fn.argtypes = args
        fn.restype = CK_RV
    return lib


def find_slot(lib, token_label):
    count = CK_ULONG(0)
    check(lib.C_GetSlotList(1, None, ctypes.byref(count)), "C_GetSlotList")
    slots = (CK_ULONG * max(count.value, 1))()
    check(lib.C_GetSlotList(1, slots, ctypes.byref(count)), "C_GetSlotList")
    for i in range(count.value):
        info = ctypes.create_string_buffer(TOKEN_INFO_SIZE)
        if lib.C_GetTokenInfo(slots[i], info) != CKR_OK:
            continue
        # Labels are blank-padded, and some modules pad with NULs instead.
        label = info.raw[:32].rstrip(b" \0").decode("utf-8", "replace")
        if label == token_label:
            return slots[i]
    raise P11Error("no token labelled %r" % token_label)


def get_attr(lib, sess, obj, attr_type):
    """Return the attribute's bytes, or None when the token does not have/show it."""
    attr = CK_ATTRIBUTE(attr_type, None, 0)
    rv = lib.C_GetAttributeValue(sess, obj, ctypes.byref(attr), 1)
    if rv in (CKR_ATTRIBUTE_TYPE_INVALID, CKR_ATTRIBUTE_SENSITIVE):
        return None
    check(rv, "C_GetAttributeValue(size of 0x%x)" % attr_type)
    if attr.ulValueLen == CK_UNAVAILABLE_INFORMATION:
        return None
    if attr.ulValueLen > 16 * 1024 * 1024:
        raise P11Error("attribute 0x%x claims %d bytes" % (attr_type, attr.ulValueLen))
    buf = ctypes.create_string_buffer(max(attr.ulValueLen, 1))
    attr.pValue = ctypes.cast(buf, ctypes.c_void_p)
    check(lib.C_GetAttributeValue(sess, obj, ctypes.byref(attr), 1),
          "C_GetAttributeValue(0x%x)" % attr_type)
    return buf.raw[:attr.ulValueLen]


def dump(module, token_label, pin, export_dir):
    lib = bind(ctypes.CDLL(module))
    rv = lib.C_Initialize(None)
    if rv not in (CKR_OK, CKR_CRYPTOKI_ALREADY_INITIALIZED):
        check(rv, "C_Initialize")
    sess = CK_SESSION_HANDLE(0)
    lines = []
    try:
        slot = find_slot(lib, token_label)
        check(lib.C_OpenSession(slot, CKF_SERIAL_SESSION, None, None, ctypes.byref(sess)),
              "C_OpenSession")
        if pin is not None:
            pin_b = pin.encode()
            rv = lib.C_Login(sess, CKU_USER, pin_b, len(pin_b))
            if rv != CKR_USER_ALREADY_LOGGED_IN:
                check(rv, "C_Login")
        cls = CK_ULONG(CKO_CERTIFICATE)
        tmpl = CK_ATTRIBUTE(CKA_CLASS, ctypes.cast(ctypes.byref(cls), ctypes.c_void_p),
                            ctypes.sizeof(cls))
        check(lib.C_FindObjectsInit(sess, ctypes.byref(tmpl), 1), "C_FindObjectsInit")
        handles = []
        try:
            batch = (CK_OBJECT_HANDLE * 32)()
            while True:
                n = CK_ULONG(0)
                check(lib.C_FindObjects(sess, batch, 32, ctypes.byref(n)), "C_FindObjects")
                if n.value == 0:
                    break
                handles.extend(batch[i] for i in range(n.value))
                if len(handles) > 100000:
                    raise P11Error("too many certificate objects")
        finally:
            lib.C_FindObjectsFinal(sess)
        for idx, h in enumerate(handles):
            value = get_attr(lib, sess, h, CKA_VALUE)
            if value is None:
                raise P11Error("certificate object without readable CKA_VALUE")
            cid = get_attr(lib, sess, h, CKA_ID) or b""
            label = (get_attr(lib, sess, h, CKA_LABEL) or b"").decode("utf-8", "replace")
            cat = get_attr(lib, sess, h, CKA_CERTIFICATE_CATEGORY)
            cat_s = str(int.from_bytes(cat, sys.byteorder)) if cat else "-"
            lines.append("%s\t%s\t%s\t%s" % (cid.hex() or "-", hashlib.sha256(value).hexdigest(),
                                             cat_s, label.replace("\t", " ").replace("\n", " ")))
            if export_dir is not None:
                with open(os.path.join(export_dir, "%d.der" % idx), "wb") as f:
                    f.write(value)
        if pin is not None:
            lib.C_Logout(sess)
    finally:
        if sess.value:
            lib.C_CloseSession(sess)
        lib.C_Finalize(None)
    for line in lines:
        print(line)


def main(argv):
    export_dir = None
    if len(argv) > 1 and argv[1] == "--export":
        if len(argv) < 3:
            sys.stderr.write(__doc__)
            return 1
        export_dir = argv[2]
        argv = argv[:1] + argv[3:]
    if len(argv) not in (3, 4):
        sys.stderr.write(__doc__)
        return 1
    pin = argv[3] if len(argv) == 4 else os.environ.get("TC_P11CERTS_PIN")
    try:
        dump(argv[1], argv[2], pin, export_dir)
    except (P11Error, OSError) as e:
        sys.stderr.write("p11certs: %s\n" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
