"""The hash value: field -> value, in insertion order."""
from __future__ import annotations

from typing import Final

# Redis 7.0 defaults: hash-max-listpack-entries / hash-max-listpack-value
MAX_LISTPACK_ENTRIES: Final = 128
MAX_LISTPACK_VALUE: Final = 64
BASE_BYTES: Final = 232          # the object, its dict and the dict's first table
ENTRY_BYTES: Final = 116         # two bytes headers (33 each) and a dict entry at load 2/3


class Hash:
    __slots__ = ("fields", "nbytes", "big", "removed")
    type_name = b"hash"

    def __init__(self) -> None:
        self.fields: dict[bytes, bytes] = {}
        self.nbytes = BASE_BYTES
        self.big = False          # converted to a hashtable: never converts back, as Redis
        self.removed = 0          # fields ever deleted: HSCAN's cursor (hypercache/types/scan.py)

    @property
    def encoding(self) -> bytes:
        return b"hashtable" if self.big else b"listpack"

    def __len__(self) -> int:
        return len(self.fields)

    def set(self, field: bytes, value: bytes) -> bool:
        """Set a field; True when it is new."""
        fields = self.fields
        old = fields.get(field)
        fields[field] = value
        if old is None:
            self.nbytes += len(field) + len(value) + ENTRY_BYTES
            if not self.big and (len(fields) > MAX_LISTPACK_ENTRIES or len(field) > MAX_LISTPACK_VALUE
                                 or len(value) > MAX_LISTPACK_VALUE):
                self.big = True
            return True
        self.nbytes += len(value) - len(old)
        if not self.big and len(value) > MAX_LISTPACK_VALUE:
            self.big = True
        return False

    def delete(self, field: bytes) -> bool:
        value = self.fields.pop(field, None)
        if value is None:
            return False
        self.removed += 1
        self.nbytes -= len(field) + len(value) + ENTRY_BYTES
        return True

    def copy(self) -> "Hash":
        other = Hash()
        other.fields = dict(self.fields)
        other.nbytes = self.nbytes
        other.big = self.big
        return other
