"""Start a greenlet on a function compiled with mypyc, with arguments that live as long as it runs.

gevent's `Greenlet.kill()` drops the greenlet's arguments at once (`Greenlet.__free`:
`self.args = ()`), also while the greenlet is running and only suspended; the
GreenletExit it throws arrives later, from a loop callback. A Python function
keeps its arguments alive in its own frame, so nothing changes for it. A function
compiled with mypyc does not: it borrows its arguments from its caller, which for a
greenlet is that very tuple. If the greenlet's own wake-up (a connect done, an event
set) comes before the GreenletExit, it runs on with arguments that may have been
freed. That was the segfault of 100-member runs (README, "How the mesh scales"):
`TcpLink._dial` writing to a `_Connection` freed by a `disconnect` that killed its
dialler, as the connection it waited for was made (reproduced in a few lines with a
compiled function, 6 December 2026).

`spawn` runs the function from `_holding`, a Python frame that owns the arguments
until the function returns. This module must stay interpreted (it is not in
hypercache/compiled.py's list, and `tests/unit/test_greenlets.py` checks it).
"""
from __future__ import annotations

from typing import Any, Callable

import gevent


def spawn(function: Callable[..., Any], *args: Any) -> gevent.Greenlet:
    """gevent.spawn(function, *args), safe to kill for a compiled `function`."""
    return gevent.spawn(_holding, function, args)


def _holding(function: Callable[..., Any], args: tuple) -> Any:
    # (this frame's own references keep `function` and `args` alive while it runs)
    return function(*args)
