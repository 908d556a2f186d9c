"""A claimed batch made ready to send: its readers' links and headers, its body, its requests.

Pure CPU work, no I/O: the readers' signed links (three signatures each), the body expanded
for them when their cards cannot travel as sections, and, for SendGrid, the very bytes of each
request. A large send runs it in ``delivery.prepare_processes`` separate processes (the sender
is CPU-bound on one core, the GIL's, while the provider is answering), a small one in the
sending thread itself; both run the same functions, so both give the same requests.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.process import BaseProcess

from newsletter.config import Settings
from newsletter.delivery.backends import Batch, Recipient, Sender
from newsletter.delivery.backends.sendgrid import Prepared, prepare_requests
from newsletter.delivery.outbox import Pending
from newsletter.email.headers import digest_headers
from newsletter.email.render import Expander, RenderedEmail, link_substitutions
from newsletter.email.shared import with_feedback
from subscribers.links import feedback_token, preferences_url, unsubscribe_url

# A body variant: (include_summaries, the reader's language).
Variant = tuple[bool, str]
# A batch's body: (variant, None) for the shared body, or
# (variant, the slot values it was expanded with).
BodyKey = tuple[Variant, tuple[tuple[str, str], ...] | None]


@dataclass(frozen=True, slots=True)
class Item:
    """One recipient of a batch; ``slots`` are their substitutions for the shared body (empty
    when their batch's body was expanded for them beforehand)."""

    pending: Pending
    email: str
    slots: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed batch: the key of its body and the recipients whose rows are now ``sending``."""

    key: BodyKey
    items: Sequence[Item]


@dataclass(frozen=True)
class Context:
    """What every batch of one send shares (sent once to each preparing process)."""

    settings: Settings
    keys: Mapping[int, str]  # subscriber id -> link key: every digest brings fresh, dated links
    contents: Mapping[Variant, RenderedEmail]  # the shared body of each variant
    expanders: Mapping[Variant, Expander]  # the same, ready to be expanded for one selection
    sender: Sender
    list_id: str
    categories: tuple[str, ...]
    sandbox: bool = False  # SendGrid: sandbox mode
    sections: bool = True  # SendGrid: may message-level sections be sent


def recipient(ctx: Context, item: Item) -> Recipient:
    """One reader of a batch: their slots, their signed links, their List-Unsubscribe."""
    sid = item.pending.subscriber_id
    key = ctx.keys[sid]
    links = link_substitutions(
        {
            "unsubscribe_url": unsubscribe_url(ctx.settings, sid, key),
            "preferences_url": preferences_url(ctx.settings, sid, key),
        }
    )
    headers = digest_headers(
        ctx.settings,
        to=item.email,
        unsubscribe_url=links["-unsubscribe_url-"],
        message_id=item.pending.message_id,
    )
    feedback = feedback_token(ctx.settings, sid, key)
    return Recipient(
        email=item.email,
        message_id=item.pending.message_id,
        substitutions=with_feedback({**item.slots, **links}, feedback),
        headers={k: v for k, v in headers.items() if k.startswith("List-") and k != "List-Id"},
    )


def batch(ctx: Context, job: Job) -> tuple[Batch, float]:
    """The batch a backend takes, and the CPU seconds spent expanding its body (0 when it is
    the shared body)."""
    variant, expanded = job.key
    content = ctx.contents[variant]
    spent = 0.0
    if expanded is not None:
        started = time.thread_time()
        content = ctx.expanders[variant].personalise(dict(expanded))
        spent = time.thread_time() - started
    made = Batch(
        content=content,
        recipients=tuple(recipient(ctx, i) for i in job.items),
        sender=ctx.sender,
        headers={"List-Id": ctx.list_id},
        categories=ctx.categories,
    )
    return made, spent


def sendgrid_requests(ctx: Context, job: Job) -> tuple[Prepared, float]:
    """A batch as SendGrid requests (bytes as sent), and the seconds spent expanding its body."""
    made, spent = batch(ctx, job)
    return prepare_requests(made, sandbox=ctx.sandbox, sections=ctx.sections), spent


_context: Context | None = None


def start_process(ctx: Context) -> None:
    """A preparing process's initializer: keep the send's context. Signals are the parent's to
    act on (it finishes the batches in flight), so a Ctrl-C or SIGTERM sent to the whole process
    group does not kill a preparer under them; and a preparer ends with its parent, however the
    parent ends (a SIGKILL or the OOM killer included: the pool could not tell it to stop)."""
    global _context
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _context = ctx
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_end_with, args=(parent,), daemon=True).start()


def _end_with(parent: BaseProcess) -> None:
    parent.join()  # returns once the parent has ended (its sentinel closes)
    os._exit(0)


def sendgrid_requests_here(jobs: Sequence[Job]) -> list[tuple[Prepared, float]]:
    """``sendgrid_requests`` of each job, in a preparing process, with the context it was
    started with."""
    if _context is None:
        raise RuntimeError("this process was not started by start_process")
    ctx = _context
    return [sendgrid_requests(ctx, job) for job in jobs]
