"""Typed errors of the codec and the configuration model.

Every malformed input handed to the decoder ends in exactly one of these exceptions, each carrying the
RFC 7606 outcome the receiver must apply (RFC 7606 §2): a session reset with the NOTIFICATION to send,
treat-as-withdraw with the NLRIs affected, or attribute discard.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class NotificationCode(enum.IntEnum):
    """NOTIFICATION error codes (RFC 4271 §4.5, RFC 4486, RFC 7313)."""

    MESSAGE_HEADER_ERROR = 1
    OPEN_MESSAGE_ERROR = 2
    UPDATE_MESSAGE_ERROR = 3
    HOLD_TIMER_EXPIRED = 4
    FSM_ERROR = 5
    CEASE = 6
    ROUTE_REFRESH_MESSAGE_ERROR = 7


class HeaderSubcode(enum.IntEnum):
    """Message Header Error subcodes (RFC 4271 §6.1)."""

    CONNECTION_NOT_SYNCHRONIZED = 1
    BAD_MESSAGE_LENGTH = 2
    BAD_MESSAGE_TYPE = 3


class OpenSubcode(enum.IntEnum):
    """OPEN Message Error subcodes (RFC 4271 §6.2, RFC 5492 §5)."""

    UNSUPPORTED_VERSION_NUMBER = 1
    BAD_PEER_AS = 2
    BAD_BGP_IDENTIFIER = 3
    UNSUPPORTED_OPTIONAL_PARAMETER = 4
    UNACCEPTABLE_HOLD_TIME = 6
    UNSUPPORTED_CAPABILITY = 7


class UpdateSubcode(enum.IntEnum):
    """UPDATE Message Error subcodes (RFC 4271 §6.3)."""

    MALFORMED_ATTRIBUTE_LIST = 1
    UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE = 2
    MISSING_WELL_KNOWN_ATTRIBUTE = 3
    ATTRIBUTE_FLAGS_ERROR = 4
    ATTRIBUTE_LENGTH_ERROR = 5
    INVALID_ORIGIN_ATTRIBUTE = 6
    INVALID_NEXT_HOP_ATTRIBUTE = 8
    OPTIONAL_ATTRIBUTE_ERROR = 9
    INVALID_NETWORK_FIELD = 10
    MALFORMED_AS_PATH = 11


class RouteRefreshSubcode(enum.IntEnum):
    """ROUTE-REFRESH Message Error subcodes (RFC 7313 §5)."""

    INVALID_MESSAGE_LENGTH = 1


class CeaseSubcode(enum.IntEnum):
    """Cease subcodes (RFC 4486 §4, RFC 8203)."""

    MAXIMUM_PREFIXES_REACHED = 1
    ADMINISTRATIVE_SHUTDOWN = 2
    PEER_DECONFIGURED = 3
    ADMINISTRATIVE_RESET = 4
    CONNECTION_REJECTED = 5
    OTHER_CONFIGURATION_CHANGE = 6
    CONNECTION_COLLISION_RESOLUTION = 7
    OUT_OF_RESOURCES = 8
    HARD_RESET = 9


class Rfc7606Action(enum.Enum):
    """What the receiver of a malformed UPDATE does (RFC 7606 §2)."""

    SESSION_RESET = "session-reset"
    AFI_SAFI_DISABLE = "afi-safi-disable"
    TREAT_AS_WITHDRAW = "treat-as-withdraw"
    ATTRIBUTE_DISCARD = "attribute-discard"


class CodecError(Exception):
    """Base class of every error the wire codec raises."""


class InvalidValue(CodecError, ValueError):
    """A value (MAC, RD, RT, ESI, VNI ...) is out of range or its text is malformed."""


@dataclass(frozen=True, slots=True)
class Notification:
    """The NOTIFICATION a session reset sends (RFC 4271 §4.5)."""

    code: int
    subcode: int
    data: bytes = b""

    def describe(self) -> str:
        """Human text such as ``UPDATE Message Error / Malformed AS_PATH``."""
        return describe_notification(self.code, self.subcode)


_SUBCODES: dict[int, type[enum.IntEnum]] = {
    NotificationCode.MESSAGE_HEADER_ERROR: HeaderSubcode,
    NotificationCode.OPEN_MESSAGE_ERROR: OpenSubcode,
    NotificationCode.UPDATE_MESSAGE_ERROR: UpdateSubcode,
    NotificationCode.CEASE: CeaseSubcode,
    NotificationCode.ROUTE_REFRESH_MESSAGE_ERROR: RouteRefreshSubcode,
}


_CODE_TEXT = {
    NotificationCode.MESSAGE_HEADER_ERROR: "Message Header Error",
    NotificationCode.OPEN_MESSAGE_ERROR: "OPEN Message Error",
    NotificationCode.UPDATE_MESSAGE_ERROR: "UPDATE Message Error",
    NotificationCode.HOLD_TIMER_EXPIRED: "Hold Timer Expired",
    NotificationCode.FSM_ERROR: "Finite State Machine Error",
    NotificationCode.CEASE: "Cease",
    NotificationCode.ROUTE_REFRESH_MESSAGE_ERROR: "ROUTE-REFRESH Message Error",
}
"""The error code names as RFC 4271 §4.5 and RFC 7313 §5 spell them."""


def _title(name: str) -> str:
    words = name.replace("_", " ").title()
    for word in ("As Path", "Bgp", "Open", "Update", "Nlri"):
        words = words.replace(word, word.upper().replace(" ", "_"))
    return words


def describe_notification(code: int, subcode: int) -> str:
    """Decode a NOTIFICATION code/subcode pair into readable text (RFC 4271 §4.5)."""
    try:
        code_text = _CODE_TEXT[NotificationCode(code)]
    except ValueError:
        return f"unknown error code {code} / subcode {subcode}"
    table = _SUBCODES.get(code)
    if table is None:
        return code_text if subcode == 0 else f"{code_text} / subcode {subcode}"
    try:
        sub_text = _title(table(subcode).name)
    except ValueError:
        sub_text = "unspecific" if subcode == 0 else f"subcode {subcode}"
    return f"{code_text} / {sub_text}"


class MessageError(CodecError):
    """A BGP message cannot be accepted; ``action`` says what RFC 7606 prescribes.

    ``notification`` is set when the action is a session reset; ``withdrawn`` holds the NLRIs to treat as
    withdrawn; ``discarded`` names the attribute type codes dropped; ``update`` is the usable UPDATE left after
    attribute discard (and, for treat-as-withdraw, what was parsed, for logging).
    """

    def __init__(
        self,
        reason: str,
        action: Rfc7606Action,
        notification: Notification | None = None,
        withdrawn: Sequence[Any] = (),
        discarded: Sequence[int] = (),
        update: Any = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.action = action
        self.notification = notification
        self.withdrawn = tuple(withdrawn)
        self.discarded = tuple(discarded)
        self.update = update

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason!r}, action={self.action.value})"


def session_reset(reason: str, code: int, subcode: int, data: bytes = b"") -> MessageError:
    """A MessageError whose outcome is a NOTIFICATION and session reset."""
    return MessageError(reason, Rfc7606Action.SESSION_RESET, Notification(code, subcode, data))


def update_error(reason: str, subcode: UpdateSubcode, data: bytes = b"") -> MessageError:
    """A session-resetting UPDATE Message Error (RFC 4271 §6.3)."""
    return session_reset(reason, NotificationCode.UPDATE_MESSAGE_ERROR, subcode, data)


class ConfigError(ValueError):
    """A configuration object breaks a rule; the message names the object, the field and the reason."""

    def __init__(self, object_kind: str, object_name: str, field: str, reason: str) -> None:
        super().__init__(f"{object_kind} {object_name!r}: {field}: {reason}")
        self.object_kind = object_kind
        self.object_name = object_name
        self.field = field
        self.reason = reason
