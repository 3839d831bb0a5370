"""From claimed notifications to recipient messages: plain functions, DataFrame in, DataFrame out.

- **One message per recipient and run**: the claim gives a recipient's notifications one message
  key (a message that may have gone out keeps its own and is claimed alone, see `repository.py`);
  every claimed notification that shares a key goes into that one message.
- **Route**: the deployment's channels in their order, keeping those the recipient has switched on
  and can be reached on (push needs no address; e-mail needs one). The first channel is tried; one
  that answers "no such recipient" hands the message to the next. An empty route is
  `undeliverable`: "no channel" (the recipient switched every offered channel off) or "no address".
- **Text**: the recipient's language, their first name, counts and days only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd

from reminder_pipeline.core import notification_kinds
from reminder_pipeline.delivery.channels import Message
from reminder_pipeline.delivery.templates import LANGUAGES, KindSummary, load

NO_CHANNEL = "undeliverable: no channel (every offered channel is switched off for this recipient)"
NO_ADDRESS = "undeliverable: no valid address for the channels this recipient has switched on"
#: A first name longer than this is cut; control characters never reach a header or a payload.
MAX_FIRST_NAME = 40
#: What an address must look like to be handed to the relay: one @, a dot after it, nothing that
#: could end a header or start another address (spaces, control characters, <>,;"), at most 254 characters.
VALID_EMAIL = r"[^\s@<>,;\"\x00-\x1f\x7f]{1,64}@[^\s@<>,;\"\x00-\x1f\x7f]+\.[^\s@<>,;\"\x00-\x1f\x7f]+"

MESSAGE_COLUMNS = ["message_key", "recipient_role", "recipient_id", "notification_ids", "route", "reason", "message"]


def routes(recipients: pd.DataFrame, offered: Sequence[str]) -> tuple[list[tuple[str, ...]], np.ndarray]:
    """Per recipient row (push_enabled, email_enabled, email): the channels to try in order, and the
    reason when there is none."""
    has_address = recipients["email"].notna().to_numpy()
    enabled = {
        "push": recipients["push_enabled"].to_numpy(dtype=bool),
        "email": recipients["email_enabled"].to_numpy(dtype=bool),
    }
    reachable = {"push": enabled["push"], "email": enabled["email"] & has_address}
    masks = [(name, reachable[name]) for name in offered]
    route = [tuple(name for name, mask in masks if mask[i]) for i in range(len(recipients))]
    any_enabled = np.zeros(len(recipients), dtype=bool)
    for name in offered:
        any_enabled |= enabled[name]
    reason = np.where(any_enabled, NO_ADDRESS, NO_CHANNEL)
    return route, reason


def compose_messages(claimed: pd.DataFrame, offered: Sequence[str]) -> pd.DataFrame:
    """One row per message (columns :data:`MESSAGE_COLUMNS`); `message` is the :class:`Message` to
    send, `reason` says why a message with an empty route cannot be sent."""
    if claimed.empty:
        return pd.DataFrame(columns=MESSAGE_COLUMNS)
    frame = claimed.copy()
    frame["first_name"] = (
        frame["first_name"].fillna("").astype(str).str.replace(r"[\x00-\x1f\x7f]", "", regex=True).str[:MAX_FIRST_NAME]
    )
    frame["language"] = frame["language"].where(frame["language"].isin(LANGUAGES), "nb")
    email = frame["email"].fillna("").astype(str).str.strip()
    frame["email"] = email.where(email.str.fullmatch(VALID_EMAIL) & (email.str.len() <= 254), None)
    types = notification_kinds.payload_types()
    for key, kind in types.items():
        values = frame[key] if key in frame.columns else pd.Series(None, index=frame.index, dtype=object)
        frame[key] = (
            pd.to_numeric(values, errors="coerce") if kind == "int" else pd.to_datetime(values, errors="coerce")
        )
    frame = frame.sort_values(["message_key", "id"], kind="stable", ignore_index=True)
    keys = frame["message_key"].to_numpy()
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    chunks = np.split(frame["id"].to_numpy(int), starts[1:])
    ids = {key: tuple(chunk.tolist()) for key, chunk in zip(keys[starts], chunks, strict=True)}
    recipients = frame.iloc[starts].set_index("message_key")
    summaries = _summaries(frame)
    route, reason = routes(recipients, offered)
    messages = []
    for key, recipient in zip(recipients.index, recipients.itertuples(), strict=True):
        rendered = load(recipient.language).render(recipient.recipient_role, recipient.first_name, summaries[key])
        messages.append(
            Message(
                key=key,
                recipient_role=recipient.recipient_role,
                recipient_id=recipient.recipient_id,
                notification_ids=ids[key],
                kinds=tuple(summary.kind for summary in summaries[key]),
                language=recipient.language,
                title=rendered.title,
                body=rendered.body,
                signature=rendered.signature,
                email=recipient.email if isinstance(recipient.email, str) else None,
            )
        )
    return pd.DataFrame(
        {
            "message_key": recipients.index,
            "recipient_role": recipients["recipient_role"].to_numpy(),
            "recipient_id": recipients["recipient_id"].to_numpy(),
            "notification_ids": [ids[key] for key in recipients.index],
            "route": route,
            "reason": [None if channels else text for channels, text in zip(route, reason, strict=True)],
            "message": messages,
        }
    )


def _summaries(frame: pd.DataFrame) -> dict[str, list[KindSummary]]:
    """Per message, one summary per kind: its count and its declared variables, each summarised
    (min or max) over the message's notifications of that kind."""
    wanted = {
        (variable.payload_key, variable.summary)
        for kind in notification_kinds.declared()
        for variable in kind.variables.values()
    }
    aggregations = {f"{summary}:{key}": (key, summary) for key, summary in sorted(wanted)}
    kinds = frame.groupby(["message_key", "kind"], sort=False).agg(count=("id", "size"), **aggregations).reset_index()
    summaries: dict[str, list[KindSummary]] = {}
    for row in kinds.to_dict("records"):
        declared = notification_kinds.kind_named(row["kind"])
        variables = {
            name: _plain(row[f"{variable.summary}:{variable.payload_key}"], variable.type)
            for name, variable in (declared.variables.items() if declared else ())
        }
        summaries.setdefault(row["message_key"], []).append(KindSummary.of(row["kind"], int(row["count"]), **variables))
    return summaries


def _plain(value: object, kind: str) -> int | dt.date | None:
    """A summarised value as the templates see it: a whole number, a date, or None."""
    if value is None or pd.isna(value):
        return None
    return int(value) if kind == "int" else pd.Timestamp(value).date()
