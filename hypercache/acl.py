"""ACL users: who may run which command on which keys and channels, as Redis 7.0 decides it.

Pure: no I/O, no clock. The pieces, as Redis's acl.c names them:

- a `User` has flags (on/off, nopass, sanitize-payload), password hashes (SHA-256 hex) and
  selectors: the root selector, then any `(...)` selectors; a command is allowed when any
  selector allows it;
- a `Selector` holds the allowed commands (full names: "get", "config|get"), the first
  arguments allowed for otherwise denied commands (`+select|0`), key patterns with their
  read/write permissions (`~`, `%R~`, `%W~`) or all keys, channel patterns or all channels;
- `apply()` applies one SETUSER rule to a user, raising `RuleError` with Redis's reason;
- `check()` says whether a user may run a command with these arguments, else which rule
  denies it (command, key or channel) and at which argument;
- acl_text.py gives the rules back as ACL LIST / GETUSER print them, users.py holds the
  users by name, the ACL LOG and the ACL file.

The command universe (names, subcommands, categories) comes from a `Catalog` made once from
the command table, so this module never imports a command handler.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any, Iterable

from . import keyspecs
from .glob import glob_match

READ, WRITE = 1, 2
ALL_PERMISSIONS = READ | WRITE
# check() results, ordered as Redis orders them: the highest denial is the one reported
OK, DENIED_CMD, DENIED_KEY, DENIED_AUTH, DENIED_CHANNEL = 0, 1, 2, 3, 4
REASONS = {DENIED_CMD: "command", DENIED_KEY: "key", DENIED_AUTH: "auth", DENIED_CHANNEL: "channel"}

# Redis's category order (ACLCommandCategories): best-fit descriptions try them in it.
CATEGORIES = ("keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap",
              "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow", "blocking",
              "dangerous", "connection", "transaction", "scripting")

# Channel arguments Redis checks (getChannelsFromCommand): name -> (first index, whole tail, pattern)
CHANNEL_ARGS = {
    "publish": (1, False, False), "spublish": (1, False, False),
    "subscribe": (1, True, False), "ssubscribe": (1, True, False), "psubscribe": (1, True, True),
}

ALLKEYS_TAKEN = ("Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does "
                 "not have any effect. Try 'resetkeys' to start with an empty list of patterns")
ALLCHANNELS_TAKEN = ("Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and "
                     "does not have any effect. Try 'resetchannels' to start with an empty list of channels")
UNKNOWN_NAME = "Unknown command or category name in ACL"
BAD_HASH = "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"


class RuleError(ValueError):
    """A SETUSER rule Redis refuses; str() is Redis's reason."""


class Catalog:
    """The commands rules can name: full names in table order, subcommands, categories.

    `commands` maps a lowercase top-level name to (subcommand full names, no-auth flag);
    `categories` maps a category to the set of full names in it (subcommands included,
    and a container when its own flags put it there, as in Redis).
    """

    def __init__(self, entries: Iterable[tuple[str, list[str], list[str], bool, dict[str, list[str]]]]) -> None:
        # entries: (name, categories, subcommand names, no_auth, {sub full name: categories})
        self.top: list[str] = []
        self.subs: dict[str, list[str]] = {}
        self.parent: dict[str, str] = {}
        self.no_auth: set[str] = set()
        self.categories: dict[str, set[str]] = {cat: set() for cat in CATEGORIES}
        self.in_order: dict[str, list[str]] = {cat: [] for cat in CATEGORIES}
        for name, cats, subs, no_auth, sub_cats in entries:
            self.top.append(name)
            self.subs[name] = subs
            if no_auth:
                self.no_auth.add(name)
            for cat in cats:
                self._add(cat, name)
            for sub in subs:
                self.parent[sub] = name
                for cat in sub_cats.get(sub, ()):
                    self._add(cat, sub)
        self.all: frozenset[str] = frozenset(self.top).union(*self.subs.values())
        # acl-pubsub-default: whether a new user, selector or `reset` starts with every channel
        self.all_channels_by_default = False

    def _add(self, cat: str, name: str) -> None:
        if cat in self.categories:
            self.categories[cat].add(name)
            self.in_order[cat].append(name)

    def lookup(self, name: str) -> str | None:
        """The full name of `name` ("get", "config|get"), case-insensitive, as ACLLookupCommand."""
        name = name.lower()
        parts = name.split("|")
        if len(parts) == 1:
            return name if name in self.subs else None
        if len(parts) == 2 and name in self.parent:
            return name
        return None


