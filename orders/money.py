"""Money: integer amounts in minor units (fen, cents) with a currency code. Never floats.

This is the one module that knows how amounts are parsed, formatted and split.
"""

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation

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
    """Parse a major-unit amount such as "1,234.50" or "12万" into minor units (123450,
    12000000).

    Refuses negatives, non-numbers and more decimals than the currency has.
    """
    if isinstance(text, bool):
        raise MoneyError("Enter an amount")
    raw = str(text).strip().replace(",", "").replace("，", "").replace("¥", "").replace("$", "")
    raw = raw.removesuffix("元").strip()
    if not raw:
        raise MoneyError("Enter an amount")
    # Chinese counts large amounts in 万 (10,000) and 亿 (100,000,000): "12万", "1.5亿元".
    multiplier = 1
    for unit, factor in (("万", 10_000), ("亿", 100_000_000)):
        if raw.endswith(unit):
            raw, multiplier = raw[: -len(unit)].strip(), factor
            break
    try:
        value = Decimal(raw) * multiplier
    except InvalidOperation:
        raise MoneyError(f"{text!r} is not an amount (write e.g. 1,200.50 or 12万)") from None
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


def format_decimal(amount: int, currency: str = "CNY") -> str:
    """Minor units as a plain decimal string for files (CSV): 123450 CNY -> "1234.50",
    -5 -> "-0.05". No symbol, no thousands separator, always the currency's decimals."""
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise MoneyError("Amounts are integers in minor units")
    return f"{to_decimal(amount, currency):.{exponent(currency)}f}"


_WAN = Decimal(10_000)
_YI = Decimal(100_000_000)


def format_compact(amount: int, currency: str = "CNY", chinese: bool = False) -> str:
    """Short form for ranges and large round amounts.

    English: 5,000,000.00 CNY -> "¥5M", 80,000 -> "¥80k". Chinese counts CNY in 万 and 亿:
    "500万元", "1.2亿元". Amounts not round enough for the short form stay exact.
    """
    major = to_decimal(amount, currency)
    if chinese and currency.upper() == "CNY":
        for unit, suffix in ((_YI, "亿元"), (_WAN, "万元")):
            if major >= unit and major / unit == (major / unit).quantize(Decimal("0.01")):
                text = f"{(major / unit).normalize():,f}"
                return f"{text}{suffix}"
        return format_amount(amount, currency)
    symbol = CURRENCY_SYMBOLS.get(currency.upper(), currency.upper() + " ")
    for threshold, suffix in ((Decimal(1_000_000), "M"), (Decimal(1_000), "k")):
        if major >= threshold:
            value = (major / threshold).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
            text = f"{value:f}".rstrip("0").rstrip(".")
            return f"{symbol}{text}{suffix}"
    return format_amount(amount, currency)


def format_range(low: int | None, high: int | None, currency: str = "CNY",
                 chinese: bool = False) -> str:
    """"50万–300万元" in Chinese (元 said once, at the end), "¥500k–¥3M" in English."""
    if low is None and high is None:
        return "—"
    if low is None or high is None:
        return format_compact(low if high is None else high, currency, chinese)
    first, second = (format_compact(low, currency, chinese),
                     format_compact(high, currency, chinese))
    if first.endswith(("万元", "亿元")) and second.endswith(("万元", "亿元")):
        first = first[:-1]
    return f"{first}–{second}"


def format_rate(basis_points: int) -> str:
    """Annual rates are stored in basis points: 385 -> "3.85%"."""
    return f"{Decimal(basis_points).scaleb(-2):.2f}%"


def apply_rate(amount: int, basis_points: int) -> int:
    """A share of an amount (commission, voucher cap), rounded half up to the minor unit."""
    if amount < 0 or basis_points < 0:
        raise MoneyError("Amount and rate must not be negative")
    return int((Decimal(amount) * basis_points / 10_000).quantize(Decimal(1), ROUND_HALF_UP))


def split_by_shares(amount: int, shares_bp: list[int]) -> list[int]:
    """Split ``amount`` into parts proportional to basis-point shares that sum to 10,000.

    Largest-remainder rounding: the parts are whole minor units and add up to ``amount``
    exactly (milestone amounts of an order, for example).
    """
    if amount < 0 or any(share < 0 for share in shares_bp):
        raise MoneyError("Amount and shares must not be negative")
    if sum(shares_bp) != 10_000:
        raise MoneyError("Shares must add up to 100%")
    exact = [Decimal(amount) * share / 10_000 for share in shares_bp]
    parts = [int(value) for value in exact]  # floor: all values are non-negative
    shortfall = amount - sum(parts)
    by_remainder = sorted(range(len(parts)), key=lambda i: (exact[i] - parts[i], -i),
                          reverse=True)
    for index in by_remainder[:shortfall]:
        parts[index] += 1
    return parts


def voucher_cover(price: int, max_share_bp: int, *limits: int) -> int:
    """How much of ``price`` a voucher may pay: at most its programme's share of the price,
    and no more than any of ``limits`` (voucher balance, programme budget left...)."""
    if price < 0 or any(limit < 0 for limit in limits):
        raise MoneyError("Amounts must not be negative")
    cap = int((Decimal(price) * max_share_bp / 10_000).to_integral_value(rounding=ROUND_DOWN))
    return max(0, min(cap, price, *limits)) if limits else max(0, min(cap, price))


def refund_split(back: int, subtotal: int, voucher: int) -> tuple[int, int]:
    """(cash part, voucher part) of ``back``, the value of an order given back in total, in
    proportion to the voucher's share of the price (``voucher`` of ``subtotal``).

    Remainder rule: the voucher's part is rounded UP to the minor unit and the cash part is
    the rest, so the parts add up to ``back`` exactly and the voucher never pays more than
    its share of what is kept: (voucher - v) * subtotal <= (subtotal - back) * voucher.
    Pass cumulative totals (everything given back so far plus this refund) so successive
    partial refunds keep the proportion too.
    """
    if back < 0 or subtotal < 0 or voucher < 0 or voucher > subtotal or back > subtotal:
        raise MoneyError("0 <= back <= subtotal and 0 <= voucher <= subtotal")
    if subtotal == 0:
        return 0, 0
    voucher_part = -(-back * voucher // subtotal)  # ceiling, in integers
    return back - voucher_part, voucher_part


def fee_split(base: int, rate_bp: int) -> tuple[int, int]:
    """(platform fee, provider's net) of an amount at a commission rate; they add up."""
    fee = apply_rate(base, rate_bp)
    return fee, base - fee


def parse_share(text: str | int) -> int:
    """A percentage such as "30" or "12.5" as basis points (3000, 1250)."""
    raw = str(text).strip().rstrip("%").strip()
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise MoneyError(f"{text!r} is not a percentage") from None
    if not value.is_finite() or value < 0 or value > 100:
        raise MoneyError("A percentage is between 0 and 100")
    scaled = value * 100
    if scaled != scaled.to_integral_value():
        raise MoneyError("Percentages have at most two decimal places")
    return int(scaled)
