"""Unit tests for the small rules everything else leans on: credit codes, passwords, money."""

import random

import pytest

from marketplace import credit_code
from marketplace.passwords import hash_password, password_problems, verify_password
from orders.money import MoneyError, apply_rate, format_amount, format_rate, parse_amount

# --- Unified social credit code --------------------------------------------------------------

PUBLISHED_CODES = [
    "91350100M000100Y43",  # the example printed in GB 32100-2015
    "914403001922038216",  # Huawei Technologies Co., Ltd.
    "9144030071526726XG",  # Shenzhen Tencent Computer Systems Co., Ltd.
    "91330100716105852F",  # Alibaba (China) Co., Ltd.
]


@pytest.mark.parametrize("code", PUBLISHED_CODES)
def test_published_credit_codes_are_valid(code):
    assert credit_code.validate(code) == code
    assert credit_code.is_valid(code)


def test_credit_code_is_normalised_to_upper_case_without_spaces_or_dashes():
    assert credit_code.validate(" 91350100m000100y43 ") == "91350100M000100Y43"
    assert credit_code.validate("9135-0100 M000-100Y43") == "91350100M000100Y43"


def test_generated_credit_codes_validate():
    rng = random.Random(1)
    for _ in range(50):
        assert credit_code.is_valid(credit_code.generate(rng))


def test_wrong_check_character_is_refused():
    with pytest.raises(credit_code.CreditCodeError, match="check character does not match"):
        credit_code.validate("91350100M000100Y44")


def test_a_single_typo_is_caught_by_the_check_character():
    # Swap one character in the body: the check character no longer fits.
    with pytest.raises(credit_code.CreditCodeError, match="check character"):
        credit_code.validate("91350100M000200Y43")


@pytest.mark.parametrize("code, length", [("91350100M000100Y4", 17), ("91350100M000100Y433", 19),
                                          ("", 0)])
def test_wrong_length_is_refused_with_the_length_found(code, length):
    with pytest.raises(credit_code.CreditCodeError, match=f"18 characters; this one has {length}"):
        credit_code.validate(code)


@pytest.mark.parametrize("letter", ["I", "O", "Z", "S", "V"])
def test_letters_outside_the_alphabet_are_refused(letter):
    code = "91350100M000100Y4" + letter
    with pytest.raises(credit_code.CreditCodeError, match=f"found '{letter}'"):
        credit_code.validate(code)


def test_lower_case_forbidden_letters_are_refused_after_normalising():
    with pytest.raises(credit_code.CreditCodeError, match="found 'O'"):
        credit_code.validate("91350100m0001o0y43")


def test_division_code_must_be_digits():
    first17 = "91A50100M000100Y4"
    code = first17 + credit_code.check_character(first17)
    with pytest.raises(credit_code.CreditCodeError, match="administrative division"):
        credit_code.validate(code)


# --- Password rules ------------------------------------------------------------------------


def test_a_good_password_has_no_problems():
    assert password_problems("Correct-horse-42", "li.lei@example.com") == []


def test_password_too_short():
    assert "Use at least 10 characters." in password_problems("abc12345")


def test_password_too_long():
    assert "Use at most 128 characters." in password_problems("ab1" * 50)


@pytest.mark.parametrize("password", ["onlyletterszzz", "12345678901234"])
def test_password_needs_letters_and_digits(password):
    assert "Use both letters and digits." in password_problems(password)


@pytest.mark.parametrize("password", ["password123", "Welcome123", "aaabbb1111"])
def test_common_or_repetitive_passwords_are_too_easy(password):
    assert "This password is too easy to guess." in password_problems(password)


def test_password_must_not_contain_the_email_name():
    assert "Do not include your email address in the password." in password_problems(
        "zhangwei2024!", "ZhangWei@example.com")


def test_every_problem_is_reported_at_once():
    problems = password_problems("aaaa", "a@example.com")
    assert "Use at least 10 characters." in problems
    assert "Use both letters and digits." in problems
    assert "This password is too easy to guess." in problems


def test_password_hashes_are_salted_and_verify():
    first, second = hash_password("Correct-horse-42"), hash_password("Correct-horse-42")
    assert first != second
    assert verify_password(first, "Correct-horse-42")
    assert not verify_password(first, "Correct-horse-43")


# --- Money ---------------------------------------------------------------------------------


@pytest.mark.parametrize("amount, currency, text", [
    (123450, "CNY", "¥1,234.50"),
    (5, "CNY", "¥0.05"),
    (0, "CNY", "¥0.00"),
    (100000000, "CNY", "¥1,000,000.00"),
    (-123450, "CNY", "-¥1,234.50"),
    (1234, "JPY", "JP¥1,234"),
    (199, "USD", "$1.99"),
])
def test_format_amount(amount, currency, text):
    assert format_amount(amount, currency) == text


def test_format_amount_without_symbol():
    assert format_amount(123450, "CNY", symbol=False) == "1,234.50"


def test_format_amount_refuses_floats():
    with pytest.raises(MoneyError):
        format_amount(12.5, "CNY")


@pytest.mark.parametrize("text, currency, minor", [
    ("1,234.50", "CNY", 123450),
    ("1234.5", "CNY", 123450),
    ("¥88", "CNY", 8800),
    ("0.01", "CNY", 1),
    ("1234", "JPY", 1234),
    (" 12 ", "USD", 1200),
])
def test_parse_amount(text, currency, minor):
    assert parse_amount(text, currency) == minor


@pytest.mark.parametrize("text, currency, message", [
    ("1.234", "CNY", "at most 2 decimal places"),
    ("12.5", "JPY", "at most 0 decimal places"),
    ("-5", "CNY", "cannot be negative"),
    ("abc", "CNY", "is not an amount"),
    ("", "CNY", "Enter an amount"),
    ("NaN", "CNY", "is not an amount"),
    ("10", "XYZ", "Unsupported currency"),
])
def test_parse_amount_refuses(text, currency, message):
    with pytest.raises(MoneyError, match=message):
        parse_amount(text, currency)


def test_parse_and_format_round_trip():
    for minor in (0, 1, 99, 100, 123456789):
        assert parse_amount(format_amount(minor, "CNY", symbol=False), "CNY") == minor


@pytest.mark.parametrize("amount, bp, share", [
    (10000, 500, 500),     # 5% of ¥100.00 is ¥5.00
    (333, 1000, 33),       # 33.3 fen rounds down
    (335, 1000, 34),       # 33.5 fen rounds half up
    (1, 5000, 1),          # half a fen rounds up
    (123457, 0, 0),
    (123457, 10000, 123457),
])
def test_apply_rate_rounds_half_up_to_the_minor_unit(amount, bp, share):
    assert apply_rate(amount, bp) == share


def test_apply_rate_refuses_negatives():
    with pytest.raises(MoneyError):
        apply_rate(-1, 100)
    with pytest.raises(MoneyError):
        apply_rate(100, -1)


def test_format_rate():
    assert format_rate(385) == "3.85%"
    assert format_rate(0) == "0.00%"