@dataclass(slots=True, eq=False)
class KeyPattern:
    pattern: bytes
    flags: int
    match: Any = None       # bytes -> bool, made once (a plain prefix* is a startswith)

    def __post_init__(self) -> None:
        self.match = matcher(self.pattern)


def matcher(pattern: bytes) -> Any:
    """A test of keys against `pattern` as stringmatchlen: a literal or `literal*` needs no glob."""
    special = b"*?[\\"
    body = pattern[:-1] if pattern.endswith(b"*") else pattern
    if pattern and not any(c in special for c in body):
        if pattern.endswith(b"*"):
            return lambda key: bool(key) and key.startswith(body)   # ("*" never matches an empty key)
        return lambda key: key == pattern
    return lambda key: glob_match(pattern, key)


@dataclass(slots=True, eq=False)
class Selector:
    root: bool = False
    allowed: set[str] = field(default_factory=set)
    first_args: dict[str, list[bytes]] = field(default_factory=dict)
    all_commands: bool = False      # every command, current and future (+@all); cleared by any removal
    future: bool = False            # Redis's reserved bit: set by +@all only (describe starts "+@all")
    all_keys: bool = False
    # by pattern, in the order added (a dict: a rule naming a known pattern is found at once,
    # so 20,000 patterns in one SETUSER cost no quadratic search)
    patterns: dict[bytes, KeyPattern] = field(default_factory=dict)
    all_channels: bool = False
    channels: dict[bytes, None] = field(default_factory=dict)

    def copy(self) -> "Selector":
        return Selector(self.root, set(self.allowed), {k: list(v) for k, v in self.first_args.items()},
                        self.all_commands, self.future, self.all_keys,
                        {k: KeyPattern(p.pattern, p.flags) for k, p in self.patterns.items()}, self.all_channels,
                        dict(self.channels))


@dataclass(slots=True, eq=False)
class User:
    name: bytes
    enabled: bool = False
    nopass: bool = False
    sanitize: str = ""              # "", "sanitize-payload" or "skip-sanitize-payload"
    passwords: list[str] = field(default_factory=list)      # SHA-256 hex, in the order added
    root: Selector = field(default_factory=lambda: Selector(root=True))
    selectors: list[Selector] = field(default_factory=list)
    # the root selector allows everything: the dispatcher skips the check (and keeps its fast lane)
    unrestricted: bool = False

    def copy(self) -> "User":
        return User(self.name, self.enabled, self.nopass, self.sanitize, list(self.passwords),
                    self.root.copy(), [s.copy() for s in self.selectors], self.unrestricted)

    def refresh(self) -> None:
        root = self.root
        self.unrestricted = root.all_commands and root.all_keys and root.all_channels

    def password_ok(self, password: bytes) -> bool:
        """Whether AUTH with `password` logs in (on, and nopass or a matching hash), in constant time per hash."""
        if not self.enabled:
            return False
        if self.nopass:
            return True
        digest = hash_password(password)
        return any(hmac.compare_digest(digest, known) for known in self.passwords)


def hash_password(password: bytes) -> str:
    return hashlib.sha256(password).hexdigest()


