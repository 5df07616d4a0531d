"""ACL commands (ACL SETUSER ... WHOAMI), the permission check the dispatcher calls, and the ACL file.

The decisions are hypercache/acl.py's (pure); this module turns them into Redis's replies and
error texts, writes ACL LOG entries with the client's CLIENT INFO line, reads and writes the
ACL file (--aclfile) and keeps sessions in step when users change (a deleted user's clients
are closed; a restricted user's sessions get a fast lane of their own, see sync_session()).

Every node of a cluster reads its own --aclfile at start: give every node the same file (and
run ACL SETUSER/LOAD on each, as `redis-cli --cluster call` does for Redis Cluster); users
are not carried over the mesh.
"""
from __future__ import annotations

import os
import time

from .. import acl as rules
from .. import keyspecs
from .. import acl_text as text
from .. import users as registry
from ..acl import DENIED_CHANNEL, DENIED_CMD, DENIED_KEY, Catalog, RuleError
from ..users import Users
from ..arguments import parse_int
from ..reply import OK, CommandError, Status
from . import TABLE, command, container
from .command_info import acl_categories

NOPERM = {
    DENIED_CMD: "NOPERM this user has no permissions to run the '{}' command",
    DENIED_KEY: "NOPERM this user has no permissions to access one of the keys used as arguments",
    DENIED_CHANNEL: "NOPERM this user has no permissions to access one of the channels used as arguments",
}
DRYRUN = {
    DENIED_CMD: "This user has no permissions to run the '{}' command",
    DENIED_KEY: "This user has no permissions to access the '{}' key",
    DENIED_CHANNEL: "This user has no permissions to access the '{}' channel",
}
SCRIPT = {
    DENIED_CMD: "The user executing the script can't run this command or subcommand",
    DENIED_KEY: "The user executing the script can't access at least one of the keys mentioned in the "
                "command arguments",
    DENIED_CHANNEL: "The user executing the script can't publish to the channel mentioned in the command",
}
EXEC_CHANGED = {
    DENIED_CMD: "no permission to execute the command or subcommand",
    DENIED_KEY: "no permission to touch the specified keys",
    DENIED_CHANNEL: "no permission to access one of the channels used as arguments",
}
NO_ACL_FILE = ("ERR This Redis instance is not configured to use an ACL file. You may want to specify users "
               "via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis "
               "configuration file set) in order to store users in the Redis configuration.")
CROSS_PROTOCOL = (b"post", b"host:")


def catalog() -> Catalog:
    """The commands ACL rules can name, from the command table (COMMAND's commands)."""
    entries = []
    for name, cmd in TABLE.items():
        if name in CROSS_PROTOCOL:
            continue
        subs = {sub.name: acl_categories(sub) for sub in cmd.subcommands.values()}
        entries.append((cmd.name, acl_categories(cmd), list(subs), "no-auth" in cmd.flags, subs))
    return Catalog(entries)


def make_users(requirepass: str, aclfile: str) -> Users:
    """The node's users at start: the default user (with --requirepass), then --aclfile's users."""
    users = Users(catalog(), requirepass)
    if aclfile:
        users.replace(users.parse_file(_read(aclfile), aclfile))
    return users


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            return f.read()
    except OSError as error:
        raise RuleError(f"Error loading ACLs, opening file '{path}': {error.strerror}") from None


# -- the dispatcher's check ------------------------------------------------------------------------

def user_of(ctx, session) -> rules.User:
    return session.user if session.user is not None else ctx.acl.default


def denial(ctx, session, cmd, args: list[bytes], context: str):
    """The refusal of `cmd` for the session's user as (reason, logged object), or None; logs it."""
    user = user_of(ctx, session)
    if user.unrestricted:
        return None
    found = rules.check(user, cmd.name, args, cmd.keys, ctx.acl.catalog)
    if found is None:
        return None
    obj = cmd.name.encode() if found.reason == DENIED_CMD else args[found.index]
    log_denial(ctx, session, found.reason, context, obj, user.name)
    return found.reason, cmd.name


def refusal(ctx, session, cmd, args: list[bytes]) -> CommandError | None:
    """The -NOPERM error for a call the session's user may not make (processCommand's check)."""
    found = denial(ctx, session, cmd, args, "multi" if session.multi is not None else "toplevel")
    if found is None:
        return None
    return CommandError(NOPERM[found[0]].format(found[1]))


def script_refusal(ctx, caller, cmd, args: list[bytes]) -> bytes | None:
    """The error text of a redis.call the script's caller may not make (scriptCall's check)."""
    found = denial(ctx, caller, cmd, args, "lua")
    return None if found is None else SCRIPT[found[0]].encode()


