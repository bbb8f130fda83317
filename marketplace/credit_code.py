"""Unified social credit code (统一社会信用代码, GB 32100-2015).

18 characters: registration authority (1), organisation type (1), administrative division
(6 digits), organisation code (9) and a check character computed over the first 17.
"""

import random

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, S, V, Z
VALUES = {char: index for index, char in enumerate(ALPHABET)}
WEIGHTS = [pow(3, i, 31) for i in range(17)]


class CreditCodeError(ValueError):
    pass


def check_character(first17: str) -> str:
    total = sum(VALUES[char] * weight for char, weight in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def normalise(code: str) -> str:
    return (code or "").strip().upper().replace(" ", "").replace("-", "")


def validate(code: str) -> str:
    """Return the normalised code, or raise CreditCodeError saying what is wrong."""
    code = normalise(code)
    if len(code) != 18:
        raise CreditCodeError(
            f"A unified social credit code has 18 characters; this one has {len(code)}."
        )
    bad = sorted({char for char in code if char not in VALUES})
    if bad:
        raise CreditCodeError(
            "A unified social credit code uses digits and the capital letters "
            f"{ALPHABET[10:]} only; found {', '.join(repr(c) for c in bad)}."
        )
    if not code[2:8].isdigit():
        raise CreditCodeError("Characters 3 to 8 must be the six-digit administrative division code.")
    if check_character(code[:17]) != code[17]:
        raise CreditCodeError("The check character does not match: please check the code for typos.")
    return code


def is_valid(code: str) -> bool:
    try:
        validate(code)
    except CreditCodeError:
        return False
    return True


def generate(rng: random.Random, division: str = "320500") -> str:
    """A syntactically valid code for demo data and tests (not a real registration)."""
    authority = rng.choice("159")
    kind = "1" if authority != "9" else rng.choice("123")
    body = "".join(rng.choice(ALPHABET) for _ in range(9))
    first17 = f"{authority}{kind}{division}{body}"
    return first17 + check_character(first17)