def new_user(name: bytes, catalog: Catalog) -> User:
    """A user as ACL SETUSER creates it: off, no passwords, no keys, no channels (unless
    acl-pubsub-default says allchannels), no commands."""
    return User(name, root=Selector(root=True, all_channels=catalog.all_channels_by_default))


def default_user(catalog: Catalog, password: str = "") -> User:
    """The `default` user: on, every command, key and channel; nopass unless --requirepass gives one."""
    user = new_user(b"default", catalog)
    for rule in (b"on", b"~*", b"&*", b"+@all"):
        apply(user, rule, catalog)
    set_default_password(user, password, catalog)
    return user


def set_default_password(user: User, password: str, catalog: Catalog) -> None:
    """requirepass: `resetpass` then `>password`, or `nopass` when empty (ACLUpdateDefaultUserPassword)."""
    apply(user, b"resetpass", catalog)
    apply(user, b">" + password.encode("utf-8", "surrogateescape") if password else b"nopass", catalog)


# -- rules -------------------------------------------------------------------------------------

def merge_selectors(ops: list[bytes]) -> list[bytes]:
    """Join arguments of one `(...)` selector that the client split on spaces (ACLMergeSelectorArguments)."""
    merged: list[bytes] = []
    opening: bytes | None = None
    parts: list[bytes] = []
    for op in ops:
        if opening is None and op.startswith(b"(") and not op.endswith(b")"):
            opening, parts = op, [op]
        elif opening is not None:
            parts.append(op)
            if op.endswith(b")"):
                merged.append(b" ".join(parts))
                opening = None
        else:
            merged.append(op)
    if opening is not None:
        raise RuleError(f"Unmatched parenthesis in acl selector starting at '{opening.decode('utf-8', 'replace')}'.")
    return merged


def apply(user: User, op: bytes, catalog: Catalog) -> None:
    """Apply one SETUSER rule to `user` (in place); RuleError with Redis's reason if refused."""
    lower = op.lower()
    if lower == b"on":
        user.enabled = True
    elif lower == b"off":
        user.enabled = False
    elif lower == b"skip-sanitize-payload" or lower == b"sanitize-payload":
        user.sanitize = lower.decode()
    elif lower == b"nopass":
        user.nopass = True
        user.passwords.clear()
    elif lower == b"resetpass":
        user.nopass = False
        user.passwords.clear()
    elif op.startswith(b">") or op.startswith(b"#"):
        digest = hash_password(op[1:]) if op.startswith(b">") else _valid_hash(op[1:])
        if digest not in user.passwords:
            user.passwords.append(digest)
        user.nopass = False
    elif op.startswith(b"<") or op.startswith(b"!"):
        digest = hash_password(op[1:]) if op.startswith(b"<") else _valid_hash(op[1:])
        if digest not in user.passwords:
            raise RuleError("The password you are trying to remove from the user does not exist")
        user.passwords.remove(digest)
    elif lower == b"clearselectors":
        user.selectors.clear()
    elif lower == b"reset":
        for rule in (b"resetpass", b"resetkeys", b"resetchannels", b"off", b"sanitize-payload",
                     b"clearselectors", b"-@all"):
            apply(user, rule, catalog)
        user.root.all_channels = catalog.all_channels_by_default
    elif op.startswith(b"(") and op.endswith(b")"):
        selector = Selector(all_channels=catalog.all_channels_by_default)
        for rule in op[1:-1].split():
            apply_to_selector(selector, rule, catalog)
        user.selectors.append(selector)
    else:
        apply_to_selector(user.root, op, catalog)
    user.refresh()


def _valid_hash(text: bytes) -> str:
    if len(text) != 64 or any(c not in b"0123456789abcdef" for c in text):
        raise RuleError(BAD_HASH)
    return text.decode()