def exec_refusal(ctx, session, cmd, args: list[bytes]) -> CommandError | None:
    """A queued command no longer allowed when EXEC runs it (rules changed meanwhile)."""
    found = denial(ctx, session, cmd, args, "multi")
    if found is None:
        return None
    return CommandError("NOPERM ACLs rules changed between the moment the transaction was accumulated and "
                        "the EXEC call. This command is no longer allowed for the following reason: "
                        + EXEC_CHANGED[found[0]])


def log_denial(ctx, session, reason: int, context: str, obj: bytes, username: bytes) -> None:
    from .connection import client_line
    now_ms = time.time_ns() // 1_000_000
    info = client_line(session, now_ms, set(), None)
    ctx.acl.log.add(rules.REASONS[reason], context, obj, username, now_ms, info)


def authenticate(ctx, session, username: bytes, password: bytes, command: bytes = b"AUTH") -> bool:
    """AUTH / HELLO AUTH: log the session in as `username`, or log the failure (reason auth)."""
    user = ctx.acl.authenticate(username, password)
    if user is None:
        log_denial(ctx, session, rules.DENIED_AUTH, "multi" if session.multi is not None else "toplevel",
                   command, username)     # (logged as the client spelled AUTH or HELLO)
        return False
    session.user = user
    session.authenticated = True
    sync_session(ctx, session)
    return True


def sync_session(ctx, session, lanes: dict | None = None) -> None:
    """The session's lane follows its user.

    All permissions: the dispatcher's lane. Otherwise a lane of the lane commands its root
    selector lets it run (they touch keys, never channels): with every key, nothing there can
    be denied; with key patterns and no other selector, only the commands with one key at
    args[1] (or none), whose key the lane checks (`key_checker`). Any other user: every call
    goes the checked way (execute()). Whatever the lane turns down, execute() answers.
    """
    user = user_of(ctx, session)
    root = user.root
    lane = keys = None
    limited = not user.unrestricted
    if (limited and session.user is not None and ctx.dispatcher is not None
            and (root.all_keys or not user.selectors)):
        cached = lanes.get(id(user)) if lanes is not None else None
        if cached is None:
            cached = (ctx.dispatcher.lane_for(root.allowed, keyed=not root.all_keys),
                      None if root.all_keys else key_checker(root))
            if lanes is not None:
                lanes[id(user)] = cached
        lane, keys = cached
        limited = False
    session.acl_lane = lane
    session.acl_keys = keys
    session.acl_limited = limited
    session.refresh_lane()


def key_checker(selector: rules.Selector):
    """(cmd, args) -> whether the selector's key patterns let `cmd` use args[1] (the lane's one key)."""
    patterns = list(selector.patterns.values())
    wanted_by_name: dict[str, int] = {}

    def allowed(cmd, args: list[bytes]) -> bool:
        wanted = wanted_by_name.get(cmd.name)
        if wanted is None and len(args) == 3 and cmd.name == "set":
            wanted = rules.WRITE        # a plain SET overwrites (OW update): the lane's common write
        if wanted is None:
            found = keyspecs.keys_and_flags(cmd.name, args)
            if not found:
                return False        # no key where one was declared: execute() answers
            wanted = rules.permissions(found[0][1])
            if cmd.name not in keyspecs.VARIABLE:       # (SET ... GET reads: asked each time)
                wanted_by_name[cmd.name] = wanted
        key = args[1]
        for pattern in patterns:
            if pattern.flags & wanted == wanted and pattern.match(key):
                return True
        return False

    return allowed


def sync_all(ctx) -> None:
    """After users changed: every session's lane, the default user's lane, sessions of users gone."""
    users = ctx.acl.users
    lanes: dict = {}        # user -> its lane, made once per user
    for session in list(ctx.clients.values()):
        user = session.user
        if user is not None and users.get(user.name) is not user:
            replacement = users.get(user.name)
            if replacement is None:
                _close(ctx, session)
                continue
            session.user = replacement
        sync_session(ctx, session, lanes)
    dispatcher = ctx.dispatcher
    if dispatcher is not None:
        dispatcher.set_default_limited(not ctx.acl.default.unrestricted)


def _close(ctx, session) -> None:
    session.close_after_reply = True    # the caller's own session: after this reply, as Redis
    if ctx.kill_client is not None and ctx.clients.get(session.id) is session:
        ctx.kill_client(session.id)


def default_open(ctx) -> bool:
    """Whether a new connection is logged in already: the default user is on and nopass."""
    default = ctx.acl.default
    return default.enabled and default.nopass


# -- ACL ---------------------------------------------------------------------------------------------

ACL_FLAGS = "admin noscript loading stale"
container("acl", -2, "", "server", "A container for Access List Control commands", "6.0.0")


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


@command("acl|setuser", -3, ACL_FLAGS, group="server", since="6.0.0",
         summary="Modify or create the rules for a specific ACL user")
