"""Issue 20 §5: personal data written inside free text is found by its shape and masked.

``mask_personal_data`` is new: on main the module does not exist and every test here fails
at import.  The ID-number examples are the two GB 11643-1999 gives; the check characters
of the others are computed below, independently of the code under test.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jianyi_flow.domain.masking import id_check_character, is_resident_id, luhn_valid, mask_personal_data

_WEIGHTS = [2 ** (17 - i) % 11 for i in range(17)]


def check_character(first17: str) -> str:
    """ISO 7064 MOD 11-2 as GB 11643-1999 states it: (12 - sum mod 11) mod 11, 10 written X."""
    value = (12 - sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True)) % 11) % 11
    return "X" if value == 10 else str(value)


def an_id(first17: str) -> str:
    return first17 + check_character(first17)


def wrong_check(first17: str) -> str:
    good = check_character(first17)
    return first17 + ("0" if good != "0" else "1")


@pytest.mark.parametrize("number", ["11010519491231002X", "440524188001010014"])
def test_the_examples_of_gb_11643_are_valid(number: str) -> None:
    assert check_character(number[:17]) == number[17] == id_check_character(number[:17])
    assert is_resident_id(number) and is_resident_id(number.lower())


def test_the_check_character_agrees_with_an_independent_computation() -> None:
    for n in range(0, 10**6, 7919):
        body = f"50010119900307{n % 1000:03d}"
        assert id_check_character(body) == check_character(body)


MASKED = [
    # ID numbers: 18 characters with a valid check character, grouped 6-8-4, lowercase x, 15 digits
    ("身份证号11010519491231002X。", "身份证号110*************2X。"),
    ("身份证号：11010519491231002x", "身份证号：110*************2x"),
    ("110105 19491231 002X", "110*** ******** **2X"),
    ("440524188001010014", "440*************14"),
    ("旧证110105491231002号", "旧证110**********02号"),
    (an_id("50011819850615123"), "500*************" + an_id("50011819850615123")[-2:]),
    # e-mail addresses, also one whose local part is a phone number
    ("邮箱zhang.san@example.com谢谢", "邮箱z********@*******.com谢谢"),
    ("13512345678@qq.com", "1**********@**.com"),
    # mobiles: plain, hyphens, spaces, one space, prefixes, fullwidth digits
    ("请联系13598765432。", "请联系135******32。"),
    ("135-9876-5432", "135-****-**32"),
    ("135 9876 5432", "135 **** **32"),
    ("1359876 5432", "135**** **32"),
    ("+86 135 9876 5432", "+86 135 **** **32"),
    ("+8613598765432", "+86135******32"),
    ("0086-13598765432", "0086-135******32"),
    ("8613598765432", "86135******32"),
    ("(+86)13598765432", "(+86)135******32"),
    ("电话：１３５９８７６５４３２", "电话：１３５******３２"),
    # landlines with an area code, and extensions
    ("023-49299053", "023-******53"),
    ("023 4929 9053", "023 **** **53"),
    ("(023)49299053", "(023)******53"),
    ("（023）4929-9053", "（023）****-**53"),
    ("0234929 9053", "023**** **53"),
    ("02349299053", "023******53"),
    ("010-62345678", "010-******78"),
    ("0755-82345678转801", "075*-********转*01"),
    ("023-49299053 ext. 12", "023-******** ext. 12"),
    # bank-card-like numbers passing the Luhn check, plain and in groups of four
    ("卡号6222021234567890128", "卡号622**************28"),
    ("6222 0212 3456 7890 128", "622* **** **** **** *28"),
    ("4111111111111111", "411***********11"),
]


@pytest.mark.parametrize(("text", "expected"), MASKED)
def test_personal_numbers_and_addresses_are_masked(text: str, expected: str) -> None:
    assert mask_personal_data(text) == expected
    assert len(mask_personal_data(text)) == len(text)


KEPT = [
    "2024-09-02",
    "2024年9月2日上午09:30-12:00",
    "登记号YC2024-20240902-abc123",
    "第135条第2款",
    "邮编402160",
    "投资13598765432元",
    "共计13598765432.50",
    "¥13598765432",
    "增长13598765432%",
    "1,359,876,543,210",
    "2019 2020 2021 2022 2023",
    "400-800-1234",
    "12345678901234",  # 14 digits: nothing
    "135987654321",  # 12 digits: not a mobile
    "49299053",  # no area code
    "0231234567",  # a subscriber number cannot start with 1
    "110105194912310021",  # wrong check character: not an ID number (and fails Luhn)
    wrong_check("50011819850615123"),
    "1234567812345678",  # 16 digits failing the Luhn check
    "120101200013321234",  # month 13: no such birth date
    "x@y.z",
    "20240902123456789012",  # 20 digits
]


@pytest.mark.parametrize("text", KEPT)
def test_numbers_that_are_not_personal_data_are_left_alone(text: str) -> None:
    assert mask_personal_data(text) == text


def test_text_without_a_digit_or_at_sign_is_returned_as_is() -> None:
    text = "关于优化新桥公交线路的建议"
    assert mask_personal_data(text) is text


def test_luhn() -> None:
    assert luhn_valid("4111111111111111") and luhn_valid("79927398713")
    assert not luhn_valid("4111111111111112") and not luhn_valid("41111x1111111111")


_TEXT = st.text(alphabet=st.sampled_from("0123456789 -+()@.xX中文号电话元%¥:，a"), max_size=60)


@settings(max_examples=300, derandomize=True)
@given(_TEXT)
def test_masking_is_idempotent_and_keeps_the_length(text: str) -> None:
    once = mask_personal_data(text)
    assert mask_personal_data(once) == once
    assert len(once) == len(text)
    assert all(a == b or b == "*" for a, b in zip(text, once, strict=True))


@settings(max_examples=300, derandomize=True)
@given(st.dates(), st.sampled_from(["-", "/", ".", "年"]))
def test_dates_are_never_masked(day: object, sep: str) -> None:
    text = f"{day:%Y}{sep}{day:%m}{sep}{day:%d}"
    assert mask_personal_data(text) == text


@settings(max_examples=300, derandomize=True)
@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=0, max_value=99))
def test_amounts_are_never_masked(whole: int, cents: int) -> None:
    for text in (f"{whole}元", f"{whole:,}元", f"¥{whole}.{cents:02d}", f"{whole}.{cents:02d}万元"):
        assert mask_personal_data(text) == text


@settings(max_examples=200, derandomize=True)
@given(st.integers(min_value=0, max_value=10**8 - 1), st.sampled_from(["", "电话", "联系人王先生 ", "tel:"]))
def test_every_mobile_number_is_masked(n: int, before: str) -> None:
    number = f"1{3 + n % 7}{n:09d}"[:11]
    for spelling in (number, f"{number[:3]}-{number[3:7]}-{number[7:]}", f"{number[:3]} {number[3:7]} {number[7:]}"):
        masked = mask_personal_data(f"{before}{spelling}。")
        assert number[3:9] not in masked.replace("-", "").replace(" ", "")