def apply_to_selector(selector: Selector, op: bytes, catalog: Catalog) -> None:
    """The selector rules: keys, channels, commands (ACLSetSelector)."""
    lower = op.lower()
    if lower == b"allkeys" or op == b"~*":
        selector.all_keys = True
        selector.patterns.clear()
    elif lower == b"resetkeys":
        selector.all_keys = False
        selector.patterns.clear()
    elif op.startswith(b"~") or op.startswith(b"%"):
        if selector.all_keys:
            raise RuleError(ALLKEYS_TAKEN)
        flags, offset = ALL_PERMISSIONS, 1
        if op.startswith(b"%"):
            flags = 0
            while offset < len(op):
                c = op[offset:offset + 1].upper()
                if c == b"R" and not flags & READ:
                    flags |= READ
                elif c == b"W" and not flags & WRITE:
                    flags |= WRITE
                elif c == b"~" and flags:
                    offset += 1
                    break
                else:
                    raise RuleError("Syntax error")
                offset += 1
            else:
                if not flags:
                    raise RuleError("Syntax error")
        pattern = op[offset:]
        if pattern == b"*" and flags == ALL_PERMISSIONS:
            selector.all_keys = True
            selector.patterns.clear()
            return
        known = selector.patterns.get(pattern)
        if known is not None:
            known.flags |= flags
        else:
            selector.patterns[pattern] = KeyPattern(pattern, flags)
    elif lower == b"allchannels" or op == b"&*":
        selector.all_channels = True
        selector.channels.clear()
    elif lower == b"resetchannels":
        selector.all_channels = False
        selector.channels.clear()
    elif op.startswith(b"&"):
        if selector.all_channels:
            raise RuleError(ALLCHANNELS_TAKEN)
        selector.channels.setdefault(op[1:], None)
    elif lower == b"allcommands" or lower == b"+@all":
        selector.allowed = set(catalog.all)
        selector.all_commands = selector.future = True
        selector.first_args.clear()
    elif lower == b"nocommands" or lower == b"-@all":
        selector.allowed = set()
        selector.all_commands = selector.future = False
        selector.first_args.clear()
    elif op[:2] in (b"+@", b"-@"):
        members = catalog.in_order.get(lower[2:].decode("utf-8", "replace"))
        if members is None:
            raise RuleError(UNKNOWN_NAME)
        for name in members:
            change(selector, name, op[:1] == b"+", catalog)
    elif op.startswith(b"+"):
        _allow(selector, op[1:].decode("utf-8", "surrogateescape"), catalog)
    elif op.startswith(b"-"):
        name = catalog.lookup(op[1:].decode("utf-8", "surrogateescape"))
        if name is None:
            raise RuleError(UNKNOWN_NAME)
        change(selector, name, False, catalog)
    else:
        raise RuleError("Syntax error")


def _allow(selector: Selector, text: str, catalog: Catalog) -> None:
    """`+name`, `+container|sub` or `+command|first-arg`."""
    if "|" not in text:
        name = catalog.lookup(text)
        if name is None:
            raise RuleError(UNKNOWN_NAME)
        change(selector, name, True, catalog)
        return
    head, _, sub = text.rpartition("|")
    parent = catalog.lookup(head)
    if parent is None:
        raise RuleError(UNKNOWN_NAME)
    if parent in catalog.parent:
        raise RuleError("Allowing first-arg of a subcommand is not supported")
    if not sub:
        raise RuleError("Syntax error")
    if catalog.subs[parent]:
        name = catalog.lookup(text)
        if name is None:
            raise RuleError(UNKNOWN_NAME)
        change(selector, name, True, catalog)
    else:       # the deprecated first-arg form: SELECT only with 0, DEBUG only OBJECT...
        allowed = selector.first_args.setdefault(parent, [])
        arg = sub.encode("utf-8", "surrogateescape")
        if all(known.lower() != arg.lower() for known in allowed):
            allowed.append(arg)


