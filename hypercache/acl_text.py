"""ACL rules as text: what ACL LIST, ACL GETUSER and the ACL file print for a user (ACLDescribeUser).

Pure. Command rules are not kept as given: like Redis 7.0, they are recomputed from the set of
commands a selector allows, by a best fit over categories, then the single commands that still
differ, so the text is short and always says what the user may run now.
"""
from __future__ import annotations

from .acl import ALL_PERMISSIONS, CATEGORIES, READ, WRITE, Catalog, KeyPattern, Selector, User, change, apply_to_selector


def describe_commands(selector: Selector, catalog: Catalog) -> str:
    """The command rules as Redis 7.0 prints them (ACLDescribeSelectorCommandRules).

    The rules are recomputed from the allowed set: start from +@all (if the selector may run
    future commands) or -@all, add (or remove) the categories that fit best, then each
    single command that still differs, in the command table's order (Redis: its dict order).
    """
    fake = Selector()
    additive = not selector.future
    rules = ["-@all" if additive else "+@all"]
    apply_to_selector(fake, rules[0].encode(), catalog)
    temp = set(selector.allowed)
    applied: set[str] = set()
    while True:
        best, mindiff, maxsame = "", 1 << 62, 0
        for cat in CATEGORIES:
            if cat in applied:
                continue
            members = catalog.categories[cat]
            on = len(members & temp)
            off = len(members) - on
            diff, same = (off, on) if additive else (on, off)
            if same > diff and (diff < mindiff or (diff == mindiff and same > maxsame)):
                best, mindiff, maxsame = cat, diff, same
        if not best:
            break
        for name in catalog.in_order[best]:
            change(fake, name, additive, catalog)
            if additive:
                temp.difference_update([name, *catalog.subs.get(name, ())])
            else:
                temp.update([name, *catalog.subs.get(name, ())])
        rules.append(("+@" if additive else "-@") + best)
        applied.add(best)
    for top in catalog.top:
        for name in (top, *catalog.subs[top]):
            mine = name in selector.allowed
            if mine != (name in fake.allowed):
                rules.append(("+" if mine else "-") + name)
                change(fake, name, mine, catalog)
            if not mine and name == top:
                for arg in selector.first_args.get(top, ()):
                    rules.append(f"+{top}|{arg.decode('utf-8', 'replace')}")
    return " ".join(rules)


def _pattern_text(pattern: KeyPattern) -> str:
    prefix = {ALL_PERMISSIONS: "~", READ: "%R~", WRITE: "%W~"}.get(pattern.flags, "~")
    return prefix + pattern.pattern.decode("utf-8", "replace")


def describe_keys(selector: Selector) -> str:
    return "~*" if selector.all_keys else " ".join(_pattern_text(p) for p in selector.patterns.values())


def describe_channels(selector: Selector) -> str:
    return "&*" if selector.all_channels else " ".join(
        "&" + c.decode("utf-8", "replace") for c in selector.channels)


def describe_selector(selector: Selector, catalog: Catalog) -> str:
    """Keys, channels and commands as one rule string (ACLDescribeSelector)."""
    parts = []
    keys = describe_keys(selector)
    if keys:
        parts.append(keys)
    if selector.all_channels:
        parts.append("&*")
    else:
        parts.append("resetchannels")
        parts.extend("&" + c.decode("utf-8", "replace") for c in selector.channels)
    parts.append(describe_commands(selector, catalog))
    return " ".join(parts)


def flag_names(user: User) -> list[str]:
    """The user's flags in Redis's order (ACLUserFlags)."""
    flags = ["on" if user.enabled else "off"]
    if user.nopass:
        flags.append("nopass")
    if user.sanitize == "skip-sanitize-payload":
        flags.append("skip-sanitize-payload")
    elif user.sanitize == "sanitize-payload":
        flags.append("sanitize-payload")
    return flags


def describe_user(user: User, catalog: Catalog) -> str:
    """The rules after `user <name>` in ACL LIST and the ACL file (ACLDescribeUser)."""
    parts = flag_names(user) + ["#" + digest for digest in user.passwords]
    parts.append(describe_selector(user.root, catalog))
    text = " ".join(parts)
    for selector in user.selectors:
        text += f" ({describe_selector(selector, catalog)})"
    return text


