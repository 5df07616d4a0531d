"""Pub/sub commands: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH, PUBSUB *.

A (un)subscribe to N channels answers N push messages. All but the last are
handed to `ctx.deliver`, which appends them to the running client's batch, and
the last is returned as the reply, so the client reads them in order.
"""
from __future__ import annotations

from ..reply import CommandError, Push, Status
from . import command, container


def _confirm(ctx, session, replies: list[Push]):
    deliver = ctx.deliver
    for push in replies[:-1]:
        deliver(session, push)
    return replies[-1]


def _total(session) -> int:
    return len(session.channels) + len(session.patterns)


def _shard_total(session) -> int:
    return len(session.shard_channels)


def _subscribe(ctx, session, args, kind: bytes, add, count) -> Push:
    replies = []
    for name in args[1:]:
        add(session, name)
        replies.append(Push([kind, name, count(session)]))
    return _confirm(ctx, session, replies)


@command("subscribe", -2, "pubsub noscript loading stale", group="pubsub", since="2.0.0",
         summary="Listens for messages published to channels.")
def subscribe(ctx, session, args):
    """Format: SUBSCRIBE channel [channel ...]"""
    return _subscribe(ctx, session, args, b"subscribe", ctx.pubsub.subscribe, _total)


@command("psubscribe", -2, "pubsub noscript loading stale", group="pubsub", since="2.0.0",
         summary="Listens for messages published to channels that match one or more patterns.")
def psubscribe(ctx, session, args):
    """Format: PSUBSCRIBE pattern [pattern ...]"""
    return _subscribe(ctx, session, args, b"psubscribe", ctx.pubsub.psubscribe, _total)


@command("ssubscribe", -2, "pubsub noscript loading stale", 1, -1, 1, group="pubsub", since="7.0.0",
         summary="Listens for messages published to shard channels.")
def ssubscribe(ctx, session, args):
    """Format: SSUBSCRIBE shardchannel [shardchannel ...]"""
    return _subscribe(ctx, session, args, b"ssubscribe", ctx.pubsub.ssubscribe, _shard_total)


def _unsubscribe(ctx, session, args, kind: bytes, mine: set, remove, count) -> Push:
    names = args[1:] or list(mine)
    if not names:
        return Push([kind, None, count(session)])
    replies = []
    for name in names:
        remove(session, name)
        replies.append(Push([kind, name, count(session)]))
    return _confirm(ctx, session, replies)


@command("unsubscribe", -1, "pubsub noscript loading stale", group="pubsub", since="2.0.0",
         summary="Stops listening to messages posted to channels.")
def unsubscribe(ctx, session, args):
    """Format: UNSUBSCRIBE [channel [channel ...]]"""
    return _unsubscribe(ctx, session, args, b"unsubscribe", session.channels,
                        ctx.pubsub.unsubscribe, _total)


@command("punsubscribe", -1, "pubsub noscript loading stale", group="pubsub", since="2.0.0",
         summary="Stops listening to messages published to channels that match one or more patterns.")
def punsubscribe(ctx, session, args):
    """Format: PUNSUBSCRIBE [pattern [pattern ...]]"""
    return _unsubscribe(ctx, session, args, b"punsubscribe", session.patterns,
                        ctx.pubsub.punsubscribe, _total)


@command("sunsubscribe", -1, "pubsub noscript loading stale", 1, -1, 1, group="pubsub", since="7.0.0",
         summary="Stops listening to messages posted to shard channels.")
def sunsubscribe(ctx, session, args):
    """Format: SUNSUBSCRIBE [shardchannel [shardchannel ...]]"""
    return _unsubscribe(ctx, session, args, b"sunsubscribe", session.shard_channels,
                        ctx.pubsub.sunsubscribe, _shard_total)


@command("publish", 3, "pubsub loading stale fast may-replicate", group="pubsub", since="2.0.0",
         summary="Posts a message to a channel.")
def publish(ctx, session, args):
    """Format: PUBLISH channel message"""
    return ctx.pubsub.publish(args[1], args[2])


@command("spublish", 3, "pubsub loading stale fast may-replicate", 1, 1, 1, group="pubsub", since="7.0.0",
         summary="Post a message to a shard channel")
def spublish(ctx, session, args):
    """Format: SPUBLISH shardchannel message"""
    return ctx.pubsub.spublish(args[1], args[2])


container("pubsub", -2, "", "pubsub", "A container for Pub/Sub commands.", "2.8.0")


@command("pubsub|channels", -2, "pubsub loading stale", group="pubsub", since="2.8.0",
         summary="Returns the active channels.")
def pubsub_channels(ctx, session, args):
    """Format: PUBSUB CHANNELS [pattern]"""
    if len(args) > 3:
        raise _arity("channels")
    return ctx.pubsub.channel_names(args[2] if len(args) == 3 else None)


@command("pubsub|shardchannels", -2, "pubsub loading stale", group="pubsub", since="7.0.0",
         summary="Returns the active shard channels.")
def pubsub_shardchannels(ctx, session, args):
    """Format: PUBSUB SHARDCHANNELS [pattern]"""
    if len(args) > 3:
        raise _arity("shardchannels")
    return ctx.pubsub.channel_names(args[2] if len(args) == 3 else None, shard=True)


@command("pubsub|numsub", -2, "pubsub loading stale", group="pubsub", since="2.8.0",
         summary="Returns a count of subscribers to channels.")
def pubsub_numsub(ctx, session, args):
    """Format: PUBSUB NUMSUB [channel [channel ...]]"""
    out = []
    for channel in args[2:]:
        out.append(channel)
        out.append(ctx.pubsub.subscribers(channel))
    return out


@command("pubsub|shardnumsub", -2, "pubsub loading stale", group="pubsub", since="7.0.0",
         summary="Returns the count of subscribers of shard channels.")
def pubsub_shardnumsub(ctx, session, args):
    """Format: PUBSUB SHARDNUMSUB [shardchannel [shardchannel ...]]"""
    out = []
    for channel in args[2:]:
        out.append(channel)
        out.append(ctx.pubsub.subscribers(channel, shard=True))
    return out


@command("pubsub|numpat", 2, "pubsub loading stale", group="pubsub", since="2.8.0",
         summary="Returns a count of unique pattern subscriptions.")
def pubsub_numpat(ctx, session, args):
    """Format: PUBSUB NUMPAT"""
    return ctx.pubsub.pattern_count()


@command("pubsub|help", 2, "loading stale", group="pubsub", since="6.2.0",
         summary="Returns helpful text about the different subcommands.")
def pubsub_help(ctx, session, args):
    """Format: PUBSUB HELP"""
    lines = [
        "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANNELS [<pattern>]",
        "    Return the currently active channels matching a <pattern> (default: '*').",
        "NUMPAT",
        "    Return number of subscriptions to patterns.",
        "NUMSUB [<channel> ...]",
        "    Return the number of subscribers for the specified channels, excluding",
        "    pattern subscriptions(default: no channels).",
        "SHARDCHANNELS [<pattern>]",
        "    Return the currently active shard level channels matching a <pattern> (default: '*').",
        "SHARDNUMSUB [<shardchannel> ...]",
        "    Return the number of subscribers for the specified shard level channel(s)",
        "HELP",
        "    Prints this help.",
    ]
    return [Status(line.encode()) for line in lines]


def _arity(name: str):
    return CommandError(f"ERR unknown subcommand or wrong number of arguments for '{name}'. "
                        "Try PUBSUB HELP.")