def acl_setuser(ctx, session, args):
    """Format: ACL SETUSER username [rule [rule ...]]"""
    if not registry.valid_name(args[2]):
        raise CommandError("ERR Usernames can't contain spaces or null characters")
    try:
        user = ctx.acl.setuser(args[2], args[3:])
    except RuleError as error:
        raise CommandError(f"ERR {error}") from None
    sync_all(ctx)
    _close_unpermitted_subscribers(ctx, user)
    return OK


def _close_unpermitted_subscribers(ctx, user: rules.User) -> None:
    """As Redis's ACLKillPubsubClientsIfNeeded: a client of `user` subscribed to a channel its rules
    no longer allow is disconnected (it would go on receiving what it may not subscribe to)."""
    for session in list(ctx.clients.values()):
        if user_of(ctx, session) is not user or not session.in_pubsub:
            continue
        subscribed = [(c, False) for c in (*session.channels, *session.shard_channels)]
        subscribed += [(p, True) for p in session.patterns]
        if not all(rules.channel_allowed(user, channel, is_pattern) for channel, is_pattern in subscribed):
            _close(ctx, session)


@command("acl|getuser", 3, ACL_FLAGS, group="server", since="6.0.0",
         summary="Get the rules for a specific ACL user")
def acl_getuser(ctx, session, args):
    """Format: ACL GETUSER username"""
    user = ctx.acl.users.get(args[2])
    if user is None:
        return None
    catalog = ctx.acl.catalog
    root = user.root
    return {
        b"flags": [name.encode() for name in text.flag_names(user)],
        b"passwords": [digest.encode() for digest in user.passwords],
        b"commands": text.describe_commands(root, catalog).encode(),
        b"keys": text.describe_keys(root).encode(),
        b"channels": text.describe_channels(root).encode(),
        b"selectors": [{
            b"commands": text.describe_commands(s, catalog).encode(),
            b"keys": text.describe_keys(s).encode(),
            b"channels": text.describe_channels(s).encode(),
        } for s in user.selectors],
    }


@command("acl|deluser", -3, ACL_FLAGS, group="server", since="6.0.0",
         summary="Remove the specified ACL users and the associated rules")
def acl_deluser(ctx, session, args):
    """Format: ACL DELUSER username [username ...]"""
    if any(name == b"default" for name in args[2:]):
        raise CommandError("ERR The 'default' user cannot be removed")
    deleted = 0
    for name in args[2:]:
        if ctx.acl.users.pop(name, None) is not None:
            deleted += 1
    ctx.acl.refresh()
    sync_all(ctx)
    return deleted


@command("acl|users", 2, ACL_FLAGS, group="server", since="6.0.0",
         summary="List the username of all the configured ACL rules")
def acl_users(ctx, session, args):
    """Format: ACL USERS"""
    return sorted(ctx.acl.users)


@command("acl|list", 2, ACL_FLAGS, group="server", since="6.0.0",
         summary="List the current ACL rules in ACL config file format")
def acl_list(ctx, session, args):
    """Format: ACL LIST"""
    catalog = ctx.acl.catalog
    return [b"user " + name + b" " + text.describe_user(user, catalog).encode()
            for name, user in sorted(ctx.acl.users.items())]


@command("acl|whoami", 2, "noscript loading stale", group="server", since="6.0.0",
         summary="Return the name of the user associated to the current connection")
def acl_whoami(ctx, session, args):
    """Format: ACL WHOAMI"""
    return user_of(ctx, session).name


@command("acl|cat", -2, "noscript loading stale", group="server", since="6.0.0",
         summary="List the ACL categories or the commands inside a category")
def acl_cat(ctx, session, args):
    """Format: ACL CAT [category]"""
    if len(args) > 3:
        raise CommandError(f"ERR unknown subcommand or wrong number of arguments for '{_text(args[1])}'. Try ACL HELP.")
    if len(args) == 2:
        return [cat.encode() for cat in rules.CATEGORIES]
    members = ctx.acl.catalog.in_order.get(_text(args[2]).lower())
    if members is None:
        raise CommandError(f"ERR Unknown category '{_text(args[2])}'")
    return [name.encode() for name in members]


@command("acl|log", -2, ACL_FLAGS, group="server", since="6.0.0",
         summary="List latest events denied because of ACLs in place")
def acl_log(ctx, session, args):
    """Format: ACL LOG [count | RESET]"""
    if len(args) > 3:
        raise CommandError(f"ERR unknown subcommand or wrong number of arguments for '{_text(args[1])}'. Try ACL HELP.")
    log = ctx.acl.log
    count = 10      # as Redis: the 10 newest unless told
    if len(args) == 3:
        if args[2].lower() == b"reset":
            log.reset()
            return OK
        count = parse_int(args[2], "ERR value is not an integer or out of range")
        count = max(count, 0)      # as Redis: a negative count lists nothing
    now_ms = time.time_ns() // 1_000_000
    return [{
        b"count": entry.count, b"reason": entry.reason.encode(), b"context": entry.context.encode(),
        b"object": entry.object, b"username": entry.username,
        b"age-seconds": (now_ms - entry.created_ms) / 1000, b"client-info": entry.client_info,
    } for entry in log.entries[:count]]


