"""A reader of nats-server's configuration format, enough to check deploy/nats.conf's permissions offline.

The format: `key: value`, `key = value` or `key value`, maps in `{}`, arrays in `[]`, strings quoted or
bare up to the end of the line (or `,` `;` `}` `]`), comments after `#` or `//`. Per user,
`permissions.publish` / `.subscribe` is a subject, a list of subjects (both: allowed) or a map
`{allow, deny}`; a direction left out allows everything, and `authorization.default_permissions`
applies to users without their own. Subjects match NATS-style: `*` one token, `>` one or more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_SEPARATORS = " \t\r\n,;"
_KEY_END = " \t\r\n:={"
_BARE_END = "\n,;}]#"


class ConfError(ValueError):
    """The text is not a nats-server configuration this reader understands."""


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def _at_end(self) -> bool:
        return self.pos >= len(self.text)

    def _peek(self) -> str:
        return self.text[self.pos]

    def _skip(self, separators: str = _SEPARATORS) -> None:
        while not self._at_end():
            if self._peek() in separators:
                self.pos += 1
            elif self._peek() == "#" or self.text.startswith("//", self.pos):
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            else:
                return

    def _fail(self, what: str) -> ConfError:
        line = self.text.count("\n", 0, self.pos) + 1
        return ConfError(f"line {line}: {what}")

    def mapping(self, closing: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        while True:
            self._skip()
            if self._at_end():
                if closing:
                    raise self._fail(f"missing {closing!r}")
                return out
            if self._peek() == closing:
                self.pos += 1
                return out
            key = self._key()
            self._skip(" \t")
            if not self._at_end() and self._peek() in ":=":
                self.pos += 1
            out[key] = self.value()

    def _key(self) -> str:
        if self._peek() in "\"'":
            return self._quoted()
        start = self.pos
        while not self._at_end() and self._peek() not in _KEY_END:
            self.pos += 1
        if self.pos == start:
            raise self._fail(f"a key expected, not {self._peek()!r}")
        return self.text[start:self.pos]

    def _quoted(self) -> str:
        quote = self._peek()
        end = self.text.find(quote, self.pos + 1)
        if end < 0:
            raise self._fail("unterminated string")
        value = self.text[self.pos + 1:end]
        self.pos = end + 1
        return value

    def value(self) -> Any:
        self._skip(" \t\r\n")
        if self._at_end():
            raise self._fail("a value expected")
        char = self._peek()
        if char == "{":
            self.pos += 1
            return self.mapping("}")
        if char == "[":
            self.pos += 1
            return self._array()
        if char in "\"'":
            return self._quoted()
        start = self.pos
        while not self._at_end() and self._peek() not in _BARE_END:
            self.pos += 1
        return self.text[start:self.pos].strip()

    def _array(self) -> list[Any]:
        items: list[Any] = []
        while True:
            self._skip()
            if self._at_end():
                raise self._fail("missing ']'")
            if self._peek() == "]":
                self.pos += 1
                return items
            items.append(self.value())


def parse(text: str) -> dict[str, Any]:
    """The configuration as nested dicts, lists and strings."""
    return _Reader(text).mapping(None)


def subject_matches(pattern: str, subject: str) -> bool:
    """True when the concrete `subject` falls under `pattern` (`*` one token, `>` the rest)."""
    wanted, tokens = pattern.split("."), subject.split(".")
    for index, token in enumerate(wanted):
        if token == ">":
            return len(tokens) > index
        if index >= len(tokens) or token not in ("*", tokens[index]):
            return False
    return len(wanted) == len(tokens)


def _subjects(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfError(f"a subject or a list of subjects expected, not {value!r}")


@dataclass(frozen=True)
class Grant:
    """One direction of a user's permissions: `allow` None means every subject."""

    allow: tuple[str, ...] | None = None
    deny: tuple[str, ...] = ()

    @classmethod
    def of(cls, value: Any) -> Grant:
        if value is None:
            return cls()
        if isinstance(value, dict):
            unknown = set(value) - {"allow", "deny"}
            if unknown:
                raise ConfError(f"unknown permission keys {sorted(unknown)}")
            allow = None if value.get("allow") is None else _subjects(value["allow"])
            return cls(allow, () if value.get("deny") is None else _subjects(value["deny"]))
        return cls(_subjects(value))

    def permits(self, subject: str) -> bool:
        if any(subject_matches(p, subject) for p in self.deny):
            return False
        return self.allow is None or any(subject_matches(p, subject) for p in self.allow)


@dataclass(frozen=True)
class Permissions:
    """What one user may publish and subscribe to."""

    publish: Grant
    subscribe: Grant

    def may(self, action: str, subject: str) -> bool:
        """`action` is `publish` or `subscribe`."""
        grant: Grant = getattr(self, action)
        return grant.permits(subject)


def _users(entries: Any, defaults: Any) -> dict[str, Permissions]:
    if not isinstance(entries, list):
        raise ConfError("a users list expected")
    users: dict[str, Permissions] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("user"), str):
            raise ConfError(f"a user entry without a name: {entry!r}")
        permissions = entry.get("permissions", defaults)
        if not isinstance(permissions, dict):
            raise ConfError(f"user {entry['user']}: permissions must be a map")
        users[entry["user"]] = Permissions(Grant.of(permissions.get("publish")), Grant.of(permissions.get("subscribe")))
    return users


def nats_users(text: str) -> dict[str, Permissions]:
    """Each user of `authorization.users` (the global account) with their effective permissions."""
    authorization = parse(text).get("authorization")
    if not isinstance(authorization, dict) or not isinstance(authorization.get("users"), list):
        raise ConfError("no authorization.users list")
    return _users(authorization["users"], authorization.get("default_permissions") or {})


def account_users(text: str) -> dict[str, dict[str, Permissions]]:
    """The users of each account of the `accounts` block (none: an empty map), with their permissions."""
    accounts = parse(text).get("accounts") or {}
    if not isinstance(accounts, dict):
        raise ConfError("accounts must be a map")
    return {name: _users(account.get("users") or [], {}) for name, account in accounts.items()}
