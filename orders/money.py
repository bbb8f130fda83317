"""Money: integer amounts in minor units (fen, cents) with a currency code. Never floats.

This is the one module that knows how amounts are parsed, formatted and split.
"""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# ISO 4217 minor-unit exponents for the currencies we accept.
CURRENCY_EXPONENTS = {"CNY": 2, "USD": 2, "EUR": 2, "HKD": 2, "JPY": 0}
CURRENCY_SYMBOLS = {"CNY": "¥", "USD": "$", "EUR": "€", "HKD": "HK$", "JPY": "JP¥"}


class MoneyError(ValueError):
    """An amount that cannot be represented exactly in the currency."""


def exponent(currency: str) -> int:
    try:
        return CURRENCY_EXPONENTS[currency.upper()]
    except KeyError:
        raise MoneyError(f"Unsupported currency {currency!r}") from None


def parse_amount(text: str | int | Decimal, currency: str) -> int:
    """Parse a major-unit amount such as "1,234.50" into minor units (123450).

    Refuses negatives, non-numbers and more decimals than the currency has.
    """
    if isinstance(text, bool):
        raise MoneyError("Enter an amount")
    raw = str(text).strip().replace(",", "").replace("¥", "").replace("$", "")
    if not raw:
        raise MoneyError("Enter an amount")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise MoneyError(f"{text!r} is not an amount") from None
    if not value.is_finite():
        raise MoneyError(f"{text!r} is not an amount")
    if value < 0:
        raise MoneyError("Amounts cannot be negative")
    places = exponent(currency)
    scaled = value.scaleb(places)
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"{currency} amounts have at most {places} decimal places")
    return int(scaled)


def to_decimal(amount: int, currency: str) -> Decimal:
    return Decimal(amount).scaleb(-exponent(currency))


def format_amount(amount: int, currency: str = "CNY", symbol: bool = True) -> str:
    """Format minor units for people: 123450 CNY -> "¥1,234.50"."""
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise MoneyError("Amounts are integers in minor units")
    places = exponent(currency)
    sign = "-" if amount < 0 else ""
    major = to_decimal(abs(amount), currency)
    text = f"{major:,.{places}f}"
    if symbol:
        return f"{sign}{CURRENCY_SYMBOLS.get(currency.upper(), currency.upper() + ' ')}{text}"
    return f"{sign}{text}"


def format_compact(amount: int, currency: str = "CNY") -> str:
    """Short form for ranges on cards: 5,000,000.00 CNY -> "¥5M", 80,000 -> "¥80k"."""
    major = to_decimal(amount, currency)
    symbol = CURRENCY_SYMBOLS.get(currency.upper(), currency.upper() + " ")
    for threshold, suffix in ((Decimal(1_000_000), "M"), (Decimal(1_000), "k")):
        if major >= threshold:
            value = (major / threshold).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
            text = f"{value:f}".rstrip("0").rstrip(".")
            return f"{symbol}{text}{suffix}"
    return format_amount(amount, currency)


def format_rate(basis_points: int) -> str:
    """Annual rates are stored in basis points: 385 -> "3.85%"."""
    return f"{Decimal(basis_points).scaleb(-2):.2f}%"


def apply_rate(amount: int, basis_points: int) -> int:
    """A share of an amount (commission, voucher cap), rounded half up to the minor unit."""
    if amount < 0 or basis_points < 0:
        raise MoneyError("Amount and rate must not be negative")
    return int((Decimal(amount) * basis_points / 10_000).quantize(Decimal(1), ROUND_HALF_UP))
