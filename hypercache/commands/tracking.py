"""CLIENT TRACKING / CACHING / GETREDIR / TRACKINGINFO: client-side caching, with Redis 7.0's errors.

The bookkeeping and the invalidation messages are hypercache/tracking.py's;
these handlers parse, check what Redis checks, and switch a session's state.
"""
from __future__ import annotations

from ..arguments import parse_int
from ..reply import OK, CommandError, OrderedSet
from ..tracking import ClientTracking
from . import command

SYNTAX = "ERR syntax error"


def _overlap(a: bytes, b: bytes) -> bool:
    return a.startswith(b) or b.startswith(a)


def _prefix_text(prefix: bytes) -> str:
    return prefix.decode("utf-8", "replace")


@command("client|tracking", -3, "noscript loading stale", group="connection",
         summary="Controls server-assisted client-side caching for the connection.", since="6.0.0")
def client_tracking(ctx, session, args):
    """Format: CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX prefix ...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP]"""
    state = ClientTracking()
    i = 3
    while i < len(args):
        option = args[i].lower()
        more = i + 1 < len(args)
        if option == b"redirect" and more:
            i += 1
            if state.redirect:
                raise CommandError("ERR A client can only redirect to a single other client")
            state.redirect = parse_int(args[i])
            if state.redirect not in ctx.clients:
                raise CommandError("ERR The client ID you want redirect to does not exist")
        elif option == b"bcast":
            state.bcast = True
        elif option == b"optin":
            state.optin = True
        elif option == b"optout":
            state.optout = True
        elif option == b"noloop":
            state.noloop = True
        elif option == b"prefix" and more:
            i += 1
            state.prefixes.append(args[i])
        else:
            raise CommandError(SYNTAX)
        i += 1
    switch = args[2].lower()
    tracking = ctx.key_events.tracking
    if switch == b"on":
        old = session.tracking
        if state.prefixes and not state.bcast:
            raise CommandError("ERR PREFIX option requires BCAST mode to be enabled")
        if old is not None and old.bcast != state.bcast:
            raise CommandError("ERR You can't switch BCAST mode on/off before disabling tracking "
                               "for this client, and then re-enabling it with a different mode.")
        if state.bcast and (state.optin or state.optout):
            raise CommandError("ERR OPTIN and OPTOUT are not compatible with BCAST")
        if state.optin and state.optout:
            raise CommandError("ERR You can't specify both OPTIN mode and OPTOUT mode")
        if old is not None and ((state.optin and old.optout) or (state.optout and old.optin)):
            raise CommandError("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking "
                               "for this client, and then re-enabling it with a different mode.")
        if state.bcast:
            _check_prefixes(old.prefixes if old is not None else [], state.prefixes)
        tracking.enable(session, state)
    elif switch == b"off":
        tracking.disable(session)
    else:
        raise CommandError(SYNTAX)
    ctx.key_events.refresh()
    return OK


def _check_prefixes(existing: list[bytes], new: list[bytes]) -> None:
    """As Redis's checkPrefixCollisionsOrReply: a client's prefixes must not overlap."""
    for i, prefix in enumerate(new):
        for old in existing:
            if _overlap(old, prefix):
                raise CommandError(f"ERR Prefix '{_prefix_text(prefix)}' overlaps with an existing prefix "
                                   f"'{_prefix_text(old)}'. Prefixes for a single client must not overlap.")
        for other in new[i + 1:]:
            if _overlap(prefix, other):
                raise CommandError(f"ERR Prefix '{_prefix_text(prefix)}' overlaps with another provided prefix "
                                   f"'{_prefix_text(other)}'. Prefixes for a single client must not overlap.")


@command("client|caching", 3, "noscript loading stale", group="connection",
         summary="Instructs the server whether to track the keys in the next request.", since="6.0.0")
def client_caching(ctx, session, args):
    """Format: CLIENT CACHING YES|NO"""
    state = session.tracking
    if state is None:
        raise CommandError("ERR CLIENT CACHING can be called only when the client is in tracking mode "
                           "with OPTIN or OPTOUT mode enabled")
    choice = args[2].lower()
    if choice == b"yes":
        if not state.optin:
            raise CommandError("ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.")
    elif choice == b"no":
        if not state.optout:
            raise CommandError("ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.")
    else:
        raise CommandError(SYNTAX)
    state.caching = True
    return OK


@command("client|getredir", 2, "noscript loading stale", group="connection",
         summary="Returns the client ID to which the connection's tracking notifications are redirected.",
         since="6.0.0")
def client_getredir(ctx, session, args):
    """Format: CLIENT GETREDIR"""
    return -1 if session.tracking is None else session.tracking.redirect


@command("client|trackinginfo", 2, "noscript loading stale", group="connection",
         summary="Returns information about server-assisted client-side caching for the connection.",
         since="6.2.0")
def client_trackinginfo(ctx, session, args):
    """Format: CLIENT TRACKINGINFO  (a map: flags, redirect, prefixes)"""
    state = session.tracking
    if state is None:
        return {b"flags": OrderedSet([b"off"]), b"redirect": -1, b"prefixes": []}
    flags = [b"on"]
    if state.bcast:
        flags.append(b"bcast")
    if state.optin:
        flags.append(b"optin")
        if state.caching:
            flags.append(b"caching-yes")
    if state.optout:
        flags.append(b"optout")
        if state.caching:
            flags.append(b"caching-no")
    if state.noloop:
        flags.append(b"noloop")
    if state.broken_redirect:
        flags.append(b"broken_redirect")
    return {b"flags": OrderedSet(flags), b"redirect": state.redirect, b"prefixes": sorted(state.prefixes)}