def change(selector: Selector, name: str, allow: bool, catalog: Catalog) -> None:
    """Set one command's permission; a container's carries to its subcommands (ACLChangeSelectorPerm)."""
    names = [name, *catalog.subs.get(name, ())]
    if allow:
        selector.allowed.update(names)
    else:
        selector.allowed.difference_update(names)
        selector.all_commands = False
    selector.first_args.pop(name, None)


# -- checking ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Denial:
    """Why a command is refused: DENIED_CMD / DENIED_KEY / DENIED_CHANNEL and the argument index."""
    reason: int
    index: int


def check(user: User, name: str, args: list[bytes], keys_of: Any, catalog: Catalog) -> Denial | None:
    """None if `user` may run command `name` (full name) with `args`, else the denial Redis reports.

    `keys_of(args)` gives the command table's keys, for commands Redis has no key specs for.
    Selectors are tried in order; if none allows, the highest denial wins, and among equal
    ones the one at the latest argument (ACLCheckAllUserCommandPerm).
    """
    relevant, last = DENIED_CMD, 0
    for selector in (user.root, *user.selectors):
        result, index = _check_selector(selector, name, args, keys_of, catalog)
        if result == OK:
            return None
        if result > relevant or (result == relevant and index > last):
            relevant, last = result, index
    return Denial(relevant, last)


def _check_selector(selector: Selector, name: str, args: list[bytes], keys_of: Any,
                    catalog: Catalog) -> tuple[int, int]:
    top = catalog.parent.get(name, name)
    if not selector.all_commands and top not in catalog.no_auth and name not in selector.allowed:
        allowed = selector.first_args.get(name)
        if not allowed or len(args) < 2 or all(arg.lower() != args[1].lower() for arg in allowed):
            return DENIED_CMD, 0
    if not selector.all_keys:
        found = keyspecs.keys_and_flags(name, args)
        if found is None:
            found = [(i, ("access",)) for i in _positions(args, keys_of(args))]
        for index, flags in found:
            wanted = _WANTED.get(flags)
            if wanted is None:
                wanted = _WANTED[flags] = permissions(flags)
            key = args[index]
            for p in selector.patterns.values():
                if p.flags & wanted == wanted and p.match(key):
                    break
            else:
                return DENIED_KEY, index
    channel_args = CHANNEL_ARGS.get(name)
    if channel_args is not None and not selector.all_channels:
        first, tail, is_pattern = channel_args
        for index in range(first, len(args) if tail else min(first + 1, len(args))):
            channel = args[index]
            if not any((pattern == channel) if is_pattern else glob_match(pattern, channel)
                       for pattern in selector.channels):
                return DENIED_CHANNEL, index
    return OK, 0


_WANTED: dict[tuple[str, ...], int] = {}       # key flags -> the permissions they need


def permissions(flags: tuple[str, ...]) -> int:
    """READ and/or WRITE: what a key used with these spec flags needs (ACLSelectorCheckKey)."""
    return (READ if "access" in flags else 0) | (WRITE if any(f in keyspecs.WRITE_FLAGS for f in flags) else 0)


def channel_allowed(user: User, channel: bytes, is_pattern: bool) -> bool:
    """Whether some selector of `user` lets it use `channel` (a pattern must be listed as it is)."""
    return any(s.all_channels or any((p == channel) if is_pattern else glob_match(p, channel) for p in s.channels)
               for s in (user.root, *user.selectors))


def _positions(args: list[bytes], keys: list[bytes]) -> list[int]:
    """Argument indexes of `keys` (found by value, in order, for the rare command without specs)."""
    positions, start = [], 1
    for key in keys:
        for i in range(start, len(args)):
            if args[i] is key or args[i] == key:
                positions.append(i)
                start = i + 1
                break
    return positions


def genpass(bits: int = 256) -> bytes:
    """ACL GENPASS: `bits` random bits as lowercase hex, rounded up to a whole hex digit."""
    chars = (bits + 3) // 4
    return secrets.token_hex((chars + 1) // 2)[:chars].encode()