@command("acl|genpass", -2, "noscript loading stale", group="server", since="6.0.0",
         summary="Generate a pseudorandom secure password to use for ACL users")
def acl_genpass(ctx, session, args):
    """Format: ACL GENPASS [bits]"""
    if len(args) > 3:
        raise CommandError(f"ERR unknown subcommand or wrong number of arguments for '{_text(args[1])}'. Try ACL HELP.")
    bits = 256
    if len(args) == 3:
        bits = parse_int(args[2], "ERR value is not an integer or out of range")
        if not 0 < bits <= 4096:
            raise CommandError("ERR ACL GENPASS argument must be the number of bits for the output password, "
                               "a positive number up to 4096")
    return rules.genpass(bits)


@command("acl|dryrun", -4, ACL_FLAGS, group="server", since="7.0.0",
         summary="Returns whether the user can execute the given command without executing the command.")
def acl_dryrun(ctx, session, args):
    """Format: ACL DRYRUN username command [arg [arg ...]]"""
    user = ctx.acl.users.get(args[2])
    if user is None:
        raise CommandError(f"ERR User '{_text(args[2])}' not found")
    call = args[3:]
    cmd = TABLE.get(call[0].lower()) if call[0].lower() not in CROSS_PROTOCOL else None
    if cmd is not None and cmd.subcommands and len(call) > 1:
        cmd = cmd.subcommands.get(call[1].lower())     # (an unknown subcommand: not found, as Redis)
    if cmd is None:
        raise CommandError(f"ERR Command '{_text(call[0])}' not found")
    if not cmd.arity_ok(len(call)):
        raise CommandError(f"ERR wrong number of arguments for '{cmd.name}' command")
    found = rules.check(user, cmd.name, call, cmd.keys, ctx.acl.catalog)
    if found is None:
        return OK
    shown = cmd.name if found.reason == DENIED_CMD else _text(call[found.index])
    return DRYRUN[found.reason].format(shown).encode()


@command("acl|load", 2, ACL_FLAGS, group="server", since="6.0.0",
         summary="Reload the ACLs from the configured ACL file")
def acl_load(ctx, session, args):
    """Format: ACL LOAD"""
    path = ctx.config.aclfile
    if not path:
        raise CommandError(NO_ACL_FILE)
    try:
        ctx.acl.replace(ctx.acl.parse_file(_read(path), path))
    except RuleError as error:
        raise CommandError(f"ERR {error}") from None
    sync_all(ctx)
    return OK


@command("acl|save", 2, ACL_FLAGS, group="server", since="6.0.0",
         summary="Save the current ACL rules in the configured ACL file")
def acl_save(ctx, session, args):
    """Format: ACL SAVE"""
    path = ctx.config.aclfile
    if not path:
        raise CommandError(NO_ACL_FILE)
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        with open(temporary, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(ctx.acl.file_text())
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)     # readers see the old file or the new one, never half
    except OSError as error:
        raise CommandError(f"ERR There was an error trying to save the ACLs. Please check the server "
                           f"logs for more information ({error.strerror})") from None
    return OK


@command("acl|help", 2, "loading stale", group="server", since="6.0.0",
         summary="Show helpful text about the different subcommands")
def acl_help(ctx, session, args):
    """Format: ACL HELP"""
    return [Status(line) for line in (
        b"ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        b"CAT [<category>]",
        b"    List all commands that belong to <category>, or all command categories",
        b"    when no category is specified.",
        b"DELUSER <username> [<username> ...]",
        b"    Delete a list of users.",
        b"DRYRUN <username> <command> [<arg> ...]",
        b"    Returns whether the user can execute the given command without executing the command.",
        b"GETUSER <username>",
        b"    Get the user's details.",
        b"GENPASS [<bits>]",
        b"    Generate a secure 256-bit user password. The optional `bits` argument can",
        b"    be used to specify a different size.",
        b"LIST",
        b"    Show users details in config file format.",
        b"LOAD",
        b"    Reload users from the ACL file.",
        b"LOG [<count> | RESET]",
        b"    Show the ACL log entries.",
        b"SAVE",
        b"    Save the current config to the ACL file.",
        b"SETUSER <username> <attribute> [<attribute> ...]",
        b"    Create or modify a user with the specified attributes.",
        b"USERS",
        b"    List all the registered usernames.",
        b"WHOAMI",
        b"    Return the current connection username.",
        b"HELP",
        b"    Prints this help.",
    )]
