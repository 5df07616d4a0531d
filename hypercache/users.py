"""The node's ACL users by name, the ACL LOG, and the ACL file's lines (read and written).

Pure: the file's text comes in and goes out as a string (commands/acl.py does the I/O), the
log takes `now_ms`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .acl import Catalog, RuleError, User, apply, default_user, merge_selectors, new_user
from .acl_text import describe_user


GROUPING_WINDOW_MS = 60_000     # ACL_LOG_GROUPING_MAX_TIME_DELTA
GROUPING_LOOKBACK = 10          # how many recent entries a new one may join


@dataclass(slots=True, eq=False)
class LogEntry:
    count: int
    reason: str
    context: str
    object: bytes
    username: bytes
    created_ms: int
    client_info: bytes


@dataclass(slots=True, eq=False)
class AclLog:
    """ACL LOG's entries, newest first; a repeat within a minute is counted, not added (addACLLogEntry)."""
    max_len: int = 128
    entries: list[LogEntry] = field(default_factory=list)

    def add(self, reason: str, context: str, obj: bytes, username: bytes, now_ms: int,
            client_info: bytes) -> None:
        for i, entry in enumerate(self.entries[:GROUPING_LOOKBACK]):
            if (entry.reason == reason and entry.context == context and entry.object == obj
                    and entry.username == username and now_ms - entry.created_ms < GROUPING_WINDOW_MS):
                entry.count += 1
                entry.created_ms = now_ms
                entry.client_info = client_info
                del self.entries[i]
                self.entries.insert(0, entry)
                return
        self.entries.insert(0, LogEntry(1, reason, context, obj, username, now_ms, client_info))
        del self.entries[self.max_len:]

    def reset(self) -> None:
        self.entries.clear()


class Users:
    """Every user by name, the ACL log, and whether any user is restricted (then the dispatcher checks)."""

    def __init__(self, catalog: Catalog, requirepass: str = "") -> None:
        self.catalog = catalog
        self.users: dict[bytes, User] = {b"default": default_user(catalog, requirepass)}
        self.log = AclLog()
        self.checking = False       # some user is restricted: calls of its sessions are checked
        self.refresh()

    @property
    def default(self) -> User:
        return self.users[b"default"]

    def refresh(self) -> None:
        self.checking = not all(user.unrestricted for user in self.users.values())

    def setuser(self, name: bytes, ops: list[bytes]) -> User:
        """ACL SETUSER: all rules apply or none (a copy is changed, then put in place)."""
        current = self.users.get(name)
        user = current.copy() if current is not None else new_user(name, self.catalog)
        for op in merge_selectors(ops):
            try:
                apply(user, op, self.catalog)
            except RuleError as error:
                raise RuleError(f"Error in ACL SETUSER modifier '{op.decode('utf-8', 'replace')}': {error}") from None
        if current is not None:     # sessions hold the User: change it in place
            for attr in User.__slots__:
                setattr(current, attr, getattr(user, attr))
            user = current
        else:
            self.users[name] = user
        self.refresh()
        return user

    def authenticate(self, name: bytes, password: bytes) -> User | None:
        user = self.users.get(name)
        return user if user is not None and user.password_ok(password) else None

    def parse_file(self, text: str, path: str) -> dict[bytes, User]:
        """The users an ACL file defines (ACLLoadFromFile); RuleError listing every bad line."""
        users: dict[bytes, User] = {}
        errors = []
        for number, line in enumerate(text.split("\n"), 1):
            line = line.strip(" \t\r\n")
            if not line or line.startswith("#"):
                continue
            words = line.encode("utf-8", "surrogateescape").split()
            if words[0] != b"user":
                errors.append(f"{path}:{number}: line should start with user keyword")
                continue
            if len(words) < 2 or not valid_name(words[1]):
                errors.append(f"{path}:{number}: Usernames can't contain spaces or null characters")
                continue
            if words[1] in users:
                errors.append(f"{path}:{number}: Duplicate user '{words[1].decode('utf-8', 'replace')}' found")
                continue
            user = new_user(words[1], self.catalog)
            try:
                for op in merge_selectors(words[2:]):
                    try:
                        apply(user, op, self.catalog)
                    except RuleError as error:
                        raise RuleError(f"Error in user declaration '{op.decode('utf-8', 'replace')}': {error}") from None
            except RuleError as error:
                errors.append(f"{path}:{number}: {error}")
                continue
            users[words[1]] = user
        if errors:
            raise RuleError(" ".join(errors))
        if b"default" not in users:     # not in the file: the default user as Redis creates it
            users[b"default"] = default_user(self.catalog)
        return users

    def replace(self, users: dict[bytes, User]) -> None:
        self.users = users
        self.refresh()

    def file_text(self) -> str:
        """The ACL file ACL SAVE writes: one `user` line per user, as ACL LIST shows them."""
        return "".join(f"user {name.decode('utf-8', 'replace')} {describe_user(user, self.catalog)}\n"
                       for name, user in sorted(self.users.items()))


def valid_name(name: bytes) -> bool:
    return bool(name) and b" " not in name and b"\x00" not in name
