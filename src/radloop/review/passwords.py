"""The password policy: long enough, not the user's name, not a common password.

Length over composition rules, as NIST SP 800-63B (section 5.1.1.2) recommends: at least
:data:`MIN_PASSWORD` characters, checked against the user name and a list of passwords
commonly used and found in breach corpora. Applied wherever a password is set: a new user, a
change of one's own password, an administrator's reset.
"""

from __future__ import annotations

from radloop.errors import InputError

__all__ = ["MIN_PASSWORD", "WeakPasswordError", "check_password"]

MIN_PASSWORD = 12

# The most common passwords of breach corpora (SecLists' top lists) that are 12 characters
# or longer, or become so with a digit run; shorter ones already fail the length rule.
_COMMON_TEXT = """
    123456789012 1234567890123 12345678901234 123456789123 111111111111 000000000000
    123123123123 121212121212 qwertyuiopas qwertyuiop12 qwertyuiop123 qwerty123456
    qwertyqwerty 1q2w3e4r5t6y 1qaz2wsx3edc zaq12wsxcde3 asdfghjkl123 zxcvbnm12345
    password1234 password12345 password123456 passwordpassword password1! password123!
    p@ssw0rd1234 passw0rd1234 iloveyou1234 iloveyouiloveyou letmein12345 welcome12345
    welcome123456 abc123456789 abcdefghijkl abcd12345678 administrator admin1234567
    adminadmin123 trustno11234 sunshine1234 princess1234 football1234 baseball1234
    dragon123456 monkey123456 master123456 superman1234 starwars1234 changeme1234
    changemenow! qazwsxedcrfv 1234qwerasdf 1234567890qwerty correcthorsebatterystaple
    radiology123 radiologist1 hospital1234 doctor123456 xraychest123 chestxray123
"""
_COMMON = frozenset(_COMMON_TEXT.split())
# Words that make a password common however many digits or symbols are added to them.
_COMMON_WORDS_TEXT = """
    password passw passwd qwerty qwertyuiop asdfgh asdfghjkl zxcvbnm iloveyou letmein welcome
    admin administrator abc abcdef changeme trustno monkey dragon master sunshine princess
    football baseball superman starwars secret login hello radiology radiologist hospital
"""
_COMMON_WORDS = frozenset(_COMMON_WORDS_TEXT.split())


class WeakPasswordError(InputError):
    """A password the policy refuses; the message names the rule."""


def check_password(password: str, username: str) -> None:
    """Raise :class:`WeakPasswordError` naming the rule ``password`` breaks, if any."""
    if len(password) < MIN_PASSWORD:
        raise WeakPasswordError(
            f"a password of at least {MIN_PASSWORD} characters",
            f"{len(password)} characters",
            source="password",
        )
    lowered = password.lower()
    name = username.lower()
    if name and (name in lowered or lowered in name):
        raise WeakPasswordError(
            "a password that is not the user name and does not contain it",
            "one containing the user name",
            source="password",
        )
    letters = "".join(c for c in lowered if c.isalpha())
    if lowered in _COMMON or letters in _COMMON_WORDS or _is_one_repeated(lowered):
        raise WeakPasswordError(
            "a password that is not among the commonly used ones",
            "a common password",
            source="password",
        )


def _is_one_repeated(text: str) -> bool:
    """``aaaaaaaaaaaa``, ``abcabcabcabc``: a short unit repeated."""
    return any(
        len(text) % size == 0 and text == text[:size] * (len(text) // size) for size in range(1, 5)
    )
